// Package sqlitestore is Sesame's embedded default store: users, sessions,
// refresh-token families, the revocation log, signing keys and the audit log
// in one SQLite file, through the pure-Go driver modernc.org/sqlite (no cgo).
//
//	st, err := sqlitestore.Open(ctx, "sesame-data/sesame.db")
//	if err != nil { ... }
//	defer st.Close()
//	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st,
//		Limiter: memstore.New(), Hasher: ...})
//
// One [Store] implements [sesame.UserStore], [sesame.SessionStore],
// [sesame.RefreshStore], [sesame.RevocationLog], [sesame.KeyStore],
// [sesame.AuditLog], [sesame.Pinger], [sesame.SessionCounter] and
// [sesame.Sweeper]. It does not implement [sesame.Limiter]: throttling
// counters are short-lived and stay in memory on the single node that the
// embedded store serves.
//
// The file may be open in several processes at once (the server and the
// `sesame` command line): the database runs in WAL mode, every connection
// waits up to five seconds for a lock, each process writes through a single
// connection whose transactions take the write lock up front, and reads go
// through a separate pool of read-only connections that never wait for a
// writer. A write committed by one process is seen by the next read of any
// other.
//
// Times are stored as unix milliseconds and read back in UTC, so a time
// comes back truncated to the millisecond.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// busyTimeout is how long a connection waits for a lock held by another
// connection or process before the operation fails with ErrUnavailable.
// The driver sets it before every other pragma of the DSN.
const busyTimeout = "_pragma=busy_timeout(5000)"

// Store is a SQLite database holding users, sessions, refresh tokens, the
// revocation log, signing keys and audit events. Its methods are safe for
// concurrent use.
type Store struct {
	// Now is the clock that decides whether a session has expired. Open
	// sets it to time.Now; tests replace it before using the store.
	Now func() time.Time

	// RevocationRetention is how long DeleteExpired keeps a revocation in
	// the log: at least as long as an access token lives. Open sets it to
	// sesame.DefaultRevocationRetention, which it also means when not positive.
	RevocationRetention time.Duration

	writer *sql.DB // one connection: SQLite has one writer at a time anyway
	reader *sql.DB // query_only pool; WAL readers do not block the writer
	stmts  statements

	versionMu   sync.Mutex
	versionConn *sql.Conn // a reader connection of LogVersion's own
}

// Open opens the database at path, creating it (mode 0600, in a directory
// created with mode 0700 if missing) and bringing its schema up to date. The
// same file may be open in other processes at the same time.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlitestore: open: empty path")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	// SQLite would create the file with mode 0644; it holds password
	// hashes, so create it first. The -wal and -shm files SQLite makes
	// later copy the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	f.Close()

	s := &Store{Now: time.Now, RevocationRetention: sesame.DefaultRevocationRetention}
	// The writer's DSN switches the file to WAL (a no-op once it is) and
	// makes every transaction BEGIN IMMEDIATE, so a read-then-write
	// transaction never fails on a lock upgrade in the middle.
	s.writer, err = sql.Open("sqlite", dsn(path,
		busyTimeout,
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	if err := migrateRetrying(ctx, s.writer); err != nil {
		s.writer.Close()
		return nil, translate("open", err)
	}

	s.reader, err = sql.Open("sqlite", dsn(path,
		busyTimeout,
		"_pragma=foreign_keys(1)",
		"_pragma=query_only(1)"))
	if err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n) // keep connections, and their prepared statements
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)

	if err := s.stmts.prepare(ctx, s.writer, s.reader); err != nil {
		s.Close()
		return nil, translate("open", err)
	}
	return s, nil
}

// migrateRetrying runs migrate, and runs it again for up to the busy
// timeout while it fails with SQLITE_BUSY. Two processes opening a fresh file
// at once both switch it to WAL, and then SQLite may answer SQLITE_BUSY at
// once instead of waiting (TestConcurrentOpen saw it in some 5% of runs).
func migrateRetrying(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := migrate(ctx, db)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dsn returns a file: URI for path carrying the driver's parameters. The
// driver runs the _pragma values on every connection it opens.
func dsn(path string, params ...string) string {
	// The path is escaped, so a '?' or '#' in it cannot start the query.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	return u.String() + "?" + strings.Join(params, "&")
}

// Close closes the database. Operations in progress fail.
func (s *Store) Close() error {
	s.stmts.close()
	var errs []error
	s.versionMu.Lock()
	if s.versionConn != nil {
		errs = append(errs, s.versionConn.Close())
		s.versionConn = nil
	}
	s.versionMu.Unlock()
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	errs = append(errs, s.writer.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

// Ping reads from the database file, and returns an error matching
// sesame.ErrUnavailable if that fails.
func (s *Store) Ping(ctx context.Context) error {
	var v int
	if err := s.stmts.ping.QueryRowContext(ctx).Scan(&v); err != nil {
		return fmt.Errorf("sqlitestore: ping: %w: %w", sesame.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) nowMS() int64 {
	if s.Now == nil {
		return time.Now().UnixMilli()
	}
	return s.Now().UnixMilli()
}

func toMS(t time.Time) int64 { return t.UnixMilli() }

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// translate wraps err with the operation. Errors that mean the database
// cannot answer now (a lock held past the busy timeout, I/O errors, a full
// disk) also match sesame.ErrUnavailable.
func translate(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			return fmt.Errorf("sqlitestore: %s: %w: %w", op, sesame.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// isUniqueViolation reports whether err is a UNIQUE constraint failure on
// column, named as SQLite names it in the message ("users.email").
func isUniqueViolation(err error, column string) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE &&
		strings.Contains(se.Error(), column)
}
