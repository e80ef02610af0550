package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

// CreateRefreshToken stores t as the current token of the family of
// t.SessionID (RetiredAt and SuccessorHash are ignored, and UserID is read
// back as the session's); other tokens of the family, if any, are left as
// they are. It returns sesame.ErrSessionNotFound,
// storing nothing, if there is no live session with that ID, and an error
// if a token with the same hash is stored.
func (s *Store) CreateRefreshToken(ctx context.Context, t sesame.RefreshToken) error {
	res, err := s.stmts.createRefreshToken.ExecContext(ctx,
		t.Hash[:], t.SessionID, toMS(t.CreatedAt), toMS(t.ExpiresAt), s.nowMS(), t.Generation)
	if isUniqueViolation(err, "refresh_tokens.hash") {
		return fmt.Errorf("sqlitestore: create refresh token: %w", sqlstore.ErrTokenHashInUse)
	}
	if err != nil {
		return translate("create refresh token", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return translate("create refresh token", err)
	} else if n == 0 {
		return sesame.ErrSessionNotFound
	}
	return nil
}

// RotateRefreshToken retires the current token whose hash is oldHash
// (RetiredAt = next.CreatedAt, SuccessorHash = next.Hash) and stores next as
// the family's current token, in one transaction that holds the database's
// write lock from its start, so that of two rotations of one token, in this
// process or another, exactly one succeeds. It returns
// sesame.ErrInvalidGrant if no live token has that hash or its session is
// gone or expired, and a *sesame.ReuseError, changing nothing, if the token
// was already retired. next.SessionID must be empty or the family's; a zero
// next.CreatedAt is taken as the store's clock.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash [32]byte, next sesame.RefreshToken) error {
	return sqlstore.RotationError("sqlitestore", s.rotateRefreshToken(ctx, oldHash, next),
		func(err error) bool { return isUniqueViolation(err, "refresh_tokens.hash") }, translate)
}

func (s *Store) rotateRefreshToken(ctx context.Context, oldHash [32]byte, next sesame.RefreshToken) error {
	tx, err := s.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the check and the swap are one
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := s.nowMS()
	if next.CreatedAt.IsZero() {
		next.CreatedAt = fromMS(now)
	}
	var successorCurrent sql.NullBool
	old, retired, err := scanToken(tx.StmtContext(ctx, s.stmts.rotationCandidate).QueryRowContext(ctx, oldHash[:], now),
		&successorCurrent)
	if errors.Is(err, sql.ErrNoRows) {
		return sesame.ErrInvalidGrant
	}
	if err != nil {
		return err
	}
	if retired {
		return &sesame.ReuseError{Token: old, SuccessorCurrent: successorCurrent.Valid && successorCurrent.Bool}
	}
	if next.SessionID != "" && next.SessionID != old.SessionID {
		return fmt.Errorf("next token is of session %q, not %q", next.SessionID, old.SessionID)
	}
	if _, err := tx.StmtContext(ctx, s.stmts.retireToken).ExecContext(ctx,
		oldHash[:], toMS(next.CreatedAt), next.Hash[:]); err != nil {
		return err
	}
	gen := old.Generation + 1
	if _, err := tx.StmtContext(ctx, s.stmts.insertToken).ExecContext(ctx,
		next.Hash[:], old.SessionID, toMS(next.CreatedAt), toMS(next.ExpiresAt), gen); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.stmts.forgetTokens).ExecContext(ctx,
		old.SessionID, sqlstore.ForgetBelow(gen)); err != nil {
		return err
	}
	return tx.Commit()
}

// RefreshToken returns the live token with that hash, current or retired,
// or sesame.ErrInvalidGrant. Its UserID is its session's.
func (s *Store) RefreshToken(ctx context.Context, hash [32]byte) (sesame.RefreshToken, error) {
	t, _, err := scanToken(s.stmts.refreshToken.QueryRowContext(ctx, hash[:], s.nowMS()))
	if errors.Is(err, sql.ErrNoRows) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	if err != nil {
		return sesame.RefreshToken{}, translate("refresh token", err)
	}
	return t, nil
}

// CurrentRefreshToken returns the current token of the family of the
// user's session sessionID (the newest, should there be several), or
// sesame.ErrInvalidGrant if the session is gone, expired or another
// user's, or has no live current token.
func (s *Store) CurrentRefreshToken(ctx context.Context, userID, sessionID string) (sesame.RefreshToken, error) {
	t, _, err := scanToken(s.stmts.currentToken.QueryRowContext(ctx, sessionID, userID, s.nowMS()))
	if errors.Is(err, sql.ErrNoRows) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	if err != nil {
		return sesame.RefreshToken{}, translate("current refresh token", err)
	}
	return t, nil
}

// scanToken scans the tokenColumns, and then extra. It reports whether the
// token is retired.
func scanToken(row scanner, extra ...any) (t sesame.RefreshToken, retired bool, err error) {
	var (
		hash, successor  []byte
		created, expires int64
		retiredAt        sql.NullInt64
	)
	dest := append([]any{&hash, &t.SessionID, &t.UserID, &created, &expires, &retiredAt, &successor, &t.Generation}, extra...)
	if err := row.Scan(dest...); err != nil {
		return sesame.RefreshToken{}, false, err
	}
	t.CreatedAt = fromMS(created)
	t.ExpiresAt = fromMS(expires)
	if retiredAt.Valid {
		t.RetiredAt = fromMS(retiredAt.Int64)
	}
	if t, err = sqlstore.Token(t, hash, successor, retiredAt.Valid); err != nil {
		return sesame.RefreshToken{}, false, err
	}
	return t, retiredAt.Valid, nil
}
