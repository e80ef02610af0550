package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// migrations holds the schema, one file per version: NNNN_name.sql, applied
// in order of NNNN. A migration, once released, is never edited; a change
// to the schema is a new file with the next number. Each runs inside the
// migration transaction, where SQLite ignores PRAGMA foreign_keys and
// journal_mode: a migration cannot switch them.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrate applies the migrations the database has not seen yet, all in one
// transaction. The writer's transactions begin IMMEDIATE, so a second
// process opening the same file at the same moment waits for the write lock
// (busy_timeout), then finds the versions already recorded and applies
// nothing.
func migrate(ctx context.Context, db *sql.DB) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL -- unix ms
	) STRICT`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	prev := 0
	for _, name := range files { // fs.Glob returns names sorted
		base := strings.TrimPrefix(name, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil || version <= prev {
			return fmt.Errorf("migration %s: name must start with a version number above %d", base, prev)
		}
		prev = version
		if version <= current {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			version, time.Now().UnixMilli()); err != nil {
			return err
		}
	}
	return tx.Commit()
}
