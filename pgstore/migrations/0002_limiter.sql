-- 0002: login-throttle counters, shared by every node on this database.
CREATE TABLE login_attempts (
	key      text PRIMARY KEY,
	count    integer NOT NULL,
	reset_at timestamptz NOT NULL
);
CREATE INDEX login_attempts_reset_at ON login_attempts (reset_at);
