package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
)

// statements are prepared once at Open. database/sql prepares each again on
// every pooled connection the first time that connection runs it, and keeps
// it, so a lookup costs a bind and a step, never a parse.
type statements struct {
	// reader
	ping          *sql.Stmt
	userByID      *sql.Stmt
	userByEmail   *sql.Stmt
	listUsers     *sql.Stmt
	session       *sql.Stmt
	userSessions  *sql.Stmt
	countSessions *sql.Stmt
	events        *sql.Stmt
	userEvents    *sql.Stmt
	refreshToken  *sql.Stmt
	currentToken  *sql.Stmt
	revocations   *sql.Stmt
	signingKeys   *sql.Stmt

	// writer
	createUser    *sql.Stmt
	setPassword   *sql.Stmt
	swapPassword  *sql.Stmt
	swapAdvance   *sql.Stmt
	advanceGen    *sql.Stmt
	createSession *sql.Stmt
	touchSession  *sql.Stmt
	deleteSession *sql.Stmt
	deleteExpired *sql.Stmt
	recordEvent   *sql.Stmt
	deleteEvents  *sql.Stmt

	// writer, for a session's end: used inside transactions
	logRevocation       *sql.Stmt
	deleteSessionTokens *sql.Stmt
	deleteTokensOf      *sql.Stmt
	deleteExpiredTokens *sql.Stmt
	pruneRevocations    *sql.Stmt

	// writer: refresh tokens and keys
	createRefreshToken *sql.Stmt
	rotationCandidate  *sql.Stmt
	retireToken        *sql.Stmt
	insertToken        *sql.Stmt
	forgetTokens       *sql.Stmt
	retireKeys         *sql.Stmt
	insertKey          *sql.Stmt
	deleteRetiredKeys  *sql.Stmt

	all []*sql.Stmt
}

const (
	userColumns    = `id, email, roles, password_hash, created_at, disabled, credential_gen`
	sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent, kind`
	eventColumns   = `time, type, user_id, ip, user_agent, session_id, actor`
	tokenColumns   = `r.hash, r.session_id, s.user_id, r.created_at, r.expires_at, r.retired_at, r.successor_hash, r.generation`
	keyColumns     = `id, alg, public, private_sealed, created_at, retired_at`

	// liveToken selects the refresh token r whose hash is ?1 and which,
	// with its session s, is live at ?2 (the clock in unix ms).
	liveToken = ` FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
		WHERE r.hash = ?1 AND r.expires_at > ?2 AND s.expires_at > ?2`
)

func (st *statements) prepare(ctx context.Context, writer, reader *sql.DB) error {
	for _, p := range []struct {
		db    *sql.DB
		stmt  **sql.Stmt
		query string
	}{
		{reader, &st.ping, `SELECT count(*) FROM schema_migrations`},
		{reader, &st.userByID, `SELECT ` + userColumns + ` FROM users WHERE id = ?`},
		{reader, &st.userByEmail, `SELECT ` + userColumns + ` FROM users WHERE email = ?`},
		{reader, &st.listUsers, `SELECT ` + userColumns + ` FROM users ORDER BY created_at, rowid`},
		// ?2 is the clock in unix ms: an expired session is invisible.
		{reader, &st.session, `SELECT ` + sessionColumns + ` FROM sessions WHERE secret_hash = ?1 AND expires_at > ?2`},
		{reader, &st.userSessions, `SELECT ` + sessionColumns + ` FROM sessions
			WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, rowid`},
		{reader, &st.countSessions, `SELECT count(*) FROM sessions WHERE expires_at > ?`},
		{reader, &st.events, `SELECT ` + eventColumns + ` FROM audit_events ORDER BY id DESC LIMIT ?`},
		{reader, &st.userEvents, `SELECT ` + eventColumns + ` FROM audit_events
			WHERE user_id = ? ORDER BY id DESC LIMIT ?`},
		{reader, &st.refreshToken, `SELECT ` + tokenColumns + liveToken},
		// ?3 is the clock.
		{reader, &st.currentToken, `SELECT ` + tokenColumns + ` FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
			WHERE r.session_id = ?1 AND s.user_id = ?2 AND r.retired_at IS NULL AND r.expires_at > ?3 AND s.expires_at > ?3
			ORDER BY r.generation DESC LIMIT 1`},
		{reader, &st.revocations, `SELECT seq, session_id, at FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?`},
		{reader, &st.signingKeys, `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at DESC, rowid DESC`},

		{writer, &st.createUser, `INSERT INTO users (` + userColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{writer, &st.setPassword, `UPDATE users SET password_hash = ?, credential_gen = credential_gen + 1 WHERE id = ?`},
		// Compare-and-swap of the hash; the second also advances the
		// credential generation in the same write.
		{writer, &st.swapPassword, `UPDATE users SET password_hash = ?1 WHERE id = ?2 AND password_hash = ?3`},
		{writer, &st.swapAdvance, `UPDATE users SET password_hash = ?1, credential_gen = credential_gen + 1
			WHERE id = ?2 AND password_hash = ?3`},
		{writer, &st.advanceGen, `UPDATE users SET credential_gen = credential_gen + 1 WHERE id = ?`},
		// REPLACE: a session with the same id is overwritten, old secret
		// hash included.
		{writer, &st.createSession, `INSERT OR REPLACE INTO sessions (` + sessionColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{writer, &st.touchSession, `UPDATE sessions SET last_seen_at = ?1, expires_at = ?2
			WHERE id = ?3 AND expires_at > ?4 AND user_id = ?5`},
		{writer, &st.deleteSession, `DELETE FROM sessions WHERE id = ?`},
		// In batches, so that a large sweep does not hold the write lock
		// against the other process for long.
		{writer, &st.deleteExpired, `DELETE FROM sessions WHERE rowid IN
			(SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?2) RETURNING id`},
		{writer, &st.recordEvent, `INSERT INTO audit_events (` + eventColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{writer, &st.deleteEvents, `DELETE FROM audit_events WHERE id IN
			(SELECT id FROM audit_events WHERE time < ?1 LIMIT ?2)`},

		// ?2 is the clock: only a live session is logged as revoked.
		{writer, &st.logRevocation, `INSERT INTO revocations (session_id, at)
			SELECT id, ?2 FROM sessions WHERE id = ?1 AND expires_at > ?2`},
		{writer, &st.deleteSessionTokens, `DELETE FROM refresh_tokens WHERE session_id = ?`},
		// ?1 is a JSON array of session IDs.
		{writer, &st.deleteTokensOf, `DELETE FROM refresh_tokens WHERE session_id IN (SELECT value FROM json_each(?1))`},
		{writer, &st.deleteExpiredTokens, `DELETE FROM refresh_tokens WHERE hash IN
			(SELECT hash FROM refresh_tokens WHERE expires_at <= ?1 LIMIT ?2)`},
		{writer, &st.pruneRevocations, `DELETE FROM revocations WHERE at < ?`},

		// Only while its live session exists: ?5 is the clock.
		{writer, &st.createRefreshToken, `INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, generation)
			SELECT ?1, ?2, ?3, ?4, ?6 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?2 AND expires_at > ?5)`},
		// The token, and whether its successor (if any) is current.
		{writer, &st.rotationCandidate, `SELECT ` + tokenColumns + `,
			(SELECT n.retired_at IS NULL FROM refresh_tokens n WHERE n.hash = r.successor_hash)` + liveToken},
		{writer, &st.retireToken, `UPDATE refresh_tokens SET retired_at = ?2, successor_hash = ?3
			WHERE hash = ?1 AND retired_at IS NULL`},
		{writer, &st.insertToken, `INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, generation) VALUES (?, ?, ?, ?, ?)`},
		// The retired tokens of family ?1 below generation ?2.
		{writer, &st.forgetTokens, `DELETE FROM refresh_tokens
			WHERE session_id = ?1 AND generation < ?2 AND retired_at IS NOT NULL`},
		{writer, &st.retireKeys, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`},
		{writer, &st.insertKey, `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, NULL)`},
		{writer, &st.deleteRetiredKeys, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.stmt = stmt
		st.all = append(st.all, stmt)
	}
	return nil
}

func (st *statements) close() {
	for _, s := range st.all {
		s.Close()
	}
	st.all = nil
}
