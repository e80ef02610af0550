package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

// Lock order. Every transaction that writes refresh tokens locks the rows
// of sessions before those of refresh_tokens: a rotation or a new token
// takes FOR KEY SHARE on its session (which conflicts with deleting the
// session, and not with touching it) before it touches a token, and ending
// a session deletes the session row before its tokens. So ending a session
// and rotating its token never wait for each other in a cycle, and
// whichever comes second sees what the first did: a token stored while its
// session was held is deleted with the session, and a session deleted first
// leaves nothing to rotate.

const (
	tokenColumns = `r.hash, r.session_id, s.user_id, r.created_at, r.expires_at, r.retired_at, r.successor_hash, r.generation`

	// liveToken selects the refresh token r whose hash is $1 and which,
	// with its session s, is live at $2 (the store's clock).
	liveToken = ` FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
		WHERE r.hash = $1 AND r.expires_at > $2 AND s.expires_at > $2`
)

// CreateRefreshToken stores t as the current token of the family of
// t.SessionID (RetiredAt and SuccessorHash are ignored, and UserID is read
// back as the session's); other tokens of the family, if any, are left as
// they are. It returns sesame.ErrSessionNotFound, storing nothing, if there
// is no live session with that ID, and an error if a token with the same
// hash is stored.
func (s *Store) CreateRefreshToken(ctx context.Context, t sesame.RefreshToken) error {
	if !storable(t.SessionID) {
		return sesame.ErrSessionNotFound
	}
	// FOR KEY SHARE holds the session until the token is committed: a
	// concurrent DeleteSession either went first (and this finds no
	// session) or waits, and then deletes this token too.
	tag, err := s.pool.Exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, generation)
		SELECT $1, id, $3, $4, $6 FROM sessions WHERE id = $2 AND expires_at > $5 FOR KEY SHARE`,
		t.Hash[:], t.SessionID, t.CreatedAt, t.ExpiresAt, s.now(), t.Generation)
	if uniqueViolation(err, "refresh_tokens_pkey") {
		return fmt.Errorf("pgstore: create refresh token: %w", sqlstore.ErrTokenHashInUse)
	}
	if err != nil {
		return translate("create refresh token", err)
	}
	if tag.RowsAffected() == 0 {
		return sesame.ErrSessionNotFound
	}
	return nil
}

// RotateRefreshToken retires the current token whose hash is oldHash
// (RetiredAt = next.CreatedAt, SuccessorHash = next.Hash) and stores next as
// the family's current token, in one transaction. The retirement is a
// conditional UPDATE (WHERE retired_at IS NULL) under the token's row lock,
// so of concurrent rotations of one token, on any nodes, exactly one
// succeeds and the others see it retired. It returns sesame.ErrInvalidGrant
// if no live token has that hash or its session is gone or expired, and a
// *sesame.ReuseError, changing nothing, if the token was already retired.
// next.SessionID must be empty or the family's; a zero next.CreatedAt is
// taken as the store's clock.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash [32]byte, next sesame.RefreshToken) error {
	return sqlstore.RotationError("pgstore", s.rotateRefreshToken(ctx, oldHash, next),
		func(err error) bool { return uniqueViolation(err, "refresh_tokens_pkey") }, translate)
}

func (s *Store) rotateRefreshToken(ctx context.Context, oldHash [32]byte, next sesame.RefreshToken) error {
	now := s.now()
	if next.CreatedAt.IsZero() {
		next.CreatedAt = now
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The session first (see the lock order above).
		var (
			sessionID string
			current   bool
		)
		err := tx.QueryRow(ctx, `SELECT s.id, r.retired_at IS NULL`+liveToken+` FOR KEY SHARE OF s`,
			oldHash[:], now).Scan(&sessionID, &current)
		if errors.Is(err, pgx.ErrNoRows) {
			return sesame.ErrInvalidGrant
		}
		if err != nil {
			return err
		}
		if next.SessionID != "" && next.SessionID != sessionID {
			return fmt.Errorf("next token is of session %q, not %q", next.SessionID, sessionID)
		}
		if current {
			// Retire and insert in one statement: the INSERT reads the
			// UPDATE's output, so it stores next only if the UPDATE
			// retired the token. A rotation that got the row lock first
			// makes this UPDATE find retired_at set, and match nothing.
			var gen int64
			err := tx.QueryRow(ctx, `WITH retired AS (
					UPDATE refresh_tokens SET retired_at = $2, successor_hash = $3
					WHERE hash = $1 AND retired_at IS NULL RETURNING session_id, generation)
				INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, generation)
				SELECT $3, session_id, $2, $4, generation + 1 FROM retired RETURNING generation`,
				oldHash[:], next.CreatedAt, next.Hash[:], next.ExpiresAt).Scan(&gen)
			if err == nil {
				// The family's surplus retired tokens. Retired rows
				// are never updated, so only another pruning of this
				// family (or the sweep, which skips locked rows) may
				// touch them.
				_, err = tx.Exec(ctx, `DELETE FROM refresh_tokens
					WHERE session_id = $1 AND generation < $2 AND retired_at IS NOT NULL`,
					sessionID, sqlstore.ForgetBelow(gen))
				return err
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		// Retired, by now if not before: a reuse. This statement's
		// snapshot sees the rotation that retired it, and its successor.
		var successorCurrent *bool
		old, _, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+`,
			(SELECT n.retired_at IS NULL FROM refresh_tokens n WHERE n.hash = r.successor_hash)`+liveToken,
			oldHash[:], now), &successorCurrent)
		if errors.Is(err, pgx.ErrNoRows) {
			return sesame.ErrInvalidGrant
		}
		if err != nil {
			return err
		}
		return &sesame.ReuseError{Token: old, SuccessorCurrent: successorCurrent != nil && *successorCurrent}
	})
}

// RefreshToken returns the live token with that hash, current or retired,
// or sesame.ErrInvalidGrant. Its UserID is its session's.
func (s *Store) RefreshToken(ctx context.Context, hash [32]byte) (sesame.RefreshToken, error) {
	t, _, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+liveToken, hash[:], s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
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
	if !storable(userID) || !storable(sessionID) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	now := s.now()
	t, _, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+`
		FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
		WHERE r.session_id = $1 AND s.user_id = $2 AND r.retired_at IS NULL AND r.expires_at > $3 AND s.expires_at > $3
		ORDER BY r.generation DESC LIMIT 1`, sessionID, userID, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	if err != nil {
		return sesame.RefreshToken{}, translate("current refresh token", err)
	}
	return t, nil
}

// scanToken scans the tokenColumns, and then extra. It reports whether the
// token is retired.
func scanToken(row pgx.Row, extra ...any) (t sesame.RefreshToken, retired bool, err error) {
	var (
		hash, successor  []byte
		created, expires time.Time
		retiredAt        *time.Time
	)
	dest := append([]any{&hash, &t.SessionID, &t.UserID, &created, &expires, &retiredAt, &successor, &t.Generation}, extra...)
	if err := row.Scan(dest...); err != nil {
		return sesame.RefreshToken{}, false, err
	}
	t.CreatedAt = created.UTC()
	t.ExpiresAt = expires.UTC()
	t.RetiredAt = utc(retiredAt)
	if t, err = sqlstore.Token(t, hash, successor, retiredAt != nil); err != nil {
		return sesame.RefreshToken{}, false, err
	}
	return t, retiredAt != nil, nil
}
