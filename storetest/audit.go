package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunAudit tests a sesame.AuditLog. newStore must return a fresh, empty
// store on every call. The suite records a handful of events and assumes
// the store's default Limit is at least that many.
func RunAudit(t *testing.T, newStore func(t *testing.T) sesame.AuditLog) {
	userA, userB := sesame.NewID(), sesame.NewID()
	base := time.Now().Add(-time.Hour)
	// Recorded in this order, each a second after the one before.
	events := []sesame.Event{
		{Type: sesame.EventUserCreated, UserID: userA, IP: "203.0.113.7", UserAgent: "curl/8.5.0"},
		{Type: sesame.EventLoginFailed, UserID: "", IP: "2001:db8::1", UserAgent: "Navigateur « spécial » 日本語"},
		{Type: sesame.EventLoginSucceeded, UserID: userA, IP: "203.0.113.7", UserAgent: longUA, SessionID: sesame.NewID()},
		{Type: sesame.EventLoginSucceeded, UserID: userB, IP: "198.51.100.1", UserAgent: "Firefox", SessionID: sesame.NewID()},
		{Type: sesame.EventLogout, UserID: userA, IP: "203.0.113.7", UserAgent: "curl/8.5.0", SessionID: sesame.NewID()},
		{Type: sesame.EventUserDisabled, UserID: userB, IP: "198.51.100.2", UserAgent: "sesame-cli", Actor: sesame.ActorCLI},
		{Type: sesame.EventRolesChanged, UserID: userB, IP: "198.51.100.2", UserAgent: "Firefox", Actor: userA},
	}
	for i := range events {
		events[i].Time = base.Add(time.Duration(i)*time.Second + 123456*time.Nanosecond)
	}
	record := func(t *testing.T) sesame.AuditLog {
		st := newStore(t)
		for _, e := range events {
			if err := st.Record(ctx(t), e); err != nil {
				t.Fatalf("Record(%s): %v", e.Type, err)
			}
		}
		return st
	}
	// check checks that Events(q) returns events[want...] in that order.
	check := func(t *testing.T, st sesame.AuditLog, q sesame.EventQuery, want ...int) {
		t.Helper()
		got, err := st.Events(ctx(t), q)
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Events(%+v) returned %d events, want %d:\n%v", q, len(got), len(want), eventTypes(got))
		}
		for i, w := range want {
			e := events[w]
			g := got[i]
			if g.Type != e.Type || g.UserID != e.UserID || g.IP != e.IP || g.UserAgent != e.UserAgent ||
				g.SessionID != e.SessionID || g.Actor != e.Actor || !sameTime(g.Time, e.Time) {
				t.Errorf("Events(%+v)[%d] = %+v\nwant %+v", q, i, g, e)
			}
		}
	}

	t.Run("Empty", func(t *testing.T) {
		check(t, newStore(t), sesame.EventQuery{})
	})
	t.Run("NewestFirst", func(t *testing.T) {
		check(t, record(t), sesame.EventQuery{}, 6, 5, 4, 3, 2, 1, 0)
	})
	t.Run("UserID", func(t *testing.T) {
		st := record(t)
		check(t, st, sesame.EventQuery{UserID: userA}, 4, 2, 0)
		check(t, st, sesame.EventQuery{UserID: userB}, 6, 5, 3)
		check(t, st, sesame.EventQuery{UserID: sesame.NewID()})
	})
	t.Run("Limit", func(t *testing.T) {
		st := record(t)
		check(t, st, sesame.EventQuery{Limit: 2}, 6, 5)
		check(t, st, sesame.EventQuery{Limit: 1, UserID: userA}, 4)
		check(t, st, sesame.EventQuery{Limit: 2, UserID: userA}, 4, 2)
		check(t, st, sesame.EventQuery{Limit: 100}, 6, 5, 4, 3, 2, 1, 0)
	})
	t.Run("DeleteEventsBefore", func(t *testing.T) {
		st := record(t)
		// Half a second before an event: a store that keeps milliseconds
		// rounds nothing across it.
		before := func(i int) time.Time { return events[i].Time.Add(-500 * time.Millisecond) }
		deleteBefore := func(at time.Time, want int) {
			t.Helper()
			if n, err := st.DeleteEventsBefore(ctx(t), at); n != want || err != nil {
				t.Errorf("DeleteEventsBefore(%v) = %d, %v; want %d, nil", at, n, err, want)
			}
		}
		deleteBefore(before(0), 0)
		check(t, st, sesame.EventQuery{}, 6, 5, 4, 3, 2, 1, 0)
		deleteBefore(before(2), 2)
		check(t, st, sesame.EventQuery{}, 6, 5, 4, 3, 2)
		check(t, st, sesame.EventQuery{UserID: userA}, 4, 2)
		deleteBefore(before(2), 0)
		// Events keep coming after a prune.
		if err := st.Record(ctx(t), events[1]); err != nil {
			t.Fatalf("Record: %v", err)
		}
		check(t, st, sesame.EventQuery{}, 1, 6, 5, 4, 3, 2)
		deleteBefore(time.Now().Add(time.Hour), 6)
		check(t, st, sesame.EventQuery{})
	})
}

func eventTypes(list []sesame.Event) []string {
	var s []string
	for _, e := range list {
		s = append(s, fmt.Sprintf("%s %s %s", e.Time.Format(time.RFC3339Nano), e.Type, e.UserID))
	}
	return s
}
