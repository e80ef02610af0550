package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

const sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent, kind`

// errSecretHashInUse is returned for a session whose secret hash another
// session has: hashes of fresh random secrets never collide, so it is a bug
// in the caller. (SQLite's INSERT OR REPLACE would silently delete the
// other session; here the new one is refused.)
var errSecretHashInUse = errors.New("secret hash already in use by another session")

// CreateSession stores sess, replacing any session with the same ID (whose
// refresh tokens, if any, then belong to sess). An empty Kind is stored as
// sesame.KindCookie; a Kind that is not one of sesame's is an error. NUL
// bytes and invalid UTF-8 in IP and UserAgent are stored as U+FFFD.
func (s *Store) CreateSession(ctx context.Context, sess sesame.Session) error {
	kind := sess.Kind
	switch kind {
	case "":
		kind = sesame.KindCookie
	case sesame.KindCookie, sesame.KindToken:
	default:
		return fmt.Errorf("pgstore: create session: unknown kind %q", kind)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET
			secret_hash = excluded.secret_hash, user_id = excluded.user_id,
			created_at = excluded.created_at, last_seen_at = excluded.last_seen_at,
			expires_at = excluded.expires_at, absolute_expires_at = excluded.absolute_expires_at,
			ip = excluded.ip, user_agent = excluded.user_agent, kind = excluded.kind`,
		sess.ID, sess.SecretHash[:], sess.UserID,
		sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt, sess.AbsoluteExpiresAt,
		clean(sess.IP), clean(sess.UserAgent), kind)
	if uniqueViolation(err, "sessions_secret_hash_key") {
		return fmt.Errorf("pgstore: create session: %w", errSecretHashInUse)
	}
	if err != nil {
		return translate("create session", err)
	}
	return nil
}

// Session returns the live session whose SecretHash is hash, or
// sesame.ErrSessionNotFound. It is one round trip: a statement prepared
// once per connection, probing the unique index on secret_hash.
func (s *Store) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE secret_hash = $1 AND expires_at > $2`, hash[:], s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	if err != nil {
		return sesame.Session{}, translate("session", err)
	}
	return sess, nil
}

// TouchSession sets the session's LastSeenAt and ExpiresAt, or returns
// sesame.ErrSessionNotFound if it is gone or expired.
func (s *Store) TouchSession(ctx context.Context, userID, id string, lastSeen, expiresAt time.Time) error {
	if !storable(id) {
		return sesame.ErrSessionNotFound
	}
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $1, expires_at = $2
		WHERE id = $3 AND expires_at > $4 AND user_id = $5`, lastSeen, expiresAt, id, s.now(), userID)
	if err != nil {
		return translate("touch session", err)
	}
	if tag.RowsAffected() == 0 {
		return sesame.ErrSessionNotFound
	}
	return nil
}

// DeleteSession ends the session with that ID, if there is one: it deletes
// the session and its refresh tokens, and logs its revocation if it was
// live, in one transaction.
func (s *Store) DeleteSession(ctx context.Context, userID, id string) error {
	if !storable(id) {
		return nil // no session has that ID
	}
	now := s.now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The session first, then its tokens: every writer of tokens
		// locks the session row before the token rows (see refresh.go),
		// so the order never deadlocks, and a token added by a rotation
		// that held the session until now is seen by the next statement.
		var live bool
		err := tx.QueryRow(ctx, `DELETE FROM sessions WHERE id = $1 AND user_id = $3 RETURNING expires_at > $2`, id, now, userID).Scan(&live)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = $1`, id); err != nil {
			return err
		}
		if !live {
			return nil
		}
		return logRevocations(ctx, tx, []string{id}, now)
	})
	if err != nil {
		return translate("delete session", err)
	}
	return nil
}

// UserSessions returns the live sessions of the user, oldest first (by
// CreatedAt, then ID).
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sesame.Session, error) {
	if !storable(userID) {
		return []sesame.Session{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, id`, userID, s.now())
	if err != nil {
		return nil, translate("user sessions", err)
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sesame.Session, error) { return scanSession(row) })
	if err != nil {
		return nil, translate("user sessions", err)
	}
	return sessions, nil
}

// DeleteUserSessions ends every live session of the user except exceptID,
// and returns their IDs, oldest first. With them go their refresh tokens,
// and their revocations are logged, in one transaction. Expired sessions are
// left to DeleteExpired. Of concurrent calls, each session is ended, and
// returned, by exactly one.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	if !storable(userID) {
		return []string{}, nil
	}
	var except *string // NULL: an ID no session can have excepts none
	if storable(exceptID) {
		except = &exceptID
	}
	now := s.now()
	ids := []string{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Under READ COMMITTED a concurrent call that deleted a row first
		// makes this DELETE skip it once that call commits.
		rows, err := tx.Query(ctx, `DELETE FROM sessions
			WHERE user_id = $1 AND id IS DISTINCT FROM $2 AND expires_at > $3
			RETURNING id, created_at`, userID, except, now)
		if err != nil {
			return err
		}
		ended, err := pgx.CollectRows(rows, pgx.RowToStructByPos[endedSession])
		if err != nil || len(ended) == 0 {
			return err
		}
		slices.SortFunc(ended, func(a, b endedSession) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		for _, e := range ended {
			ids = append(ids, e.ID)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = ANY($1)`, ids); err != nil {
			return err
		}
		return logRevocations(ctx, tx, ids, now)
	})
	if err != nil {
		return nil, translate("delete user sessions", err)
	}
	return ids, nil
}

type endedSession struct {
	ID        string
	CreatedAt time.Time
}

// CountSessions returns the number of live sessions, counted on the
// expires_at index.
func (s *Store) CountSessions(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE expires_at > $1`, s.now()).Scan(&n); err != nil {
		return 0, translate("count sessions", err)
	}
	return n, nil
}

// DeleteExpired removes the sessions whose ExpiresAt is not after the
// store's clock, with their refresh tokens, and the refresh tokens past
// their own ExpiresAt, and returns how many of these records it removed.
// It also drops the revocations logged more than RevocationRetention ago,
// without counting them; the expired sessions it removes are not logged as
// revoked (they had ended). Several nodes may sweep at once: each skips the
// rows another has locked, and counts only what it removed.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	now := s.now()
	retain := s.RevocationRetention
	if retain <= 0 {
		retain = sesame.DefaultRevocationRetention
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE at < $1`, now.Add(-retain)); err != nil {
		return 0, translate("delete expired", err)
	}
	total, err := s.deleteEndedWindows(ctx, now)
	if err != nil {
		return 0, err
	}
	sessions, err := sqlstore.Sweep(ctx, func(ctx context.Context) (int, bool, error) {
		return s.deleteExpiredSessions(ctx, now)
	})
	total += sessions
	if err != nil {
		return total, translate("delete expired", err)
	}
	// The outer condition is checked again on the row as it is when
	// locked.
	tokens, err := sqlstore.Sweep(ctx, func(ctx context.Context) (int, bool, error) {
		return s.execBatch(ctx, `DELETE FROM refresh_tokens WHERE hash IN
			(SELECT hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
			AND expires_at <= $1`, now, sqlstore.SweepBatch)
	})
	total += tokens
	if err != nil {
		return total, translate("delete expired", err)
	}
	return total, nil
}

// execBatch runs one batch of a sweep: a DELETE whose last argument is the
// batch size.
func (s *Store) execBatch(ctx context.Context, query string, args ...any) (int, bool, error) {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, false, err
	}
	return int(tag.RowsAffected()), sqlstore.Full(int(tag.RowsAffected())), nil
}

// deleteExpiredSessions removes one batch of expired sessions and their
// refresh tokens in one transaction. It returns how many records it removed
// and whether there may be more sessions to remove.
func (s *Store) deleteExpiredSessions(ctx context.Context, now time.Time) (n int, more bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// expires_at again outside the subquery: a session replaced by a
		// live one (CreateSession with its ID) while this waited stays.
		rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE id IN
			(SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
			AND expires_at <= $1 RETURNING id`, now, sqlstore.SweepBatch)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		n, more = len(ids)+int(tag.RowsAffected()), sqlstore.Full(len(ids))
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

func scanSession(row pgx.Row) (sesame.Session, error) {
	var (
		sess                                  sesame.Session
		hash                                  []byte
		created, lastSeen, expires, absExpire time.Time
	)
	if err := row.Scan(&sess.ID, &hash, &sess.UserID, &created, &lastSeen, &expires, &absExpire,
		&sess.IP, &sess.UserAgent, &sess.Kind); err != nil {
		return sesame.Session{}, err
	}
	if len(hash) != len(sess.SecretHash) {
		return sesame.Session{}, fmt.Errorf("session %s: secret hash of %d bytes", sess.ID, len(hash))
	}
	copy(sess.SecretHash[:], hash)
	sess.CreatedAt = created.UTC()
	sess.LastSeenAt = lastSeen.UTC()
	sess.ExpiresAt = expires.UTC()
	sess.AbsoluteExpiresAt = absExpire.UTC()
	return sess, nil
}
