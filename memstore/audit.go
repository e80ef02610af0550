package memstore

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// MaxEvents is how many audit events a Store keeps. Past it, each new event
// replaces the oldest, so the log costs at most about 30 MB (an event with
// typical fields is some 300 bytes). It is not durable in any case: a
// deployment that must keep its audit trail uses a database.
const MaxEvents = 100_000

// audit is the audit part of Store: a ring of the last MaxEvents events.
// Until it is full, ring grows by append; then next is the index of the
// oldest event, which the next Record overwrites.
type audit struct {
	mu   sync.RWMutex
	ring []sesame.Event
	next int
}

// Record appends e, dropping the oldest event if MaxEvents are kept. An
// event with a zero Time is stamped with the store's clock.
func (s *Store) Record(ctx context.Context, e sesame.Event) error {
	if e.Time.IsZero() {
		e.Time = fromNanos(s.now())
	}
	e.Time = e.Time.Round(0)
	e.Type = strings.Clone(e.Type)
	e.UserID = strings.Clone(e.UserID)
	e.IP = strings.Clone(e.IP)
	e.UserAgent = strings.Clone(e.UserAgent)
	e.SessionID = strings.Clone(e.SessionID)
	e.Actor = strings.Clone(e.Actor)
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ring) < MaxEvents {
		a.ring = append(a.ring, e)
		return nil
	}
	a.ring[a.next] = e
	a.next = (a.next + 1) % MaxEvents
	return nil
}

// Events returns the events matching q, most recently recorded first, at
// most q.PageSize() of them.
func (s *Store) Events(ctx context.Context, q sesame.EventQuery) ([]sesame.Event, error) {
	limit := q.PageSize()
	a := &s.audit
	a.mu.RLock()
	defer a.mu.RUnlock()
	list := []sesame.Event{}
	n := len(a.ring)
	for i := range n {
		e := &a.ring[(a.next+n-1-i)%n]
		if q.UserID != "" && e.UserID != q.UserID {
			continue
		}
		list = append(list, *e)
		if len(list) == limit {
			break
		}
	}
	return list, nil
}

// DeleteEventsBefore removes the events whose Time is before t and returns
// how many it removed. The ones it keeps stay in the order they were
// recorded.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int, error) {
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.ring)
	kept := make([]sesame.Event, 0, n)
	for i := range n {
		if e := a.ring[(a.next+i)%n]; !e.Time.Before(t) {
			kept = append(kept, e)
		}
	}
	if len(kept) == n {
		return 0, nil
	}
	a.ring, a.next = kept, 0
	return n - len(kept), nil
}
