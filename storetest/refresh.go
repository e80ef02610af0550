package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunRefresh tests a sesame.RefreshStore together with the
// sesame.SessionStore whose sessions own its families. newStores must
// return a fresh, empty backend on every call: both values from the same
// one (often the same value twice).
func RunRefresh(t *testing.T, newStores func(t *testing.T) (sesame.SessionStore, sesame.RefreshStore)) {
	run := func(name string, test func(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore)) {
		t.Run(name, func(t *testing.T) {
			ss, rs := newStores(t)
			test(t, ss, rs)
		})
	}
	run("CreateAndLookup", testRefreshCreate)
	run("Missing", testRefreshMissing)
	run("Rotate", testRefreshRotate)
	run("Reuse", testRefreshReuse)
	run("ConcurrentRotate", testRefreshConcurrentRotate)
	run("DeleteSession", func(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
		testRefreshSessionEnded(t, ss, rs, func(s sesame.Session) error { return ss.DeleteSession(ctx(t), s.UserID, s.ID) })
	})
	run("DeleteUserSessions", func(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
		testRefreshSessionEnded(t, ss, rs, func(s sesame.Session) error {
			_, err := ss.DeleteUserSessions(ctx(t), s.UserID, "")
			return err
		})
	})
	run("SessionExpired", testRefreshSessionExpired)
	run("FamilyExpired", testRefreshFamilyExpired)
}

// tokenSession stores and returns a live session of kind sesame.KindToken.
func tokenSession(t *testing.T, ss sesame.SessionStore, userID string) sesame.Session {
	t.Helper()
	s := liveSession(userID, time.Now())
	s.Kind = sesame.KindToken
	mustCreateSession(t, ss, s)
	return s
}

// newRefreshToken returns a token of the session's family, created now,
// whose family ends in a day.
func newRefreshToken(s sesame.Session) sesame.RefreshToken {
	_, hash := sesame.NewSecret()
	now := time.Now()
	return sesame.RefreshToken{Hash: hash, SessionID: s.ID, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
}

// successor returns the token that replaces t.
func successor(t sesame.RefreshToken) sesame.RefreshToken {
	_, hash := sesame.NewSecret()
	next := t
	next.Hash, next.CreatedAt = hash, time.Now()
	next.RetiredAt, next.SuccessorHash = time.Time{}, [32]byte{}
	return next
}

func mustCreateToken(t *testing.T, rs sesame.RefreshStore, tok sesame.RefreshToken) {
	t.Helper()
	if err := rs.CreateRefreshToken(ctx(t), tok); err != nil {
		t.Fatalf("CreateRefreshToken: %v", err)
	}
}

func mustRotate(t *testing.T, rs sesame.RefreshStore, old, next sesame.RefreshToken) {
	t.Helper()
	if err := rs.RotateRefreshToken(ctx(t), old.Hash, next); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
}

// retired returns t as it should read once next replaced it.
func retired(t, next sesame.RefreshToken) sesame.RefreshToken {
	t.RetiredAt, t.SuccessorHash = next.CreatedAt, next.Hash
	return t
}

// tokenDiff describes how got differs from want, or returns "".
func tokenDiff(got, want sesame.RefreshToken) string {
	var d []string
	if got.Hash != want.Hash {
		d = append(d, fmt.Sprintf("Hash %x, want %x", got.Hash, want.Hash))
	}
	if got.SessionID != want.SessionID {
		d = append(d, fmt.Sprintf("SessionID %q, want %q", got.SessionID, want.SessionID))
	}
	if got.UserID != want.UserID {
		d = append(d, fmt.Sprintf("UserID %q, want %q", got.UserID, want.UserID))
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"RetiredAt", got.RetiredAt, want.RetiredAt},
	} {
		if f.got.IsZero() != f.want.IsZero() || !sameTime(f.got, f.want) {
			d = append(d, fmt.Sprintf("%s %v, want %v (within 1ms)", f.name, f.got, f.want))
		}
	}
	if got.SuccessorHash != want.SuccessorHash {
		d = append(d, fmt.Sprintf("SuccessorHash %x, want %x", got.SuccessorHash, want.SuccessorHash))
	}
	return strings.Join(d, "; ")
}

// checkToken checks that RefreshToken(want.Hash) is want.
func checkToken(t *testing.T, rs sesame.RefreshStore, what string, want sesame.RefreshToken) {
	t.Helper()
	got, err := rs.RefreshToken(ctx(t), want.Hash)
	if err != nil {
		t.Errorf("RefreshToken(%s): %v", what, err)
		return
	}
	if d := tokenDiff(got, want); d != "" {
		t.Errorf("RefreshToken(%s): %s", what, d)
	}
}

// checkNoToken checks that RefreshToken(hash) is sesame.ErrInvalidGrant.
func checkNoToken(t *testing.T, rs sesame.RefreshStore, what string, hash [32]byte) {
	t.Helper()
	if got, err := rs.RefreshToken(ctx(t), hash); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("RefreshToken(%s) = %+v, %v; want ErrInvalidGrant", what, got, err)
	}
}

// checkRotateInvalid checks that rotating hash fails with
// sesame.ErrInvalidGrant, and not as a reuse.
func checkRotateInvalid(t *testing.T, rs sesame.RefreshStore, what string, hash [32]byte, s sesame.Session) {
	t.Helper()
	next := newRefreshToken(s)
	err := rs.RotateRefreshToken(ctx(t), hash, next)
	if !errors.Is(err, sesame.ErrInvalidGrant) || errors.Is(err, sesame.ErrRefreshReused) {
		t.Errorf("RotateRefreshToken(%s) = %v, want ErrInvalidGrant", what, err)
	}
	checkNoToken(t, rs, "the successor of a refused rotation", next.Hash)
}

// checkReuse checks that rotating old, which next replaced, returns a
// *sesame.ReuseError with the retired token and successorCurrent, and
// changes nothing.
func checkReuse(t *testing.T, rs sesame.RefreshStore, what string, old, next sesame.RefreshToken, successorCurrent bool) {
	t.Helper()
	attempt := successor(old)
	err := rs.RotateRefreshToken(ctx(t), old.Hash, attempt)
	var reuse *sesame.ReuseError
	if !errors.As(err, &reuse) {
		t.Errorf("RotateRefreshToken(%s) = %v, want a *sesame.ReuseError", what, err)
		return
	}
	if !errors.Is(err, sesame.ErrRefreshReused) {
		t.Errorf("RotateRefreshToken(%s) = %v, which does not match ErrRefreshReused", what, err)
	}
	if d := tokenDiff(reuse.Token, retired(old, next)); d != "" {
		t.Errorf("RotateRefreshToken(%s): ReuseError.Token: %s", what, d)
	}
	if reuse.SuccessorCurrent != successorCurrent {
		t.Errorf("RotateRefreshToken(%s): ReuseError.SuccessorCurrent = %t, want %t", what, reuse.SuccessorCurrent, successorCurrent)
	}
	checkNoToken(t, rs, "the successor of a reused token", attempt.Hash)
	checkToken(t, rs, what+", after its reuse", retired(old, next))
}

func testRefreshCreate(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	tok := newRefreshToken(s)
	tok.CreatedAt = tok.CreatedAt.Add(1234567 * time.Nanosecond)
	mustCreateToken(t, rs, tok)
	checkToken(t, rs, "a new token", tok)

	// Another session's family is another family.
	other := tokenSession(t, ss, s.UserID)
	otherTok := newRefreshToken(other)
	mustCreateToken(t, rs, otherTok)
	checkToken(t, rs, "another family's token", otherTok)
	mustRotate(t, rs, otherTok, successor(otherTok))
	checkToken(t, rs, "a token after another family's rotation", tok)
}

func testRefreshMissing(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	_, unknown := sesame.NewSecret()
	checkNoToken(t, rs, "unknown hash in an empty store", unknown)
	checkRotateInvalid(t, rs, "unknown hash in an empty store", unknown, s)
	mustCreateToken(t, rs, newRefreshToken(s))
	checkNoToken(t, rs, "unknown hash", unknown)
	checkNoToken(t, rs, "zero hash", [32]byte{})
	checkRotateInvalid(t, rs, "unknown hash", unknown, s)

	// A token needs its session.
	orphan := newRefreshToken(liveSession(s.UserID, time.Now())) // never stored
	if err := rs.CreateRefreshToken(ctx(t), orphan); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("CreateRefreshToken(of an unknown session) = %v, want ErrSessionNotFound", err)
	}
	checkNoToken(t, rs, "a token of an unknown session", orphan.Hash)
}

func testRefreshRotate(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	t0 := newRefreshToken(s)
	mustCreateToken(t, rs, t0)
	t1 := successor(t0)
	t1.CreatedAt = t0.CreatedAt.Add(time.Second)
	mustRotate(t, rs, t0, t1)
	checkToken(t, rs, "the retired token", retired(t0, t1))
	checkToken(t, rs, "the new current token", t1)

	// The successor may leave its SessionID empty: it joins the family.
	t2 := successor(t1)
	t2.SessionID = ""
	t2.CreatedAt = t1.CreatedAt.Add(time.Second)
	mustRotate(t, rs, t1, t2)
	t2.SessionID = s.ID
	if t0.UserID != s.UserID || t2.UserID != s.UserID {
		t.Fatal("the tokens do not carry the session's user")
	}
	checkToken(t, rs, "the first token", retired(t0, t1))
	checkToken(t, rs, "the second token", retired(t1, t2))
	checkToken(t, rs, "the third token", t2)
}

func testRefreshReuse(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	t0 := newRefreshToken(s)
	mustCreateToken(t, rs, t0)
	t1 := successor(t0)
	mustRotate(t, rs, t0, t1)

	// t0 again while t1 is current: a race of the client's, or a theft.
	checkReuse(t, rs, "the retired token, its successor current", t0, t1, true)
	checkToken(t, rs, "the current token, after a reuse", t1)

	// t0 again with the very successor it already has (a client's retry
	// within the reuse grace): reported as a reuse, and t1 stays current
	// and findable.
	err := rs.RotateRefreshToken(ctx(t), t0.Hash, t1)
	var reuse *sesame.ReuseError
	if !errors.As(err, &reuse) || !reuse.SuccessorCurrent || reuse.Token.SuccessorHash != t1.Hash {
		t.Errorf("RotateRefreshToken(the retired token, its own successor again) = %v, want a *sesame.ReuseError naming it, current", err)
	}
	checkToken(t, rs, "the current token, after its predecessor was retried with it", t1)

	// The store changed nothing: t1 still rotates.
	t2 := successor(t1)
	mustRotate(t, rs, t1, t2)
	checkReuse(t, rs, "the first token, two rotations on", t0, t1, false)
	checkReuse(t, rs, "the second token, its successor current", t1, t2, true)
	checkToken(t, rs, "the current token, after reuses", t2)
}

// testRefreshConcurrentRotate rotates one token from many goroutines at
// once: exactly one succeeds, and every other sees a reuse of it.
func testRefreshConcurrentRotate(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	const racers = 20
	s := tokenSession(t, ss, sesame.NewID())
	t0 := newRefreshToken(s)
	mustCreateToken(t, rs, t0)
	var (
		next [racers]sesame.RefreshToken
		errs [racers]error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range racers {
		next[i] = successor(t0)
		wg.Go(func() {
			<-start
			errs[i] = rs.RotateRefreshToken(ctx(t), t0.Hash, next[i])
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		if err != nil {
			continue
		}
		if winner >= 0 {
			t.Fatalf("RotateRefreshToken of one token succeeded in goroutines %d and %d", winner, i)
		}
		winner = i
	}
	if winner < 0 {
		t.Fatalf("RotateRefreshToken of one token failed in all %d goroutines; first error: %v", racers, errs[0])
	}
	for i, err := range errs {
		if i == winner {
			continue
		}
		var reuse *sesame.ReuseError
		if !errors.As(err, &reuse) {
			t.Errorf("losing RotateRefreshToken = %v, want a *sesame.ReuseError", err)
			continue
		}
		if reuse.Token.SuccessorHash != next[winner].Hash || !reuse.SuccessorCurrent {
			t.Errorf("losing RotateRefreshToken: ReuseError{SuccessorHash %x, SuccessorCurrent %t}, want the winner's %x, true",
				reuse.Token.SuccessorHash, reuse.SuccessorCurrent, next[winner].Hash)
		}
		checkNoToken(t, rs, "a losing successor", next[i].Hash)
	}
	checkToken(t, rs, "the retired token", retired(t0, next[winner]))
	checkToken(t, rs, "the winning successor", next[winner])
}

// testRefreshSessionEnded checks that ending the session through end ends
// its family, current and retired tokens alike, and no other family.
func testRefreshSessionEnded(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore, end func(sesame.Session) error) {
	s := tokenSession(t, ss, sesame.NewID())
	t0 := newRefreshToken(s)
	mustCreateToken(t, rs, t0)
	t1 := successor(t0)
	mustRotate(t, rs, t0, t1)
	other := tokenSession(t, ss, sesame.NewID())
	otherTok := newRefreshToken(other)
	mustCreateToken(t, rs, otherTok)

	if err := end(s); err != nil {
		t.Fatalf("ending the session: %v", err)
	}
	checkNoToken(t, rs, "the current token of an ended session", t1.Hash)
	checkNoToken(t, rs, "a retired token of an ended session", t0.Hash)
	checkRotateInvalid(t, rs, "the current token of an ended session", t1.Hash, s)
	checkRotateInvalid(t, rs, "a retired token of an ended session", t0.Hash, s)
	checkToken(t, rs, "another session's token", otherTok)

	// A new session under the same ID does not bring the family back.
	if err := rs.CreateRefreshToken(ctx(t), newRefreshToken(s)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("CreateRefreshToken(of an ended session) = %v, want ErrSessionNotFound", err)
	}
	mustCreateSession(t, ss, s)
	checkNoToken(t, rs, "a token of an ended session, its ID reused", t1.Hash)
}

func testRefreshSessionExpired(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	t0 := newRefreshToken(s)
	mustCreateToken(t, rs, t0)
	t1 := successor(t0)
	mustRotate(t, rs, t0, t1)
	if err := ss.TouchSession(ctx(t), s.UserID, s.ID, time.Now(), time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	checkNoToken(t, rs, "the current token of an expired session", t1.Hash)
	checkNoToken(t, rs, "a retired token of an expired session", t0.Hash)
	checkRotateInvalid(t, rs, "the current token of an expired session", t1.Hash, s)
	checkRotateInvalid(t, rs, "a retired token of an expired session", t0.Hash, s)
	if err := rs.CreateRefreshToken(ctx(t), newRefreshToken(s)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("CreateRefreshToken(of an expired session) = %v, want ErrSessionNotFound", err)
	}

	sw, ok := ss.(sesame.Sweeper)
	if !ok {
		return
	}
	if n, err := sw.DeleteExpired(ctx(t)); err != nil || n < 1 {
		t.Errorf("DeleteExpired = %d, %v; want at least the session, nil", n, err)
	}
	checkNoToken(t, rs, "the current token of a swept session", t1.Hash)
	if n, err := sw.DeleteExpired(ctx(t)); err != nil || n != 0 {
		t.Errorf("DeleteExpired again = %d, %v; want 0, nil", n, err)
	}
}

// testRefreshFamilyExpired checks tokens past their own ExpiresAt, whose
// session lives on.
func testRefreshFamilyExpired(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	t0 := newRefreshToken(s)
	t0.ExpiresAt = time.Now().Add(-time.Minute)
	mustCreateToken(t, rs, t0)
	checkNoToken(t, rs, "an expired token", t0.Hash)
	checkRotateInvalid(t, rs, "an expired token", t0.Hash, s)

	// A family whose successor has the end of the family.
	u0 := newRefreshToken(s)
	mustCreateToken(t, rs, u0)
	u1 := successor(u0)
	u1.ExpiresAt = time.Now().Add(-time.Minute)
	mustRotate(t, rs, u0, u1)
	checkNoToken(t, rs, "an expired successor", u1.Hash)
	checkRotateInvalid(t, rs, "an expired successor", u1.Hash, s)
	checkToken(t, rs, "the retired token, not expired", retired(u0, u1))
	checkFound(t, ss, s)
}
