// Package pgstore is Sesame's PostgreSQL store: users, sessions,
// refresh-token families, the revocation log, signing keys and the audit log
// in one database, through jackc/pgx and its connection pool. Any number of
// Sesame nodes may share the database.
//
//	st, err := pgstore.Open(ctx, "postgres://sesame@db.internal/sesame")
//	if err != nil { ... }
//	defer st.Close()
//	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st,
//		Limiter: ..., Hasher: ...})
//
// One [Store] implements [sesame.UserStore], [sesame.SessionStore],
// [sesame.RefreshStore], [sesame.RevocationLog], [sesame.KeyStore],
// [sesame.AuditLog], [sesame.Pinger], [sesame.SessionCounter] and
// [sesame.Sweeper], with the semantics of package sqlitestore. It does not
// implement [sesame.Limiter].
//
// The connection string is pgx's (a URL or keyword=value pairs, and the
// PG* environment variables); pool_max_conns and the other pool_ settings
// size the pool. Without connect_timeout a connection attempt gives up after
// [DefaultConnectTimeout]. Statements are prepared once per connection and
// cached; behind a pooler in transaction mode, add
// default_query_exec_mode=exec. The tables live in the first schema of the
// search_path, which the connection string may set (search_path=sesame).
//
// Open brings the schema up to date under a transaction-scoped advisory
// lock, so nodes that start together apply each migration once.
//
// Times are stored as timestamptz, to the microsecond, and read back in UTC.
// Every "now" is the store's clock (Store.Now), passed as a parameter; the
// database's own clock is never asked.
//
// PostgreSQL's text cannot hold a NUL byte or invalid UTF-8. A session's IP
// and UserAgent and the fields of an audit event come from the client, so
// such bytes in them are replaced by U+FFFD rather than failing the login;
// what is read back is the replaced string. A lookup by an id or email that
// holds such bytes finds nothing, as no stored value can hold them.
//
// Errors that mean the database cannot answer now (it cannot be reached,
// the connection broke, the server is shutting down or out of connections,
// a deadline passed, the pool is closed) match sesame.ErrUnavailable.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/sesameauth/sesame"
)

var (
	_ sesame.UserStore      = (*Store)(nil)
	_ sesame.SessionStore   = (*Store)(nil)
	_ sesame.AuditLog       = (*Store)(nil)
	_ sesame.Pinger         = (*Store)(nil)
	_ sesame.SessionCounter = (*Store)(nil)
	_ sesame.Sweeper        = (*Store)(nil)
	_ sesame.RefreshStore   = (*Store)(nil)
	_ sesame.SessionBackend = (*Store)(nil)
	_ sesame.RevocationLog  = (*Store)(nil)
	_ sesame.KeyStore       = (*Store)(nil)
)

// DefaultConnectTimeout bounds each connection attempt, and Open's first
// one, when the connection string sets no connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// Store is a PostgreSQL database holding users, sessions, refresh tokens,
// the revocation log, signing keys and audit events. Its methods are safe
// for concurrent use, and other Stores (other nodes) may use the same
// database at the same time.
type Store struct {
	// Now is the clock that decides whether a session has expired. Open
	// sets it to time.Now; tests replace it before using the store.
	Now func() time.Time

	// RevocationRetention is how long DeleteExpired keeps a revocation in
	// the log: at least as long as an access token lives. Open sets it to
	// sesame.DefaultRevocationRetention, which it also means when not positive.
	RevocationRetention time.Duration

	pool *pgxpool.Pool
}

// Open connects to the database that connString names, checks that it
// answers, and brings its schema up to date. It returns an error matching
// sesame.ErrUnavailable if the server cannot be reached within the connect
// timeout (connect_timeout, or DefaultConnectTimeout).
func Open(ctx context.Context, connString string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	// The connect timeout applies per address ("localhost" may be two) and
	// per TLS fallback: bound the first contact as a whole as well.
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout)
	err = pool.Ping(pctx)
	cancel()
	if err != nil {
		pool.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("pgstore: open: %w: no answer within %v", sesame.ErrUnavailable, cfg.ConnConfig.ConnectTimeout)
		}
		return nil, translate("open", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, translate("open", err)
	}
	return &Store{Now: time.Now, RevocationRetention: sesame.DefaultRevocationRetention, pool: pool}, nil
}

// Close closes every connection of the pool, waiting for those in use to
// be released. Operations after Close fail with sesame.ErrUnavailable.
func (s *Store) Close() { s.pool.Close() }

// Ping asks the database for an empty statement, and returns an error
// matching sesame.ErrUnavailable if it does not answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w: %w", sesame.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// translate wraps err with the operation. Errors that mean the database
// cannot answer now also match sesame.ErrUnavailable.
func translate(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("pgstore: %s: %w: %w", op, sesame.ErrUnavailable, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// unavailable reports whether err means that the database cannot answer
// now, rather than that it refused the statement.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"), // insufficient resources: too many connections, disk full
			pe.Code == "57P01",               // admin_shutdown
			pe.Code == "57P02",               // crash_shutdown
			pe.Code == "57P03",               // cannot_connect_now: starting up, or in recovery
			pe.Code == "57014",               // query_canceled: statement_timeout
			pe.Code == "55P03",               // lock_not_available: lock_timeout
			pe.Code == "25006":               // read_only_sql_transaction: a standby, after a failover
			return true
		}
		return false // the server answered: a bad password, a missing database, a bug
	}
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || // waited too long for a connection of the pool
		errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// uniqueViolation reports whether err is a unique violation of constraint.
func uniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// storable reports whether PostgreSQL can hold s as text: valid UTF-8 with
// no NUL byte.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// clean returns s with each NUL byte and each invalid UTF-8 sequence
// replaced by U+FFFD, so that PostgreSQL can store it.
func clean(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// utc returns *t in UTC, or the zero time if t is nil (a NULL column).
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
