-- 0003: disabled users, and who performed an administrative action.

ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false; -- sign-in refused
ALTER TABLE audit_events ADD COLUMN actor text NOT NULL DEFAULT ''; -- admin's user id, "cli", or empty
