package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunSessions tests a sesame.SessionStore, and its sesame.SessionCounter and
// sesame.Sweeper if it implements them. newStore must return a fresh, empty
// store on every call.
func RunSessions(t *testing.T, newStore func(t *testing.T) sesame.SessionStore) {
	t.Run("Found", func(t *testing.T) { testFound(t, newStore(t)) })
	t.Run("Kind", func(t *testing.T) { testKind(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("Expired", func(t *testing.T) { testExpired(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("Touch", func(t *testing.T) { testTouch(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("UserSessions", func(t *testing.T) { testUserSessions(t, newStore(t)) })
	t.Run("DeleteUserSessions", func(t *testing.T) { testDeleteUserSessions(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrentSessions(t, newStore(t)) })
	t.Run("CountSessions", func(t *testing.T) {
		st := newStore(t)
		c, ok := st.(sesame.SessionCounter)
		if !ok {
			t.Skip("the store does not implement sesame.SessionCounter")
		}
		testCountSessions(t, st, c)
	})
	t.Run("DeleteExpired", func(t *testing.T) {
		st := newStore(t)
		sw, ok := st.(sesame.Sweeper)
		if !ok {
			t.Skip("the store does not implement sesame.Sweeper")
		}
		testDeleteExpiredSessions(t, st, sw)
	})
}

// liveSession returns a session of userID created at created that ends an
// hour from now, with a fresh secret and ID.
func liveSession(userID string, created time.Time) sesame.Session {
	_, hash := sesame.NewSecret()
	now := time.Now()
	return sesame.Session{
		ID:                sesame.NewID(),
		SecretHash:        hash,
		UserID:            userID,
		CreatedAt:         created,
		LastSeenAt:        created,
		ExpiresAt:         now.Add(time.Hour),
		AbsoluteExpiresAt: now.Add(12 * time.Hour),
		IP:                "203.0.113.7",
		UserAgent:         "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	}
}

// expiredSession returns a session of userID that ended a minute ago: far
// enough in the past for a store whose clock is a little behind the test's.
func expiredSession(userID string, created time.Time) sesame.Session {
	s := liveSession(userID, created)
	s.ExpiresAt = time.Now().Add(-time.Minute)
	return s
}

func mustCreateSession(t *testing.T, st sesame.SessionStore, s sesame.Session) {
	t.Helper()
	if err := st.CreateSession(ctx(t), s); err != nil {
		t.Fatalf("CreateSession(%s): %v", s.ID, err)
	}
}

// sessionDiff describes how got differs from want, or returns "".
func sessionDiff(got, want sesame.Session) string {
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if got.SecretHash != want.SecretHash {
		d = append(d, fmt.Sprintf("SecretHash %x, want %x", got.SecretHash, want.SecretHash))
	}
	if got.UserID != want.UserID {
		d = append(d, fmt.Sprintf("UserID %q, want %q", got.UserID, want.UserID))
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"LastSeenAt", got.LastSeenAt, want.LastSeenAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"AbsoluteExpiresAt", got.AbsoluteExpiresAt, want.AbsoluteExpiresAt},
	} {
		if !sameTime(f.got, f.want) {
			d = append(d, fmt.Sprintf("%s %v, want %v (within 1ms)", f.name, f.got, f.want))
		}
	}
	if got.IP != want.IP {
		d = append(d, fmt.Sprintf("IP %q, want %q", got.IP, want.IP))
	}
	if got.UserAgent != want.UserAgent {
		d = append(d, fmt.Sprintf("UserAgent %q, want %q", got.UserAgent, want.UserAgent))
	}
	wantKind := want.Kind
	if wantKind == "" {
		wantKind = sesame.KindCookie
	}
	if got.Kind != wantKind {
		d = append(d, fmt.Sprintf("Kind %q, want %q", got.Kind, wantKind))
	}
	return strings.Join(d, "; ")
}

func checkSession(t *testing.T, what string, got, want sesame.Session) {
	t.Helper()
	if d := sessionDiff(got, want); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

// checkFound checks that the session with want's hash is want.
func checkFound(t *testing.T, st sesame.SessionStore, want sesame.Session) {
	t.Helper()
	got, err := st.Session(ctx(t), want.SecretHash)
	if err != nil {
		t.Errorf("Session(hash of %s): %v", want.ID, err)
		return
	}
	checkSession(t, "Session", got, want)
}

// checkGone checks that no session has hash.
func checkGone(t *testing.T, st sesame.SessionStore, what string, hash [32]byte) {
	t.Helper()
	if s, err := st.Session(ctx(t), hash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("Session(%s) = %+v, %v; want ErrSessionNotFound", what, s, err)
	}
}

// checkUserSessions checks that UserSessions(userID) is exactly want, in
// that order.
func checkUserSessions(t *testing.T, st sesame.SessionStore, userID string, want ...sesame.Session) {
	t.Helper()
	got, err := st.UserSessions(ctx(t), userID)
	if err != nil {
		t.Errorf("UserSessions(%s): %v", userID, err)
		return
	}
	ids := func(list []sesame.Session) []string {
		var ids []string
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		return ids
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("UserSessions(%s) = %q, want %q", userID, ids(got), ids(want))
		return
	}
	for i := range want {
		checkSession(t, "UserSessions", got[i], want[i])
	}
}

// longUA is a user agent of exactly 512 bytes, not all of them ASCII.
var longUA = func() string {
	s := "Mozilla/5.0 (Ünïcødé; 日本語) "
	return s + strings.Repeat("x", 512-len(s))
}()

func testFound(t *testing.T, st sesame.SessionStore) {
	if len(longUA) != 512 {
		t.Fatalf("longUA has %d bytes", len(longUA))
	}
	base := time.Now().Add(-10 * time.Minute)
	cases := []struct{ name, ip, ua string }{
		{"IPv4", "203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		{"IPv6", "2001:db8::1", "curl/8.5.0"},
		{"non-ASCII", "fe80::1%résé", "Navigateur « spécial » 日本語 🚀"},
		{"512-byte UA", "198.51.100.255", longUA},
		{"empty", "", ""},
	}
	userID := sesame.NewID()
	var all []sesame.Session
	for i, c := range cases {
		s := liveSession(userID, base.Add(time.Duration(i)*time.Second))
		s.LastSeenAt = base.Add(time.Duration(i)*time.Second + 1234567*time.Nanosecond)
		s.IP, s.UserAgent = c.ip, c.ua
		mustCreateSession(t, st, s)
		all = append(all, s)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkFound(t, st, all[i]) })
	}
	checkUserSessions(t, st, userID, all...)
}

func testKind(t *testing.T, st sesame.SessionStore) {
	userID := sesame.NewID()
	base := time.Now().Add(-time.Minute)
	var all []sesame.Session
	for i, kind := range []string{"", sesame.KindCookie, sesame.KindToken} {
		s := liveSession(userID, base.Add(time.Duration(i)*time.Second))
		s.Kind = kind
		mustCreateSession(t, st, s)
		all = append(all, s)
	}
	for _, s := range all {
		checkFound(t, st, s) // an empty Kind reads as KindCookie
	}
	checkUserSessions(t, st, userID, all...)

	// Touching and replacing keep the kind, or change it.
	if err := st.TouchSession(ctx(t), all[2].UserID, all[2].ID, time.Now(), time.Now().Add(2*time.Hour)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	got, err := st.Session(ctx(t), all[2].SecretHash)
	if err != nil || got.Kind != sesame.KindToken {
		t.Errorf("Session after TouchSession: Kind %q, %v; want %q", got.Kind, err, sesame.KindToken)
	}
	all[1].Kind = sesame.KindToken
	mustCreateSession(t, st, all[1])
	checkFound(t, st, all[1])
}

func testMissing(t *testing.T, st sesame.SessionStore) {
	_, hash := sesame.NewSecret()
	checkGone(t, st, "unknown hash in an empty store", hash)
	userID := sesame.NewID()
	mustCreateSession(t, st, liveSession(userID, time.Now()))
	checkGone(t, st, "unknown hash", hash)
	checkGone(t, st, "zero hash", [32]byte{})
	if err := st.TouchSession(ctx(t), sesame.NewID(), sesame.NewID(), time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession(unknown) error = %v, want ErrSessionNotFound", err)
	}
	if err := st.DeleteSession(ctx(t), sesame.NewID(), sesame.NewID()); err != nil {
		t.Errorf("DeleteSession(unknown) = %v, want nil", err)
	}
	if list, err := st.UserSessions(ctx(t), sesame.NewID()); err != nil || len(list) != 0 {
		t.Errorf("UserSessions(unknown user) = %d sessions, %v; want none, nil", len(list), err)
	}
	if ids, err := st.DeleteUserSessions(ctx(t), sesame.NewID(), ""); err != nil || len(ids) != 0 {
		t.Errorf("DeleteUserSessions(unknown user) = %q, %v; want none, nil", ids, err)
	}
}

func testExpired(t *testing.T, st sesame.SessionStore) {
	userID := sesame.NewID()
	base := time.Now().Add(-time.Hour)
	expired := expiredSession(userID, base)
	live := liveSession(userID, base.Add(time.Second))
	mustCreateSession(t, st, expired)
	mustCreateSession(t, st, live)

	checkGone(t, st, "expired", expired.SecretHash)
	checkFound(t, st, live)
	checkUserSessions(t, st, userID, live)
	if err := st.TouchSession(ctx(t), expired.UserID, expired.ID, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession(expired) error = %v, want ErrSessionNotFound", err)
	}
	checkGone(t, st, "expired, after a refused touch", expired.SecretHash)
	checkUserSessions(t, st, userID, live)

	// A touch that moves the deadline into the past ends the session.
	if err := st.TouchSession(ctx(t), live.UserID, live.ID, time.Now(), time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("TouchSession(live, deadline in the past): %v", err)
	}
	checkGone(t, st, "touched into the past", live.SecretHash)
	checkUserSessions(t, st, userID)

	if err := st.DeleteSession(ctx(t), expired.UserID, expired.ID); err != nil {
		t.Errorf("DeleteSession(expired) = %v, want nil", err)
	}
}

func testOverwrite(t *testing.T, st sesame.SessionStore) {
	userB := sesame.NewID()
	base := time.Now().Add(-time.Hour)
	first := liveSession(userB, base)
	mustCreateSession(t, st, first)

	// The same ID with every other field changed replaces the session.
	// (Session IDs are never reused for another user: see CreateSession.)
	second := liveSession(userB, base.Add(time.Minute))
	second.ID = first.ID
	second.IP, second.UserAgent = "2001:db8::2", "another agent"
	second.ExpiresAt = second.ExpiresAt.Add(time.Minute)
	second.AbsoluteExpiresAt = second.AbsoluteExpiresAt.Add(time.Minute)
	mustCreateSession(t, st, second)
	checkGone(t, st, "the replaced session's hash", first.SecretHash)
	checkFound(t, st, second)
	checkUserSessions(t, st, userB, second)

	// So does the same ID with the same hash.
	third := second
	third.LastSeenAt = second.LastSeenAt.Add(time.Minute)
	third.UserAgent = "a third agent"
	mustCreateSession(t, st, third)
	checkFound(t, st, third)
	checkUserSessions(t, st, userB, third)
}

func testTouch(t *testing.T, st sesame.SessionStore) {
	userID := sesame.NewID()
	base := time.Now().Add(-time.Hour)
	s := liveSession(userID, base)
	other := liveSession(userID, base.Add(time.Second))
	mustCreateSession(t, st, s)
	mustCreateSession(t, st, other)

	seen, expires := time.Now(), time.Now().Add(2*time.Hour)
	if err := st.TouchSession(ctx(t), s.UserID, s.ID, seen, expires); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	s.LastSeenAt, s.ExpiresAt = seen, expires
	checkFound(t, st, s)
	checkFound(t, st, other)
	checkUserSessions(t, st, userID, s, other)

	if err := st.DeleteSession(ctx(t), s.UserID, s.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if err := st.TouchSession(ctx(t), s.UserID, s.ID, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession(deleted) error = %v, want ErrSessionNotFound", err)
	}
	checkGone(t, st, "deleted, after a refused touch", s.SecretHash)
}

func testDelete(t *testing.T, st sesame.SessionStore) {
	userID := sesame.NewID()
	base := time.Now().Add(-time.Hour)
	a, b := liveSession(userID, base), liveSession(userID, base.Add(time.Second))
	mustCreateSession(t, st, a)
	mustCreateSession(t, st, b)
	for i := range 2 { // deleting twice is not an error
		if err := st.DeleteSession(ctx(t), a.UserID, a.ID); err != nil {
			t.Fatalf("DeleteSession #%d: %v", i+1, err)
		}
	}
	checkGone(t, st, "deleted", a.SecretHash)
	checkFound(t, st, b)
	checkUserSessions(t, st, userID, b)

	// A session is touched or ended only when named with its own user.
	other := sesame.NewID()
	if err := st.TouchSession(ctx(t), other, b.ID, time.Now(), time.Now().Add(2*time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession(another user's session) error = %v, want ErrSessionNotFound", err)
	}
	if err := st.DeleteSession(ctx(t), other, b.ID); err != nil {
		t.Errorf("DeleteSession(another user's session) = %v, want nil", err)
	}
	checkFound(t, st, b)
	checkUserSessions(t, st, userID, b)
}

func testUserSessions(t *testing.T, st sesame.SessionStore) {
	userA, userB := sesame.NewID(), sesame.NewID()
	base := time.Now().Add(-time.Hour)
	a0 := liveSession(userA, base)
	a1 := liveSession(userA, base.Add(time.Second))
	a2 := liveSession(userA, base.Add(2*time.Second))
	b0 := liveSession(userB, base.Add(time.Second))
	for _, s := range []sesame.Session{a2, b0, a0, a1} { // not in CreatedAt order
		mustCreateSession(t, st, s)
	}
	checkUserSessions(t, st, userA, a0, a1, a2)
	checkUserSessions(t, st, userB, b0)
}

func testDeleteUserSessions(t *testing.T, st sesame.SessionStore) {
	userA, userB := sesame.NewID(), sesame.NewID()
	base := time.Now().Add(-time.Hour)
	var a []sesame.Session
	for i := range 3 {
		a = append(a, liveSession(userA, base.Add(time.Duration(i)*time.Second)))
	}
	b := liveSession(userB, base)
	for _, s := range append(a, b) {
		mustCreateSession(t, st, s)
	}

	deleteAll := func(userID, exceptID string, want ...sesame.Session) {
		t.Helper()
		got, err := st.DeleteUserSessions(ctx(t), userID, exceptID)
		if err != nil {
			t.Fatalf("DeleteUserSessions: %v", err)
		}
		var wantIDs []string
		for _, s := range want {
			wantIDs = append(wantIDs, s.ID)
		}
		slices.Sort(got)
		slices.Sort(wantIDs)
		if !slices.Equal(got, wantIDs) {
			t.Errorf("DeleteUserSessions(%s, except %q) = %q, want %q (in any order)", userID, exceptID, got, wantIDs)
		}
	}

	// Except one of the user's own sessions.
	deleteAll(userA, a[1].ID, a[0], a[2])
	checkGone(t, st, "ended", a[0].SecretHash)
	checkGone(t, st, "ended", a[2].SecretHash)
	checkFound(t, st, a[1])
	checkFound(t, st, b)
	checkUserSessions(t, st, userA, a[1])

	// Except another user's session: that names none of this user's.
	deleteAll(userA, b.ID, a[1])
	checkGone(t, st, "ended", a[1].SecretHash)
	checkFound(t, st, b)
	checkUserSessions(t, st, userA)
	checkUserSessions(t, st, userB, b)

	// Without an exception; and again, when there is nothing left.
	deleteAll(userB, "", b)
	checkGone(t, st, "ended", b.SecretHash)
	checkUserSessions(t, st, userB)
	deleteAll(userB, "")
}

// testConcurrentSessions runs many goroutines that create, read, touch and
// delete sessions at once, while others list sessions and end all sessions
// of one user, and then checks that the store holds exactly what it should.
func testConcurrentSessions(t *testing.T, st sesame.SessionStore) {
	const (
		workers   = 8
		perWorker = 50
		nUsers    = 4
		nVictim   = 40 // sessions of the user whose sessions are all ended
		enders    = 4  // goroutines that end them at once
	)
	var users []string
	for range nUsers {
		users = append(users, sesame.NewID())
	}
	base := time.Now().Add(-time.Hour)
	var all [workers][perWorker]sesame.Session
	for w := range workers {
		for i := range perWorker {
			n := w*perWorker + i
			all[w][i] = liveSession(users[n%nUsers], base.Add(time.Duration(n)*time.Second))
		}
	}
	deleted := func(i int) bool { return i%3 == 0 }
	touchedExpiry := func(w, i int) time.Time {
		return time.Now().Add(2*time.Hour + time.Duration(w*perWorker+i)*time.Second)
	}

	victim := sesame.NewID()
	victimIDs := map[string]bool{}
	for i := range nVictim {
		s := liveSession(victim, base.Add(time.Duration(i)*time.Second))
		mustCreateSession(t, st, s)
		victimIDs[s.ID] = true
	}

	start := make(chan struct{})
	done := make(chan struct{})
	var workersWG, othersWG sync.WaitGroup

	for w := range workers {
		workersWG.Go(func() {
			<-start
			for i := range perWorker {
				s := &all[w][i]
				if err := st.CreateSession(ctx(t), *s); err != nil {
					t.Errorf("CreateSession: %v", err)
					continue
				}
				got, err := st.Session(ctx(t), s.SecretHash)
				if err != nil {
					t.Errorf("Session right after CreateSession: %v", err)
				} else if d := sessionDiff(got, *s); d != "" {
					t.Errorf("Session right after CreateSession: %s", d)
				}
				seen, expires := time.Now(), touchedExpiry(w, i)
				if err := st.TouchSession(ctx(t), s.UserID, s.ID, seen, expires); err != nil {
					t.Errorf("TouchSession: %v", err)
				}
				s.LastSeenAt, s.ExpiresAt = seen, expires
				if deleted(i) {
					for range 2 {
						if err := st.DeleteSession(ctx(t), s.UserID, s.ID); err != nil {
							t.Errorf("DeleteSession: %v", err)
						}
					}
					if _, err := st.Session(ctx(t), s.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
						t.Errorf("Session right after DeleteSession: error %v, want ErrSessionNotFound", err)
					}
				}
			}
		})
	}

	// Readers: every listing holds only the user's live sessions, in order.
	for _, u := range users {
		othersWG.Go(func() {
			<-start
			for {
				list, err := st.UserSessions(ctx(t), u)
				if err != nil {
					t.Errorf("UserSessions: %v", err)
					return
				}
				for i, s := range list {
					if s.UserID != u {
						t.Errorf("UserSessions(%s) returned a session of %s", u, s.UserID)
					}
					if i > 0 && s.CreatedAt.Before(list[i-1].CreatedAt) {
						t.Errorf("UserSessions(%s) not oldest first", u)
					}
				}
				select {
				case <-done:
					return
				case <-time.After(100 * time.Microsecond): // leave the writers room on a small machine
				}
			}
		})
	}

	// Enders: between them, they end each of the victim's sessions.
	var (
		endedMu sync.Mutex
		ended   []string
	)
	for range enders {
		othersWG.Go(func() {
			<-start
			ids, err := st.DeleteUserSessions(ctx(t), victim, "")
			if err != nil {
				t.Errorf("DeleteUserSessions: %v", err)
			}
			endedMu.Lock()
			ended = append(ended, ids...)
			endedMu.Unlock()
		})
	}

	close(start)
	workersWG.Wait()
	close(done)
	othersWG.Wait()
	if t.Failed() {
		t.FailNow()
	}

	endedSet := map[string]bool{}
	for _, id := range ended {
		if !victimIDs[id] {
			t.Errorf("DeleteUserSessions(victim) ended %s, not one of the victim's sessions", id)
		}
		endedSet[id] = true
	}
	if len(endedSet) != nVictim {
		t.Errorf("DeleteUserSessions(victim) from %d goroutines ended %d distinct sessions, want %d", enders, len(endedSet), nVictim)
	}
	checkUserSessions(t, st, victim)

	wantByUser := map[string][]sesame.Session{}
	kept := 0
	for w := range workers {
		for i := range perWorker {
			s := all[w][i]
			if deleted(i) {
				checkGone(t, st, "deleted", s.SecretHash)
				continue
			}
			checkFound(t, st, s)
			wantByUser[s.UserID] = append(wantByUser[s.UserID], s)
			kept++
		}
	}
	for _, u := range users {
		want := wantByUser[u]
		slices.SortFunc(want, func(a, b sesame.Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
		checkUserSessions(t, st, u, want...)
	}
	if c, ok := st.(sesame.SessionCounter); ok {
		if n, err := c.CountSessions(ctx(t)); err != nil || n != kept {
			t.Errorf("CountSessions = %d, %v; want %d, nil", n, err, kept)
		}
	}
}

func testCountSessions(t *testing.T, st sesame.SessionStore, c sesame.SessionCounter) {
	count := func(want int) {
		t.Helper()
		if n, err := c.CountSessions(ctx(t)); err != nil || n != want {
			t.Errorf("CountSessions = %d, %v; want %d, nil", n, err, want)
		}
	}
	count(0)
	userID := sesame.NewID()
	base := time.Now().Add(-time.Hour)
	var live []sesame.Session
	for i := range 3 {
		s := liveSession(userID, base.Add(time.Duration(i)*time.Second))
		mustCreateSession(t, st, s)
		live = append(live, s)
	}
	for i := range 2 {
		mustCreateSession(t, st, expiredSession(userID, base.Add(time.Duration(i)*time.Second)))
	}
	count(3)
	if err := st.DeleteSession(ctx(t), live[0].UserID, live[0].ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	count(2)
}

func testDeleteExpiredSessions(t *testing.T, st sesame.SessionStore, sw sesame.Sweeper) {
	userA, userB := sesame.NewID(), sesame.NewID()
	base := time.Now().Add(-time.Hour)
	var live []sesame.Session
	for i, u := range []string{userA, userA, userB} {
		s := liveSession(u, base.Add(time.Duration(i)*time.Second))
		mustCreateSession(t, st, s)
		live = append(live, s)
	}
	const nExpired = 4
	for i := range nExpired {
		u := []string{userA, userB}[i%2]
		mustCreateSession(t, st, expiredSession(u, base.Add(time.Duration(i)*time.Second)))
	}
	// Touched into the past after it was stored.
	if err := st.TouchSession(ctx(t), live[1].UserID, live[1].ID, time.Now(), time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}

	n, err := sw.DeleteExpired(ctx(t))
	if err != nil || n != nExpired+1 {
		t.Errorf("DeleteExpired = %d, %v; want %d, nil", n, err, nExpired+1)
	}
	checkFound(t, st, live[0])
	checkFound(t, st, live[2])
	checkGone(t, st, "touched into the past", live[1].SecretHash)
	checkUserSessions(t, st, userA, live[0])
	checkUserSessions(t, st, userB, live[2])
	if n, err := sw.DeleteExpired(ctx(t)); err != nil || n != 0 {
		t.Errorf("DeleteExpired again = %d, %v; want 0, nil", n, err)
	}
}
