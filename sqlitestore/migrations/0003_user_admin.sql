-- 0003: disabled users, and who performed an administrative action.

ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0; -- 1: sign-in refused
ALTER TABLE audit_events ADD COLUMN actor TEXT NOT NULL DEFAULT ''; -- admin's user id, "cli", or empty
