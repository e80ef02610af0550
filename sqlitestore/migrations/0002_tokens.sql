-- 0002: session kinds, refresh-token families, the revocation log and
-- signing keys. Every time is INTEGER unix milliseconds (UTC).

ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'cookie'; -- sesame.KindCookie or KindToken

-- A family is the tokens of one session (session_id), and of its user
-- (sessions.user_id, not kept here again). No foreign key: the
-- store deletes a session's tokens with it, in the same transaction, and
-- reads a token only joined to its live session, so a token left behind
-- (its session replaced through another's secret hash) is never seen and
-- goes when its own deadline passes.
CREATE TABLE refresh_tokens (
	hash           BLOB PRIMARY KEY,  -- SHA-256 of the token
	session_id     TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,  -- the family's end
	retired_at     INTEGER,           -- NULL while the family's current token
	successor_hash BLOB               -- NULL while the family's current token
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Sessions ended before their deadline, for verifiers of access tokens.
-- AUTOINCREMENT: a seq is never reused, even after the newest rows are
-- dropped, so a reader's "since seq" never skips an entry.
CREATE TABLE revocations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id TEXT NOT NULL,
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_at ON revocations (at);

CREATE TABLE signing_keys (
	id             TEXT PRIMARY KEY, -- kid
	alg            TEXT NOT NULL,
	public         BLOB NOT NULL,    -- PKIX DER
	private_sealed BLOB NOT NULL,    -- PKCS #8 DER sealed under the master key
	created_at     INTEGER NOT NULL,
	retired_at     INTEGER           -- NULL for the current key
) STRICT;
