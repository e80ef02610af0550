package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations holds the schema, one file per version: NNNN_name.sql, applied
// in order of NNNN. A migration, once released, is never edited; a change
// to the schema is a new file with the next number. Each runs inside the
// migration transaction (PostgreSQL's DDL is transactional), so it must not
// use statements that refuse a transaction, such as CREATE INDEX
// CONCURRENTLY.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys, database-wide ("SESAME" and a number). Two Sesame
// deployments in different schemas of one database share them, which
// serialises a little more than needed and is otherwise harmless.
const (
	migrationLock  int64 = 0x5345_5341_4d45_0001
	revocationLock int64 = 0x5345_5341_4d45_0002
)

// migrate applies the migrations the database has not seen yet, all in one
// transaction that first takes a transaction-scoped advisory lock. Nodes
// starting together queue on the lock; each after the first then finds the
// versions recorded and applies nothing. (Without the lock, two concurrent
// CREATE TABLE IF NOT EXISTS may both go ahead and one fail on the catalog's
// unique index.) Nodes already running are not disturbed beyond the locks a
// migration's own statements take.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var encoding string
		if err := tx.QueryRow(ctx, `SELECT current_setting('server_encoding')`).Scan(&encoding); err != nil {
			return err
		}
		if encoding != "UTF8" {
			// Then many a user agent could not be stored, and logins
			// would fail on them.
			return fmt.Errorf("the database's encoding is %s; pgstore needs UTF8", encoding)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
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
			// Without arguments pgx sends the simple protocol, which
			// runs several statements.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
				return err
			}
		}
		return nil
	})
}
