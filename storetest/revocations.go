package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunRevocations tests a sesame.RevocationLog together with the
// sesame.SessionStore whose deletions it records. newStores must return a
// fresh, empty backend on every call: both values from the same one (often
// the same value twice).
func RunRevocations(t *testing.T, newStores func(t *testing.T) (sesame.SessionStore, sesame.RevocationLog)) {
	run := func(name string, test func(t *testing.T, ss sesame.SessionStore, log sesame.RevocationLog)) {
		t.Run(name, func(t *testing.T) {
			ss, log := newStores(t)
			test(t, ss, log)
		})
	}
	run("DeleteSession", testRevokeDeleteSession)
	run("DeleteUserSessions", testRevokeDeleteUserSessions)
	run("Since", testRevocationsSince)
	run("Concurrent", testRevocationsConcurrent)
	run("DeleteExpired", testRevocationsDeleteExpired)
}

// revocations returns the whole log.
func revocations(t *testing.T, log sesame.RevocationLog) []sesame.Revocation {
	t.Helper()
	list, err := log.RevocationsSince(ctx(t), 0, 1_000_000)
	if err != nil {
		t.Fatalf("RevocationsSince(0): %v", err)
	}
	checkSeqs(t, list)
	return list
}

// checkSeqs checks that list is in strictly increasing Seq order, every Seq
// positive.
func checkSeqs(t *testing.T, list []sesame.Revocation) {
	t.Helper()
	for i, r := range list {
		if r.Seq <= 0 || i > 0 && r.Seq <= list[i-1].Seq {
			t.Fatalf("revocations not in strictly increasing positive Seq order: %+v", list)
		}
	}
}

// checkRevoked checks that list holds a revocation of each session in ids,
// in any order, and nothing else, logged at about now.
func checkRevoked(t *testing.T, what string, list []sesame.Revocation, ids ...string) {
	t.Helper()
	var got []string
	for _, r := range list {
		got = append(got, r.SessionID)
		if d := time.Since(r.At); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: revocation of %s At %v, want the store's clock (about now)", what, r.SessionID, r.At)
		}
	}
	want := slices.Clone(ids)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: revocations of %q, want %q (in any order)", what, got, want)
	}
}

func testRevokeDeleteSession(t *testing.T, ss sesame.SessionStore, log sesame.RevocationLog) {
	checkRevoked(t, "empty store", revocations(t, log))
	userID := sesame.NewID()
	a, b := liveSession(userID, time.Now()), liveSession(userID, time.Now())
	expired := expiredSession(userID, time.Now())
	for _, s := range []sesame.Session{a, b, expired} {
		mustCreateSession(t, ss, s)
	}
	if err := ss.DeleteSession(ctx(t), a.UserID, a.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	checkRevoked(t, "after DeleteSession", revocations(t, log), a.ID)

	// Deleting what is not there, or has ended, revokes nothing.
	for _, id := range []string{a.ID, sesame.NewID(), expired.ID} {
		if err := ss.DeleteSession(ctx(t), userID, id); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
	}
	checkRevoked(t, "after deleting a deleted, an unknown and an expired session", revocations(t, log), a.ID)

	if err := ss.DeleteSession(ctx(t), b.UserID, b.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	checkRevoked(t, "after a second DeleteSession", revocations(t, log), a.ID, b.ID)
}

func testRevokeDeleteUserSessions(t *testing.T, ss sesame.SessionStore, log sesame.RevocationLog) {
	userA, userB := sesame.NewID(), sesame.NewID()
	base := time.Now().Add(-time.Hour)
	var a []sesame.Session
	for i := range 3 {
		a = append(a, liveSession(userA, base.Add(time.Duration(i)*time.Second)))
	}
	b := liveSession(userB, base)
	for _, s := range append(a, b, expiredSession(userA, base)) {
		mustCreateSession(t, ss, s)
	}
	ended, err := ss.DeleteUserSessions(ctx(t), userA, a[1].ID)
	if err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	list := revocations(t, log)
	checkRevoked(t, "after DeleteUserSessions", list, a[0].ID, a[2].ID)
	checkRevoked(t, "the IDs DeleteUserSessions returned", list, ended...)

	if _, err := ss.DeleteUserSessions(ctx(t), sesame.NewID(), ""); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	checkRevoked(t, "after DeleteUserSessions of an unknown user", revocations(t, log), a[0].ID, a[2].ID)

	if _, err := ss.DeleteUserSessions(ctx(t), userA, ""); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	checkRevoked(t, "after a second DeleteUserSessions", revocations(t, log), a[0].ID, a[1].ID, a[2].ID)
}

func testRevocationsSince(t *testing.T, ss sesame.SessionStore, log sesame.RevocationLog) {
	var ids []string
	for range 5 {
		s := liveSession(sesame.NewID(), time.Now())
		mustCreateSession(t, ss, s)
		if err := ss.DeleteSession(ctx(t), s.UserID, s.ID); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		ids = append(ids, s.ID)
	}
	all := revocations(t, log)
	if len(all) != len(ids) {
		t.Fatalf("RevocationsSince(0) returned %d, want %d", len(all), len(ids))
	}
	for i, r := range all {
		if r.SessionID != ids[i] {
			t.Errorf("revocation #%d is of %s, want %s: the log is in the order of deletion", i, r.SessionID, ids[i])
		}
	}
	since := func(after int64, limit int, want []sesame.Revocation) {
		t.Helper()
		got, err := log.RevocationsSince(ctx(t), after, limit)
		if err != nil {
			t.Fatalf("RevocationsSince(%d, %d): %v", after, limit, err)
		}
		seqs := func(list []sesame.Revocation) (s []int64) {
			for _, r := range list {
				s = append(s, r.Seq)
			}
			return s
		}
		if !slices.Equal(seqs(got), seqs(want)) {
			t.Errorf("RevocationsSince(%d, %d) = seqs %v, want %v", after, limit, seqs(got), seqs(want))
		}
	}
	since(0, 2, all[:2])
	since(all[1].Seq, 2, all[2:4])
	since(all[1].Seq, 100, all[2:])
	since(all[3].Seq, 1, all[4:])
	since(all[4].Seq, 10, nil)
	since(all[4].Seq+1000, 10, nil)
}

// testRevocationsConcurrent ends sessions from many goroutines at once, some
// of them twice and some through DeleteUserSessions racing with itself: the
// log has each ended session once, in strictly increasing Seq order.
func testRevocationsConcurrent(t *testing.T, ss sesame.SessionStore, log sesame.RevocationLog) {
	const (
		workers   = 8
		perWorker = 10
		nVictim   = 20
		enders    = 4
	)
	var want []string
	var sessions [workers][perWorker]sesame.Session
	for w := range workers {
		for i := range perWorker {
			sessions[w][i] = liveSession(sesame.NewID(), time.Now())
			mustCreateSession(t, ss, sessions[w][i])
			want = append(want, sessions[w][i].ID)
		}
	}
	victim := sesame.NewID()
	for range nVictim {
		s := liveSession(victim, time.Now())
		mustCreateSession(t, ss, s)
		want = append(want, s.ID)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range perWorker {
				for range 2 {
					if err := ss.DeleteSession(ctx(t), sessions[w][i].UserID, sessions[w][i].ID); err != nil {
						t.Errorf("DeleteSession: %v", err)
					}
				}
			}
		})
	}
	for range enders {
		wg.Go(func() {
			<-start
			if _, err := ss.DeleteUserSessions(ctx(t), victim, ""); err != nil {
				t.Errorf("DeleteUserSessions: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	checkRevoked(t, "after concurrent deletions", revocations(t, log), want...)
}

// testRevocationsDeleteExpired checks that sweeping expired sessions logs
// nothing, and keeps the revocations just logged.
func testRevocationsDeleteExpired(t *testing.T, ss sesame.SessionStore, log sesame.RevocationLog) {
	sw, ok := ss.(sesame.Sweeper)
	if !ok {
		t.Skip("the session store does not implement sesame.Sweeper")
	}
	userID := sesame.NewID()
	live := liveSession(userID, time.Now())
	mustCreateSession(t, ss, live)
	mustCreateSession(t, ss, expiredSession(userID, time.Now()))
	if err := ss.DeleteSession(ctx(t), live.UserID, live.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if n, err := sw.DeleteExpired(ctx(t)); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1, nil", n, err)
	}
	checkRevoked(t, "after DeleteExpired", revocations(t, log), live.ID)
}
