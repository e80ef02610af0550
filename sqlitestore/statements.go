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

	// writer
	createUser    *sql.Stmt
	setPassword   *sql.Stmt
	createSession *sql.Stmt
	touchSession  *sql.Stmt
	deleteSession *sql.Stmt
	deleteExpired *sql.Stmt
	recordEvent   *sql.Stmt

	all []*sql.Stmt
}

const (
	userColumns    = `id, email, roles, password_hash, created_at`
	sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent`
	eventColumns   = `time, type, user_id, ip, user_agent, session_id`
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

		{writer, &st.createUser, `INSERT INTO users (` + userColumns + `) VALUES (?, ?, ?, ?, ?)`},
		{writer, &st.setPassword, `UPDATE users SET password_hash = ? WHERE id = ?`},
		// REPLACE: a session with the same id is overwritten, old secret
		// hash included.
		{writer, &st.createSession, `INSERT OR REPLACE INTO sessions (` + sessionColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{writer, &st.touchSession, `UPDATE sessions SET last_seen_at = ?1, expires_at = ?2
			WHERE id = ?3 AND expires_at > ?4`},
		{writer, &st.deleteSession, `DELETE FROM sessions WHERE id = ?`},
		// In batches, so that a large sweep does not hold the write lock
		// against the other process for long.
		{writer, &st.deleteExpired, `DELETE FROM sessions WHERE rowid IN
			(SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?2)`},
		{writer, &st.recordEvent, `INSERT INTO audit_events (` + eventColumns + `) VALUES (?, ?, ?, ?, ?, ?)`},
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
