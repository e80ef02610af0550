package sqlitestore

import (
	"context"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/internal/sqlstore"
)

// Record appends e to the audit log.
func (s *Store) Record(ctx context.Context, e sesame.Event) error {
	if _, err := s.stmts.recordEvent.ExecContext(ctx,
		toMS(e.Time), e.Type, e.UserID, e.IP, e.UserAgent, e.SessionID, e.Actor); err != nil {
		return translate("record event", err)
	}
	return nil
}

// Events returns the events matching q, newest first (in the order they
// were recorded, whatever their Time), at most q.PageSize() of them.
func (s *Store) Events(ctx context.Context, q sesame.EventQuery) ([]sesame.Event, error) {
	limit := q.PageSize()
	stmt, args := s.stmts.events, []any{limit}
	if q.UserID != "" {
		stmt, args = s.stmts.userEvents, []any{q.UserID, limit}
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, translate("events", err)
	}
	defer rows.Close()
	events := []sesame.Event{}
	for rows.Next() {
		var (
			e  sesame.Event
			ms int64
		)
		if err := rows.Scan(&ms, &e.Type, &e.UserID, &e.IP, &e.UserAgent, &e.SessionID, &e.Actor); err != nil {
			return nil, translate("events", err)
		}
		e.Time = fromMS(ms)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("events", err)
	}
	return events, nil
}

// DeleteEventsBefore removes the events whose Time is before t, in batches
// of sqlstore.SweepBatch, each its own short write transaction, and returns how
// many it removed.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := sqlstore.Sweep(ctx, func(ctx context.Context) (int, bool, error) {
		return execBatch(ctx, s.stmts.deleteEvents, toMS(t), sqlstore.SweepBatch)
	})
	if err != nil {
		return n, translate("delete events", err)
	}
	return n, nil
}
