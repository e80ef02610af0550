package storetest

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// FeedNodes are two handles on one fresh, empty backend, as two nodes (or
// a node and the CLI) hold them: Writer ends sessions, Feed is followed by
// the other.
type FeedNodes struct {
	Writer sesame.SessionStore
	Feed   sesame.RevocationLog
}

// RunFeed tests how a RevocationSet keeps up with a revocation log: one
// following (RevocationSet.Run) a handle learns of sessions ended through
// another within a second, one by one and in a burst, and stays current
// while nothing is revoked (heartbeats, not silence). For a log that is a
// sesame.RevocationFeed, FollowRevocations' first event must cover what
// was logged after the Seq it is given; a log without one is polled. It
// logs the latency it saw.
func RunFeed(t *testing.T, newNodes func(t *testing.T) FeedNodes) {
	t.Run("Follow", func(t *testing.T) { testFeedFollow(t, newNodes(t)) })
	t.Run("From", func(t *testing.T) {
		n := newNodes(t)
		if _, ok := n.Feed.(sesame.RevocationFeed); !ok {
			t.Skip("not a RevocationFeed: polled")
		}
		testFeedFrom(t, n)
	})
}

// followed starts a set following n.Feed and waits until it is current.
func followed(t *testing.T, n FeedNodes) *sesame.RevocationSet {
	t.Helper()
	set := sesame.NewRevocationSet(n.Feed, time.Hour, time.Second, nil)
	if err := set.Sync(ctx(t)); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Run(c, func(err error) { t.Logf("feed: %v", err) }); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return set
}

// waitRevoked waits up to 10 s (a loaded machine) for the set to know id
// ended, and returns how long that took.
func waitRevoked(t *testing.T, set *sesame.RevocationSet, id string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if revoked, _ := set.Revoked(id, time.Time{}); revoked {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("session %s ended through another handle: not in the set after 10s", id)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func testFeedFollow(t *testing.T, n FeedNodes) {
	set := followed(t, n)
	userID := sesame.NewID()

	// Heartbeats: Current moves on while nothing is revoked.
	first := set.Current()
	deadline := time.Now().Add(10 * time.Second)
	for !set.Current().After(first.Add(200 * time.Millisecond)) {
		if time.Now().After(deadline) {
			t.Fatalf("Current stuck at %v with nothing revoked: the feed sends no heartbeat", set.Current())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := set.Check(); err != nil {
		t.Fatalf("a following set is behind: %v", err)
	}

	// One by one.
	var took []time.Duration
	for range 20 {
		s := liveSession(userID, time.Now())
		mustCreateSession(t, n.Writer, s)
		if revoked, err := set.Revoked(s.ID, time.Time{}); revoked || err != nil {
			t.Fatalf("live session: revoked=%v err=%v", revoked, err)
		}
		if err := n.Writer.DeleteSession(ctx(t), userID, s.ID); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		took = append(took, waitRevoked(t, set, s.ID))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("a revocation through another handle reached the set in %v (median of %d), %v at most", took[len(took)/2], len(took), took[len(took)-1])

	// A burst from several writers at once.
	var ids []string
	for range 50 {
		s := liveSession(userID, time.Now())
		mustCreateSession(t, n.Writer, s)
		ids = append(ids, s.ID)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := n.Writer.DeleteSession(ctx(t), userID, id); err != nil {
				t.Errorf("DeleteSession: %v", err)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		waitRevoked(t, set, id)
	}
}

func testFeedFrom(t *testing.T, n FeedNodes) {
	userID := sesame.NewID()
	before := liveSession(userID, time.Now())
	mustCreateSession(t, n.Writer, before)
	if err := n.Writer.DeleteSession(ctx(t), userID, before.ID); err != nil {
		t.Fatal(err)
	}
	list, err := n.Feed.RevocationsSince(ctx(t), 0, 1000)
	if err != nil || len(list) != 1 {
		t.Fatalf("RevocationsSince(0) = %v, %v; want one", list, err)
	}
	after := liveSession(userID, time.Now())
	mustCreateSession(t, n.Writer, after)
	if err := n.Writer.DeleteSession(ctx(t), userID, after.ID); err != nil {
		t.Fatal(err)
	}
	// Following from the first revocation's Seq: the first event carries
	// the second, or announces more.
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var first *sesame.FeedEvent
	err = n.Feed.(sesame.RevocationFeed).FollowRevocations(c, list[0].Seq, func(ev sesame.FeedEvent) {
		if first == nil {
			first = &ev
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("FollowRevocations ended with %v after its context was cancelled, want nil", err)
	}
	if first == nil {
		t.Fatal("FollowRevocations reported nothing")
	}
	carried := len(first.Revocations) == 1 && first.Revocations[0].SessionID == after.ID
	if !first.More && !carried {
		t.Fatalf("first event %+v: neither carries the revocation after the given Seq nor announces more", *first)
	}
	for _, r := range first.Revocations {
		if r.SessionID == before.ID {
			t.Fatalf("first event carries %s, logged at or before the given Seq", before.ID)
		}
	}
}
