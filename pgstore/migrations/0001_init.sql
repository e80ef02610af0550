-- 0001: users, sessions, refresh-token families, the revocation log,
-- signing keys and the audit log. Every time is timestamptz (microseconds);
-- the store passes its own clock as a parameter wherever "now" matters and
-- never calls now(), so that Store.Now decides what has expired.

CREATE TABLE users (
	id            text PRIMARY KEY,
	email         text NOT NULL CONSTRAINT users_email_key UNIQUE, -- normalised by sesame.NormalizeEmail
	roles         text[] NOT NULL,
	password_hash text NOT NULL, -- PHC string
	created_at    timestamptz NOT NULL
);

-- No foreign key to users: the store keeps whatever session it is given,
-- and removing a user is the caller's business (DeleteUserSessions first).
CREATE TABLE sessions (
	id                  text PRIMARY KEY, -- public handle
	secret_hash         bytea NOT NULL CONSTRAINT sessions_secret_hash_key UNIQUE
	                    CHECK (octet_length(secret_hash) = 32), -- SHA-256 of the secret
	user_id             text NOT NULL,
	created_at          timestamptz NOT NULL,
	last_seen_at        timestamptz NOT NULL,
	expires_at          timestamptz NOT NULL,
	absolute_expires_at timestamptz NOT NULL,
	ip                  text NOT NULL,
	user_agent          text NOT NULL,
	kind                text NOT NULL DEFAULT 'cookie' CHECK (kind IN ('cookie', 'token'))
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- A family is the tokens of one session (session_id), and of its user
-- (sessions.user_id, not kept here again). No foreign key, as in
-- sqlitestore: the store deletes a session's tokens with it, in the same
-- transaction, and reads a token only joined to its live session.
CREATE TABLE refresh_tokens (
	hash           bytea PRIMARY KEY,  -- SHA-256 of the token
	session_id     text NOT NULL,
	created_at     timestamptz NOT NULL,
	expires_at     timestamptz NOT NULL, -- the family's end
	retired_at     timestamptz,          -- NULL while the family's current token
	successor_hash bytea                 -- NULL while the family's current token
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Sessions ended before their deadline, for verifiers of access tokens.
-- A sequence hands out seq in the order transactions ask, not the order
-- they commit; the store takes an advisory lock around each insert so that
-- the two orders agree (see revocations.go).
CREATE TABLE revocations (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_id text NOT NULL,
	at         timestamptz NOT NULL
);
CREATE INDEX revocations_at ON revocations (at);

CREATE TABLE signing_keys (
	id             text PRIMARY KEY, -- kid
	seq            bigint GENERATED ALWAYS AS IDENTITY, -- order of AddKey, for ties of created_at
	alg            text NOT NULL,
	public         bytea NOT NULL, -- PKIX DER
	private_sealed bytea NOT NULL, -- PKCS #8 DER sealed under the master key
	created_at     timestamptz NOT NULL,
	retired_at     timestamptz     -- NULL for the current key
);
-- At most one current key, whatever a caller does.
CREATE UNIQUE INDEX signing_keys_current ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE audit_events (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time       timestamptz NOT NULL,
	type       text NOT NULL,
	user_id    text NOT NULL, -- empty for a failed login of an unknown email
	ip         text NOT NULL,
	user_agent text NOT NULL,
	session_id text NOT NULL
);
CREATE INDEX audit_events_user_id ON audit_events (user_id, id);
