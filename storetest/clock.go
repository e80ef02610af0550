package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// Clock is a settable time source for a store's Now field. Until Set, it
// is the wall clock (the rest of the suite assumes one).
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the time last Set, or the wall clock's.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

// Set sets the clock's time.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// testClock runs a session store on a clock years away from the wall
// clock: a session's end is judged by the store's clock (Store.Now), not
// the database's or the machine's, to the millisecond, in every method that
// reads, touches, lists, counts, ends or sweeps sessions.
func testClock(t *testing.T, st sesame.SessionStore, clk *Clock) {
	t0 := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	clk.Set(t0)
	user := sesame.NewID()
	live := liveSession(user, t0)
	live.ExpiresAt, live.AbsoluteExpiresAt = t0.Add(time.Hour), t0.Add(2*time.Hour)
	// Ended an hour before t0, yet years ahead of the wall clock.
	dead := liveSession(user, t0.Add(-2*time.Hour))
	dead.ExpiresAt = t0.Add(-time.Hour)
	mustCreateSession(t, st, live)
	mustCreateSession(t, st, dead)

	checkGone(t, st, "ended on the store's clock", dead.SecretHash)
	checkFound(t, st, live)
	checkUserSessions(t, st, user, live)
	if c, ok := st.(sesame.SessionCounter); ok {
		if n, err := c.CountSessions(ctx(t)); err != nil || n != 1 {
			t.Errorf("CountSessions = %d, %v; want 1 (the session ended on the store's clock is not counted)", n, err)
		}
	}
	if sw, ok := st.(sesame.Sweeper); ok {
		if n, err := sw.DeleteExpired(ctx(t)); err != nil || n != 1 {
			t.Errorf("DeleteExpired = %d, %v; want 1", n, err)
		}
		checkFound(t, st, live)
	}

	// A millisecond before its ExpiresAt a session is live; at it, gone.
	clk.Set(live.ExpiresAt.Add(-time.Millisecond))
	checkFound(t, st, live)
	clk.Set(live.ExpiresAt)
	checkGone(t, st, "at its ExpiresAt", live.SecretHash)
	if err := st.TouchSession(ctx(t), live.UserID, live.ID, t0, t0.Add(48*time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession at ExpiresAt = %v, want ErrSessionNotFound", err)
	}
	if ids, err := st.DeleteUserSessions(ctx(t), user, ""); err != nil || len(ids) != 0 {
		t.Errorf("DeleteUserSessions with only ended sessions = %v, %v; want none", ids, err)
	}
	checkUserSessions(t, st, user)
}
