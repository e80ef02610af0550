// Package sqlstore is what Sesame's SQL stores (sqlitestore and pgstore)
// share: the migration runner, the batched sweep, and the rules that turn
// the columns of a refresh token into a sesame.RefreshToken and classify
// the outcome of a rotation. What differs between the databases (the
// driver, placeholders, locking, how times are stored) stays in each store
// and is handed in.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/sesameauth/sesame"
)

// Tx is a transaction of a store's driver, as the migration runner uses it.
type Tx interface {
	// Exec runs a statement, or several separated by semicolons when args
	// is empty.
	Exec(ctx context.Context, query string, args ...any) error
	// QueryInt runs a query that returns one integer.
	QueryInt(ctx context.Context, query string) (int, error)
}

// Migrations is a store's schema: files named NNNN_name.sql in FS, applied
// in order of NNNN. A migration, once released, is never edited; a change
// to the schema is a new file with the next number.
type Migrations struct {
	FS fs.FS
	// CreateTable creates the schema_migrations table (version, applied
	// at) if it is missing; Record inserts a version, its one argument.
	CreateTable, Record string
}

// Migrate applies, inside tx, the migrations the database has not seen
// yet, and records each. The caller begins and commits tx, and holds
// whatever lock keeps two processes from migrating at once.
func Migrate(ctx context.Context, tx Tx, m Migrations) error {
	files, err := fs.Glob(m.FS, "migrations/*.sql")
	if err != nil {
		return err
	}
	if err := tx.Exec(ctx, m.CreateTable); err != nil {
		return err
	}
	current, err := tx.QueryInt(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`)
	if err != nil {
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
		body, err := fs.ReadFile(m.FS, name)
		if err != nil {
			return err
		}
		if err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if err := tx.Exec(ctx, m.Record, version); err != nil {
			return err
		}
	}
	return nil
}

// SweepBatch is how many rows a sweep removes per statement, each batch
// its own short transaction, so that a large sweep never holds a lock
// against the other writers for long.
const SweepBatch = 5000

// Sweep calls batch until it reports that there is no more to remove (or
// fails), and returns how many records the batches removed in all.
func Sweep(ctx context.Context, batch func(ctx context.Context) (removed int, more bool, err error)) (int, error) {
	total := 0
	for {
		n, more, err := batch(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// Full reports whether a batch that removed n rows may have left more: it
// removed a whole SweepBatch.
func Full(n int) bool { return n >= SweepBatch }

// Token completes t, a refresh token whose other fields the store has
// read, with the hash and successor hash columns, and checks their sizes.
// retired says whether its retired_at was set (t.RetiredAt holds it then).
func Token(t sesame.RefreshToken, hash, successor []byte, retired bool) (sesame.RefreshToken, error) {
	if len(hash) != len(t.Hash) {
		return sesame.RefreshToken{}, fmt.Errorf("refresh token of session %s: hash of %d bytes", t.SessionID, len(hash))
	}
	copy(t.Hash[:], hash)
	if !retired {
		t.RetiredAt, t.SuccessorHash = time.Time{}, [32]byte{}
		return t, nil
	}
	if len(successor) != len(t.SuccessorHash) {
		return sesame.RefreshToken{}, fmt.Errorf("refresh token of session %s: successor hash of %d bytes", t.SessionID, len(successor))
	}
	copy(t.SuccessorHash[:], successor)
	return t, nil
}

// ErrTokenHashInUse is returned for a refresh token whose hash is already
// stored: hashes of fresh random tokens never collide, so it is a bug in
// the caller.
var ErrTokenHashInUse = errors.New("refresh token hash already in use")

// RotationError is what the store named pkg returns from
// RotateRefreshToken for err, the outcome of its rotation: nil,
// sesame.ErrInvalidGrant and a *sesame.ReuseError as they are; a unique
// violation of the token hash (hashInUse) as ErrTokenHashInUse; anything
// else through the store's translate.
func RotationError(pkg string, err error, hashInUse func(error) bool, translate func(op string, err error) error) error {
	const op = "rotate refresh token"
	var reuse *sesame.ReuseError
	switch {
	case err == nil, errors.Is(err, sesame.ErrInvalidGrant), errors.As(err, &reuse):
		return err
	case hashInUse(err):
		return fmt.Errorf("%s: %s: %w", pkg, op, ErrTokenHashInUse)
	}
	return translate(op, err)
}

// ForgetBelow is the generation below which a family's retired tokens are
// forgotten once its current token has generation current.
func ForgetBelow(current int64) int64 { return current - sesame.RetiredRefreshTokensKept }
