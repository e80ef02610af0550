package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

// CreateSession stores sess, replacing any session with the same ID (whose
// refresh tokens, if any, then belong to sess). An empty Kind is stored as
// sesame.KindCookie; a Kind that is not one of sesame's is an error.
func (s *Store) CreateSession(ctx context.Context, sess sesame.Session) error {
	kind := sess.Kind
	switch kind {
	case "":
		kind = sesame.KindCookie
	case sesame.KindCookie, sesame.KindToken:
	default:
		return fmt.Errorf("sqlitestore: create session: unknown kind %q", kind)
	}
	_, err := s.stmts.createSession.ExecContext(ctx,
		sess.ID, sess.SecretHash[:], sess.UserID,
		toMS(sess.CreatedAt), toMS(sess.LastSeenAt), toMS(sess.ExpiresAt), toMS(sess.AbsoluteExpiresAt),
		sess.IP, sess.UserAgent, kind)
	if err != nil {
		return translate("create session", err)
	}
	return nil
}

// Session returns the live session whose SecretHash is hash, or
// sesame.ErrSessionNotFound. It is one indexed lookup on a prepared
// statement and never waits for a writer.
func (s *Store) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	if err := ctx.Err(); err != nil {
		return sesame.Session{}, fmt.Errorf("sqlitestore: session: %w", err)
	}
	// The driver watches a cancelable context from a goroutine it starts
	// for every statement: measured, a third of this lookup's CPU time. The
	// lookup is one probe of a unique index and a WAL reader does not wait
	// for writers, so there is nothing for a cancellation to cut short.
	ctx = context.WithoutCancel(ctx)
	sess, err := scanSession(s.stmts.session.QueryRowContext(ctx, hash[:], s.nowMS()))
	if errors.Is(err, sql.ErrNoRows) {
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
	res, err := s.stmts.touchSession.ExecContext(ctx, toMS(lastSeen), toMS(expiresAt), id, s.nowMS(), userID)
	if err != nil {
		return translate("touch session", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return translate("touch session", err)
	} else if n == 0 {
		return sesame.ErrSessionNotFound
	}
	return nil
}

// DeleteSession ends the session with that ID, if there is one: it deletes
// the session and its refresh tokens, and logs its revocation if it was
// live, in one transaction.
func (s *Store) DeleteSession(ctx context.Context, userID, id string) error {
	if err := s.deleteSession(ctx, userID, id); err != nil {
		return translate("delete session", err)
	}
	return nil
}

func (s *Store) deleteSession(ctx context.Context, userID, id string) error {
	now := s.nowMS()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var owned bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ? AND user_id = ?)`, id, userID).Scan(&owned); err != nil {
		return err
	}
	if !owned {
		return nil // no such session, or another user's: nothing to end
	}
	for _, step := range []struct {
		stmt *sql.Stmt
		args []any
	}{
		{s.stmts.logRevocation, []any{id, now}},
		{s.stmts.deleteSessionTokens, []any{id}},
		{s.stmts.deleteSession, []any{id}},
	} {
		if _, err := tx.StmtContext(ctx, step.stmt).ExecContext(ctx, step.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// UserSessions returns the live sessions of the user, oldest first.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sesame.Session, error) {
	rows, err := s.stmts.userSessions.QueryContext(ctx, userID, s.nowMS())
	if err != nil {
		return nil, translate("user sessions", err)
	}
	defer rows.Close()
	sessions := []sesame.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, translate("user sessions", err)
		}
		sessions = append(sessions, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("user sessions", err)
	}
	return sessions, nil
}

// DeleteUserSessions ends every live session of the user except exceptID,
// and returns their IDs, oldest first. With them go their refresh tokens,
// and their revocations are logged, in one transaction. Expired sessions are
// left to DeleteExpired.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	ids, err := s.deleteUserSessions(ctx, userID, exceptID)
	if err != nil {
		return nil, translate("delete user sessions", err)
	}
	return ids, nil
}

func (s *Store) deleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	now := s.nowMS()
	tx, err := s.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE: no session slips in between
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id FROM sessions
		WHERE user_id = ?1 AND id <> ?2 AND expires_at > ?3 ORDER BY created_at, rowid`,
		userID, exceptID, now)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return ids, nil
	}
	for _, q := range []string{
		`INSERT INTO revocations (session_id, at) SELECT id, ?3 FROM sessions
			WHERE user_id = ?1 AND id <> ?2 AND expires_at > ?3 ORDER BY created_at, rowid`,
		`DELETE FROM refresh_tokens WHERE session_id IN
			(SELECT id FROM sessions WHERE user_id = ?1 AND id <> ?2 AND expires_at > ?3)`,
		`DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2 AND expires_at > ?3`,
	} {
		if _, err := tx.ExecContext(ctx, q, userID, exceptID, now); err != nil {
			return nil, err
		}
	}
	return ids, tx.Commit()
}

// CountSessions returns the number of live sessions, counted on the
// expires_at index.
func (s *Store) CountSessions(ctx context.Context) (int, error) {
	var n int
	if err := s.stmts.countSessions.QueryRowContext(ctx, s.nowMS()).Scan(&n); err != nil {
		return 0, translate("count sessions", err)
	}
	return n, nil
}

// DeleteExpired removes the sessions whose ExpiresAt is not after the
// store's clock, with their refresh tokens, and the refresh tokens past
// their own ExpiresAt, and returns how many of these records it removed.
// It also drops the revocations logged more than RevocationRetention ago,
// without counting them; the expired sessions it removes are not logged as
// revoked (they had ended).
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	now := s.nowMS()
	retain := s.RevocationRetention
	if retain <= 0 {
		retain = sesame.DefaultRevocationRetention
	}
	if _, err := s.stmts.pruneRevocations.ExecContext(ctx, now-retain.Milliseconds()); err != nil {
		return 0, translate("delete expired", err)
	}
	sessions, err := sqlstore.Sweep(ctx, func(ctx context.Context) (int, bool, error) {
		return s.deleteExpiredSessions(ctx, now)
	})
	if err != nil {
		return sessions, translate("delete expired", err)
	}
	tokens, err := sqlstore.Sweep(ctx, func(ctx context.Context) (int, bool, error) {
		return execBatch(ctx, s.stmts.deleteExpiredTokens, now, sqlstore.SweepBatch)
	})
	if err != nil {
		return sessions + tokens, translate("delete expired", err)
	}
	return sessions + tokens, nil
}

// execBatch runs one batch of a sweep: a DELETE whose last argument is the
// batch size.
func execBatch(ctx context.Context, stmt *sql.Stmt, args ...any) (int, bool, error) {
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, false, err
	}
	n, err := res.RowsAffected()
	return int(n), sqlstore.Full(int(n)), err
}

// deleteExpiredSessions removes one batch of expired sessions and their
// refresh tokens in one transaction. It returns how many records it removed
// and whether there may be more sessions to remove.
func (s *Store) deleteExpiredSessions(ctx context.Context, now int64) (n int, more bool, err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	rows, err := tx.StmtContext(ctx, s.stmts.deleteExpired).QueryContext(ctx, now, sqlstore.SweepBatch)
	if err != nil {
		return 0, false, err
	}
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, false, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, false, err
	}
	res, err := tx.StmtContext(ctx, s.stmts.deleteTokensOf).ExecContext(ctx, string(list))
	if err != nil {
		return 0, false, err
	}
	tokens, err := res.RowsAffected()
	if err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	return len(ids) + int(tokens), sqlstore.Full(len(ids)), nil
}

func scanSession(row scanner) (sesame.Session, error) {
	var (
		sess                                  sesame.Session
		hash                                  []byte
		created, lastSeen, expires, absExpire int64
	)
	if err := row.Scan(&sess.ID, &hash, &sess.UserID, &created, &lastSeen, &expires, &absExpire,
		&sess.IP, &sess.UserAgent, &sess.Kind); err != nil {
		return sesame.Session{}, err
	}
	if len(hash) != len(sess.SecretHash) {
		return sesame.Session{}, fmt.Errorf("session %s: secret hash of %d bytes", sess.ID, len(hash))
	}
	copy(sess.SecretHash[:], hash)
	sess.CreatedAt = fromMS(created)
	sess.LastSeenAt = fromMS(lastSeen)
	sess.ExpiresAt = fromMS(expires)
	sess.AbsoluteExpiresAt = fromMS(absExpire)
	return sess, nil
}
