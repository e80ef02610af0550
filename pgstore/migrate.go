package pgstore

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

// migrations holds the schema (see sqlstore.Migrations). Each runs inside
// the migration transaction (PostgreSQL's DDL is transactional), so it must
// not use statements that refuse a transaction, such as CREATE INDEX
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
		return sqlstore.Migrate(ctx, pgTx{tx}, sqlstore.Migrations{
			FS: migrations,
			CreateTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`,
			Record: `INSERT INTO schema_migrations (version) VALUES ($1)`,
		})
	})
}

// pgTx is a pgx transaction as sqlstore.Tx. Without arguments pgx sends
// the simple protocol, which runs several statements: a migration file.
type pgTx struct{ tx pgx.Tx }

func (t pgTx) Exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.Exec(ctx, query, args...)
	return err
}

func (t pgTx) QueryInt(ctx context.Context, query string) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, query).Scan(&n)
	return n, err
}
