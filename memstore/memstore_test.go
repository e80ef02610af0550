package memstore_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		st, clk := memstore.New(), &storetest.Clock{}
		st.Now = clk.Now
		return storetest.Stores{Users: st, Sessions: st, Refresh: st, Revocations: st, Keys: st, Audit: st, Limiter: st, Clock: clk}
	})
}

// clock is a fake clock for Store.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClockStore() (*memstore.Store, *clock) {
	c := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)}
	st := memstore.New()
	st.Now = c.Now
	return st, c
}

func TestSessionExpiresOnStoreClock(t *testing.T) {
	st, c := newClockStore()
	ctx := t.Context()
	_, hash := sesame.NewSecret()
	s := sesame.Session{ID: sesame.NewID(), SecretHash: hash, UserID: "u",
		CreatedAt: c.Now(), LastSeenAt: c.Now(), ExpiresAt: c.Now().Add(time.Minute)}
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute - 1)
	if _, err := st.Session(ctx, hash); err != nil {
		t.Fatalf("a nanosecond before ExpiresAt: %v", err)
	}
	c.Add(1)
	if _, err := st.Session(ctx, hash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("at ExpiresAt: error %v, want ErrSessionNotFound", err)
	}
	if n, _ := st.DeleteExpired(ctx); n != 1 {
		t.Errorf("DeleteExpired = %d, want 1", n)
	}
}

// TestSessionIDForms checks IDs that the compact index cannot hold: not hex,
// upper-case hex (which would not encode back to the same string), and the
// empty string.
func TestSessionIDForms(t *testing.T) {
	st := memstore.New()
	ctx := t.Context()
	ids := []string{
		sesame.NewID(),
		strings.ToUpper(sesame.NewID()),
		"session-1",
		"",
		sesame.NewID()[:31] + "g",
		"ü" + sesame.NewID()[2:],
	}
	hashes := map[string][32]byte{}
	for _, id := range ids {
		_, hash := sesame.NewSecret()
		hashes[id] = hash
		err := st.CreateSession(ctx, sesame.Session{ID: id, SecretHash: hash, UserID: "u",
			ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		got, err := st.Session(ctx, hashes[id])
		if err != nil || got.ID != id {
			t.Errorf("Session(hash of %q) = %q, %v", id, got.ID, err)
		}
		if err := st.TouchSession(ctx, "u", id, time.Now(), time.Now().Add(2*time.Hour)); err != nil {
			t.Errorf("TouchSession(%q): %v", id, err)
		}
	}
	// An upper-case ID names another session than its lower-case form.
	lower := strings.ToLower(ids[1])
	if err := st.TouchSession(ctx, "u", lower, time.Now(), time.Now()); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession(%q) = %v, want ErrSessionNotFound", lower, err)
	}
	ended, err := st.DeleteUserSessions(ctx, "u", "session-1")
	if err != nil || len(ended) != len(ids)-1 {
		t.Errorf("DeleteUserSessions = %q, %v; want %d IDs", ended, err, len(ids)-1)
	}
	if _, err := st.Session(ctx, hashes["session-1"]); err != nil {
		t.Errorf("the excepted session: %v", err)
	}
}

func TestSessionHashInUse(t *testing.T) {
	st := memstore.New()
	ctx := t.Context()
	_, hash := sesame.NewSecret()
	a := sesame.Session{ID: sesame.NewID(), SecretHash: hash, UserID: "a", ExpiresAt: time.Now().Add(time.Hour)}
	b := sesame.Session{ID: sesame.NewID(), SecretHash: hash, UserID: "b", ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, b); err == nil {
		t.Fatal("CreateSession with another live session's hash succeeded")
	}
	if got, err := st.Session(ctx, hash); err != nil || got.ID != a.ID {
		t.Errorf("Session = %q, %v; want the first session", got.ID, err)
	}
	// An expired holder of the hash gives way.
	if err := st.TouchSession(ctx, a.UserID, a.ID, time.Now(), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, b); err != nil {
		t.Fatalf("CreateSession over an expired session's hash: %v", err)
	}
	if got, err := st.Session(ctx, hash); err != nil || got.ID != b.ID {
		t.Errorf("Session = %q, %v; want the second session", got.ID, err)
	}
	if n, _ := st.DeleteExpired(ctx); n != 0 {
		t.Errorf("DeleteExpired = %d, want 0: the expired session was replaced", n)
	}
}

// TestSessionTimes checks times the Unix-nanosecond encoding cannot hold.
func TestSessionTimes(t *testing.T) {
	st := memstore.New()
	ctx := t.Context()
	_, hash := sesame.NewSecret()
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	s := sesame.Session{ID: sesame.NewID(), SecretHash: hash, ExpiresAt: far, AbsoluteExpiresAt: far}
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := st.Session(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.IsZero() || !got.LastSeenAt.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.CreatedAt, got.LastSeenAt)
	}
	if got.ExpiresAt.Year() != 2262 {
		t.Errorf("year 9999 came back as %v, want it clamped to 2262", got.ExpiresAt)
	}
}

// TestSessionModel runs random operations against the store and a plain map
// and compares them, with enough sessions that the index grows and shrinks,
// and with made-up hashes that share long prefixes.
func TestSessionModel(t *testing.T) {
	st, c := newClockStore()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	type entry struct {
		s    sesame.Session
		live bool
	}
	model := map[string]*entry{} // by ID
	var ids []string
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	for step := range 60000 {
		grow := step < 30000
		switch op := rng.IntN(10); {
		case op < 5 && grow || op < 2:
			var hash [32]byte
			hash[31], hash[30], hash[29] = byte(step), byte(step>>8), byte(step>>16)
			id := sesame.NewID()
			if rng.IntN(8) == 0 {
				id = fmt.Sprint("odd-", step)
			}
			s := sesame.Session{ID: id, SecretHash: hash, UserID: users[rng.IntN(len(users))],
				CreatedAt: c.Now(), ExpiresAt: c.Now().Add(time.Duration(1+rng.IntN(100)) * time.Second)}
			if err := st.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
			model[id] = &entry{s, true}
			ids = append(ids, id)
		case len(ids) == 0:
		case op < 8:
			i := rng.IntN(len(ids))
			id := ids[i]
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
			if err := st.DeleteSession(ctx, model[id].s.UserID, id); err != nil {
				t.Fatal(err)
			}
			delete(model, id)
		default:
			id := ids[rng.IntN(len(ids))]
			e := model[id]
			exp := c.Now().Add(time.Duration(rng.IntN(100)) * time.Second)
			err := st.TouchSession(ctx, e.s.UserID, id, c.Now(), exp)
			if e.s.Live(c.Now()) {
				if err != nil {
					t.Fatalf("TouchSession(live): %v", err)
				}
				e.s.ExpiresAt = exp
			} else if !errors.Is(err, sesame.ErrSessionNotFound) {
				t.Fatalf("TouchSession(expired) = %v", err)
			}
		}
		if step%1000 == 999 {
			c.Add(time.Second)
		}
		if step%5000 == 4999 {
			// Sweep, and check every session and every user's list.
			st.DeleteExpired(ctx)
			live := 0
			perUser := map[string]int{}
			for id, e := range model {
				got, err := st.Session(ctx, e.s.SecretHash)
				if e.s.Live(c.Now()) {
					if err != nil || got.ID != id {
						t.Fatalf("step %d: Session(%s) = %q, %v", step, id, got.ID, err)
					}
					live++
					perUser[e.s.UserID]++
				} else if !errors.Is(err, sesame.ErrSessionNotFound) {
					t.Fatalf("step %d: Session(expired %s) = %v", step, id, err)
				}
			}
			if n, _ := st.CountSessions(ctx); n != live {
				t.Fatalf("step %d: CountSessions = %d, want %d", step, n, live)
			}
			for _, u := range users {
				list, _ := st.UserSessions(ctx, u)
				if len(list) != perUser[u] {
					t.Fatalf("step %d: UserSessions(%s) has %d, want %d", step, u, len(list), perUser[u])
				}
			}
		}
	}
}

func TestAuditCap(t *testing.T) {
	st := memstore.New()
	ctx := t.Context()
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	const extra = 10
	for i := range memstore.MaxEvents + extra {
		if err := st.Record(ctx, sesame.Event{Time: at(i), Type: sesame.EventLoginFailed, SessionID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := st.Events(ctx, sesame.EventQuery{Limit: 2 * memstore.MaxEvents})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != sesame.MaxEventLimit || list[0].SessionID != fmt.Sprint(memstore.MaxEvents+extra-1) {
		t.Fatalf("Events returned %d, newest %s; want MaxEventLimit = %d, newest %d", len(list), list[0].SessionID, sesame.MaxEventLimit, memstore.MaxEvents+extra-1)
	}
	if list, _ := st.Events(ctx, sesame.EventQuery{}); len(list) != sesame.DefaultEventLimit {
		t.Errorf("Events with no limit returned %d, want DefaultEventLimit = %d", len(list), sesame.DefaultEventLimit)
	}
	// The first extra events were overwritten: nothing before at(extra) is
	// left, and the ring holds exactly MaxEvents.
	if n, err := st.DeleteEventsBefore(ctx, at(extra)); n != 0 || err != nil {
		t.Errorf("DeleteEventsBefore(the oldest kept) = %d, %v; want 0 (the older ones were overwritten)", n, err)
	}
	if n, err := st.DeleteEventsBefore(ctx, at(extra+1)); n != 1 || err != nil {
		t.Errorf("DeleteEventsBefore(after the oldest kept) = %d, %v; want 1", n, err)
	}
	if err := st.Record(ctx, sesame.Event{Type: sesame.EventLogout}); err != nil {
		t.Fatal(err)
	}
	if list, _ := st.Events(ctx, sesame.EventQuery{Limit: 1}); len(list) != 1 || list[0].Type != sesame.EventLogout || list[0].Time.IsZero() {
		t.Errorf("after a prune, the newest event is %+v; want the logout just recorded, stamped with a time", list)
	}
	if n, err := st.DeleteEventsBefore(ctx, at(memstore.MaxEvents+extra)); n != memstore.MaxEvents || err != nil {
		t.Errorf("DeleteEventsBefore(everything) = %d, %v; want MaxEvents = %d", n, err, memstore.MaxEvents)
	}
}

func TestLimiterWindows(t *testing.T) {
	st, c := newClockStore()
	ctx := t.Context()
	for want := 1; want <= 2; want++ {
		if n, reset, _ := st.Hit(ctx, "k", time.Minute); n != want || reset != time.Minute {
			t.Fatalf("Hit = %d, %v; want %d, 1m", n, reset, want)
		}
	}
	c.Add(59 * time.Second)
	if n, reset, _ := st.Hit(ctx, "k", time.Minute); n != 3 || reset != time.Second {
		t.Fatalf("Hit = %d, %v; want 3, 1s", n, reset)
	}
	if n, _ := st.DeleteExpired(ctx); n != 0 {
		t.Errorf("DeleteExpired in the window = %d, want 0", n)
	}
	c.Add(time.Second)
	if err := st.Forgive(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.DeleteExpired(ctx); n != 1 {
		t.Errorf("DeleteExpired after the window = %d, want 1", n)
	}
	if n, _, _ := st.Hit(ctx, "k", time.Minute); n != 1 {
		t.Errorf("Hit after the window = %d, want 1", n)
	}
	if _, _, err := st.Hit(ctx, "k", 0); err == nil {
		t.Error("Hit with a zero window succeeded")
	}
}

// BenchmarkSessionLookup measures Session(hash) for random existing
// sessions in stores of 1k to 1M sessions, and reports the heap each
// session costs (B/session): the live heap after filling the store, less
// the heap before, over the number of sessions. The sessions have the
// fields of a real one: hex ID and user ID (1000 users), an IPv4 address
// and a 40-byte user agent.
func BenchmarkSessionLookup(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			st, hashes, perSession := fillStore(b, n)
			ctx := b.Context()
			rng := rand.New(rand.NewPCG(3, 4))
			for b.Loop() {
				if _, err := st.Session(ctx, hashes[rng.IntN(n)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perSession, "B/session") // after b.Loop, which clears metrics
		})
	}
}

func fillStore(b *testing.B, n int) (st *memstore.Store, hashes [][32]byte, perSession float64) {
	b.Helper()
	ctx := b.Context()
	users := make([]string, 1000)
	for i := range users {
		users[i] = sesame.NewID()
	}
	hashes = make([][32]byte, n)
	for i := range hashes {
		_, hashes[i] = sesame.NewSecret()
	}
	uas := []string{
		"Mozilla/5.0 (X11; Linux x86_64) Firefox/1",
		"Mozilla/5.0 (Macintosh) Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0) Chrome/131",
	}
	now := time.Now()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st = memstore.New()
	for i, hash := range hashes {
		err := st.CreateSession(ctx, sesame.Session{
			ID:                sesame.NewID(),
			SecretHash:        hash,
			UserID:            users[i%len(users)],
			CreatedAt:         now,
			LastSeenAt:        now,
			ExpiresAt:         now.Add(30 * time.Minute),
			AbsoluteExpiresAt: now.Add(12 * time.Hour),
			IP:                "203.0.113.7",
			UserAgent:         uas[i%len(uas)], // the store copies it
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return st, hashes, float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestFeed: a set polling the in-process log keeps current.
func TestFeed(t *testing.T) {
	storetest.RunFeed(t, func(t *testing.T) storetest.FeedNodes {
		st := memstore.New()
		return storetest.FeedNodes{Writer: st, Feed: st}
	})
}
