package sqlitestore

import (
	"context"
	"database/sql"
	"embed"

	"github.com/sesameauth/sesame/internal/sqlstore"
)

// migrations holds the schema (see sqlstore.Migrations). Each runs inside
// the migration transaction, where SQLite ignores PRAGMA foreign_keys and
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
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := sqlstore.Migrate(ctx, sqlTx{tx}, sqlstore.Migrations{
		FS: migrations,
		CreateTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL -- unix ms
		) STRICT`,
		Record: `INSERT INTO schema_migrations (version, applied_at)
			VALUES (?, CAST(unixepoch('subsec') * 1000 AS INTEGER))`,
	}); err != nil {
		return err
	}
	return tx.Commit()
}

// sqlTx is a database/sql transaction as sqlstore.Tx.
type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, query, args...)
	return err
}

func (t sqlTx) QueryInt(ctx context.Context, query string) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, query).Scan(&n)
	return n, err
}
