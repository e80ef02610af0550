package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

const eventColumns = `time, type, user_id, ip, user_agent, session_id, actor`

// Record appends e to the audit log. NUL bytes and invalid UTF-8 in its
// fields are stored as U+FFFD: a record is never refused for its content.
func (s *Store) Record(ctx context.Context, e sesame.Event) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_events (`+eventColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.Time, clean(e.Type), clean(e.UserID), clean(e.IP), clean(e.UserAgent), clean(e.SessionID), clean(e.Actor)); err != nil {
		return translate("record event", err)
	}
	return nil
}

// Events returns the events matching q, newest first (in the order they
// were recorded, whatever their Time), at most q.PageSize() of them.
func (s *Store) Events(ctx context.Context, q sesame.EventQuery) ([]sesame.Event, error) {
	limit := q.PageSize()
	query, args := `SELECT `+eventColumns+` FROM audit_events ORDER BY id DESC LIMIT $1`, []any{limit}
	if q.UserID != "" {
		if !storable(q.UserID) {
			return []sesame.Event{}, nil
		}
		query, args = `SELECT `+eventColumns+` FROM audit_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, []any{q.UserID, limit}
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, translate("events", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sesame.Event, error) {
		var e sesame.Event
		err := row.Scan(&e.Time, &e.Type, &e.UserID, &e.IP, &e.UserAgent, &e.SessionID, &e.Actor)
		e.Time = e.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, translate("events", err)
	}
	return events, nil
}

// DeleteEventsBefore removes the events whose Time is before t, in batches
// of sqlstore.SweepBatch, each its own short transaction, and returns how many it
// removed. Several nodes may prune at once: each skips the rows another
// has locked.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := sqlstore.Sweep(ctx, func(ctx context.Context) (int, bool, error) {
		return s.execBatch(ctx, `DELETE FROM audit_events WHERE id IN
			(SELECT id FROM audit_events WHERE time < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, t, sqlstore.SweepBatch)
	})
	if err != nil {
		return n, translate("delete events", err)
	}
	return n, nil
}
