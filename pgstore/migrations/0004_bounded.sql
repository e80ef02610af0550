-- 0004: bounded refresh-token families and the audit log's retention.

-- A token's place in its family: 0 for the first, one more per rotation.
-- Tokens stored before this migration read as generation 0; a family
-- forgets its retired tokens below its newest 64 generations, so those go
-- too once the family has rotated 65 more times.
ALTER TABLE refresh_tokens ADD COLUMN generation bigint NOT NULL DEFAULT 0;
DROP INDEX refresh_tokens_session_id;
CREATE INDEX refresh_tokens_session_generation ON refresh_tokens (session_id, generation);

-- DeleteEventsBefore finds the events past the retention by time.
CREATE INDEX audit_events_time ON audit_events (time);
