package sesame_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
)

// countingLog counts reads of the revocation log and can fail them.
type countingLog struct {
	*memstore.Store
	reads atomic.Int64
	fail  atomic.Bool
}

func (c *countingLog) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return nil, errors.New("store down")
	}
	return c.Store.RevocationsSince(ctx, after, limit)
}

func newLiveSession(t *testing.T, st *memstore.Store) string {
	t.Helper()
	_, h := sesame.NewSecret()
	s := sesame.Session{ID: sesame.NewID(), SecretHash: h, UserID: "u1", CreatedAt: time.Now(), LastSeenAt: time.Now(),
		ExpiresAt: time.Now().Add(time.Hour), AbsoluteExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newTestClock() *testClock           { return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// A set that has not heard from the store within its bound answers
// nothing but what it knows for sure, and answers again once it has
// caught up.
func TestRevocationSetBound(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	log := &countingLog{Store: st}
	clock := newTestClock()
	set := sesame.NewRevocationSet(log, time.Hour, time.Second, clock.Now)
	if _, err := set.Revoked("x", time.Time{}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("never read: err=%v, want ErrUnavailable", err)
	}
	if err := set.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	live, ended := newLiveSession(t, st), newLiveSession(t, st)
	set.Add(ended)
	clock.Add(time.Second)
	if revoked, err := set.Revoked(live, time.Time{}); revoked || err != nil {
		t.Fatalf("at the bound: revoked=%v err=%v, want false, nil", revoked, err)
	}
	clock.Add(time.Millisecond)
	if _, err := set.Revoked(live, time.Time{}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("past the bound: err=%v, want ErrUnavailable", err)
	}
	if err := set.Check(); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("Check past the bound: %v", err)
	}
	if err := set.Ping(ctx); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("Ping past the bound: %v", err)
	}
	if lag := set.Lag(); lag != time.Second+time.Millisecond {
		t.Fatalf("Lag = %v", lag)
	}
	// Known ended: refused whatever the feed's state.
	if revoked, err := set.Revoked(ended, time.Time{}); !revoked || err != nil {
		t.Fatalf("known ended past the bound: revoked=%v err=%v", revoked, err)
	}
	// A failed read moves nothing.
	log.fail.Store(true)
	if err := set.Sync(ctx); err == nil {
		t.Fatal("Sync with the log down succeeded")
	}
	if _, err := set.Revoked(live, time.Time{}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("after a failed read: err=%v, want ErrUnavailable", err)
	}
	log.fail.Store(false)
	if err := set.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if revoked, err := set.Revoked(live, time.Time{}); revoked || err != nil {
		t.Fatalf("caught up: revoked=%v err=%v", revoked, err)
	}
}

// epochLog is a log whose store lost its data at epoch.
type epochLog struct {
	*memstore.Store
	epoch time.Time
}

func (e epochLog) Epoch(context.Context) (time.Time, error) { return e.epoch, nil }

// Revoked folds in the epoch: a token issued before the store's data began
// may belong to a session whose revocation was lost.
func TestRevocationSetEpoch(t *testing.T) {
	epoch := time.Date(2026, 1, 2, 3, 4, 5, 600e6, time.UTC)
	set := sesame.NewRevocationSet(epochLog{memstore.New(), epoch}, time.Hour, 0, nil)
	if err := set.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		iat  time.Time
		want bool
	}{
		{epoch.Add(-time.Second), true},
		{epoch.Truncate(time.Second), false}, // tokens count whole seconds
		{epoch.Add(time.Second), false},
		{time.Time{}, false}, // a cookie: no issue time
	} {
		if revoked, err := set.Revoked("s", c.iat); revoked != c.want || err != nil {
			t.Errorf("issued %v: revoked=%v err=%v, want %v", c.iat, revoked, err, c.want)
		}
	}
}

// Without a feed, Run polls: a session ended by another writer of the
// store (not through the set) is refused within a few polls, and the set
// stays current while nothing happens.
func TestRevocationSetPolls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := memstore.New()
	set := sesame.NewRevocationSet(st, time.Hour, time.Second, nil)
	set.PollInterval = 5 * time.Millisecond
	done := make(chan struct{})
	go func() { set.Run(ctx, func(err error) { t.Error(err) }); close(done) }()
	defer func() { cancel(); <-done }()
	id := newLiveSession(t, st)
	waitFor(t, "the first poll", func() bool { return set.Check() == nil })
	first := set.Current()
	if err := st.DeleteSession(ctx, "u1", id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation", func() bool { revoked, _ := set.Revoked(id, time.Time{}); return revoked })
	waitFor(t, "a later poll", func() bool { return set.Current().After(first) })
}

// feedLog is a RevocationFeed the test drives.
type feedLog struct {
	*countingLog
	events  chan sesame.FeedEvent
	breaks  chan error
	follows atomic.Int64
}

func (f *feedLog) FollowRevocations(ctx context.Context, after int64, report func(sesame.FeedEvent)) error {
	f.follows.Add(1)
	report(sesame.FeedEvent{More: true})
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-f.breaks:
			return err
		case ev := <-f.events:
			report(ev)
		}
	}
}

// Run follows a feed: revocations it carries or announces are in the set
// before the heartbeat after them moves Current; a heartbeat does not move
// Current while announced revocations cannot be read; a broken feed is
// followed again.
func TestRevocationSetFollowsFeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := memstore.New()
	feed := &feedLog{countingLog: &countingLog{Store: st}, events: make(chan sesame.FeedEvent), breaks: make(chan error)}
	set := sesame.NewRevocationSet(feed, time.Hour, time.Minute, nil)
	done := make(chan struct{})
	go func() { set.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()

	beat := time.Now().Add(time.Hour) // later than the read the first event causes
	feed.events <- sesame.FeedEvent{Current: beat}
	feed.events <- sesame.FeedEvent{} // the one before has been applied
	if !set.Current().Equal(beat) {
		t.Fatalf("Current = %v after a heartbeat of %v", set.Current(), beat)
	}
	// Announced: the set reads the log.
	id := newLiveSession(t, st)
	if err := st.DeleteSession(ctx, "u1", id); err != nil {
		t.Fatal(err)
	}
	feed.events <- sesame.FeedEvent{More: true}
	// Carried.
	feed.events <- sesame.FeedEvent{Revocations: []sesame.Revocation{{Seq: 2, SessionID: "carried", At: time.Now()}}}
	feed.events <- sesame.FeedEvent{}
	for _, sid := range []string{"carried", id} {
		if revoked, err := set.Revoked(sid, time.Time{}); !revoked || err != nil {
			t.Errorf("%s: revoked=%v err=%v", sid, revoked, err)
		}
	}
	// Announced but unreadable: Current stands still until a read works.
	feed.fail.Store(true)
	feed.events <- sesame.FeedEvent{More: true, Current: beat.Add(time.Second)}
	feed.events <- sesame.FeedEvent{Current: beat.Add(2 * time.Second)}
	feed.events <- sesame.FeedEvent{}
	if !set.Current().Equal(beat) {
		t.Fatalf("Current moved to %v with announced revocations unread", set.Current())
	}
	feed.fail.Store(false)
	feed.events <- sesame.FeedEvent{Current: beat.Add(3 * time.Second)}
	feed.events <- sesame.FeedEvent{}
	if want := beat.Add(3 * time.Second); !set.Current().Equal(want) {
		t.Fatalf("Current = %v once readable, want %v", set.Current(), want)
	}
	// Broken: followed again.
	feed.breaks <- errors.New("connection reset")
	waitFor(t, "following again", func() bool { return feed.follows.Load() == 2 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
	}
}
