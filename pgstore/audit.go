package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
)

// Event limits: Events returns DefaultEventLimit events when the query does
// not say, and never more than MaxEventLimit.
const (
	DefaultEventLimit = 1000
	MaxEventLimit     = 10000
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
// were recorded, whatever their Time): at most q.Limit, DefaultEventLimit
// if q.Limit is not positive, and never more than MaxEventLimit.
func (s *Store) Events(ctx context.Context, q sesame.EventQuery) ([]sesame.Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	limit = min(limit, MaxEventLimit)
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
