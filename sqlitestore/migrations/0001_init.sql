-- 0001: users, sessions and the audit log.
-- Every time is INTEGER unix milliseconds (UTC).

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE, -- normalised by sesame.NormalizeEmail
	roles         TEXT NOT NULL,        -- JSON array of strings, or null
	password_hash TEXT NOT NULL,        -- PHC string
	created_at    INTEGER NOT NULL
) STRICT;

-- No foreign key to users: the store keeps whatever session it is given,
-- and removing a user is the caller's business (DeleteUserSessions first).
CREATE TABLE sessions (
	id                  TEXT PRIMARY KEY,      -- public handle
	secret_hash         BLOB NOT NULL UNIQUE,  -- SHA-256 of the cookie secret
	user_id             TEXT NOT NULL,
	created_at          INTEGER NOT NULL,
	last_seen_at        INTEGER NOT NULL,
	expires_at          INTEGER NOT NULL,
	absolute_expires_at INTEGER NOT NULL,
	ip                  TEXT NOT NULL,
	user_agent          TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE audit_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	time       INTEGER NOT NULL,
	type       TEXT NOT NULL,
	user_id    TEXT NOT NULL, -- empty for a failed login of an unknown email
	ip         TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	session_id TEXT NOT NULL
) STRICT;
CREATE INDEX audit_events_user_id ON audit_events (user_id, id);
