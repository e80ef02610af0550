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
	run("History", testRefreshHistory)
	run("Current", testRefreshCurrent)
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

// successor returns the token that replaces t, of the next generation.
func successor(t sesame.RefreshToken) sesame.RefreshToken {
	_, hash := sesame.NewSecret()
	next := t
	next.Hash, next.CreatedAt = hash, time.Now()
	next.RetiredAt, next.SuccessorHash = time.Time{}, [32]byte{}
	next.Generation = t.Generation + 1
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
	if got.Generation != want.Generation {
		d = append(d, fmt.Sprintf("Generation %d, want %d", got.Generation, want.Generation))
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

	// Another session's family is another family; a token keeps the
	// generation it was created with.
	other := tokenSession(t, ss, s.UserID)
	otherTok := newRefreshToken(other)
	otherTok.Generation = 7
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
	// Its Generation is the store's to set: one above its predecessor's.
	t2 := successor(t1)
	t2.SessionID = ""
	t2.CreatedAt = t1.CreatedAt.Add(time.Second)
	t2.Generation = 99
	mustRotate(t, rs, t1, t2)
	t2.SessionID, t2.Generation = s.ID, 2
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

// testRefreshHistory rotates one family far past
// sesame.RetiredRefreshTokensKept: the store keeps the current token and the
// newest retired ones (a reuse of which it still reports), forgets the
// older ones, and the current token's Generation counts every rotation, so
// that a forgotten token's generation is still seen to be retired. Another
// family keeps all of its few tokens.
func testRefreshHistory(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	const (
		kept      = sesame.RetiredRefreshTokensKept
		rotations = kept + 30
	)
	other := tokenSession(t, ss, sesame.NewID())
	otherChain := []sesame.RefreshToken{newRefreshToken(other)}
	mustCreateToken(t, rs, otherChain[0])
	for range 3 {
		next := successor(otherChain[len(otherChain)-1])
		mustRotate(t, rs, otherChain[len(otherChain)-1], next)
		otherChain = append(otherChain, next)
	}

	s := tokenSession(t, ss, sesame.NewID())
	chain := []sesame.RefreshToken{newRefreshToken(s)}
	mustCreateToken(t, rs, chain[0])
	for range rotations {
		next := successor(chain[len(chain)-1])
		mustRotate(t, rs, chain[len(chain)-1], next)
		chain = append(chain, next)
	}
	forgotten := rotations - kept // chain[:forgotten] are beyond the newest kept
	for i, tok := range chain {
		switch {
		case i < forgotten:
			checkNoToken(t, rs, fmt.Sprintf("retired token %d of %d, older than the newest %d", i, rotations, kept), tok.Hash)
		case i < rotations:
			checkToken(t, rs, fmt.Sprintf("retired token %d of %d, among the newest %d", i, rotations, kept), retired(tok, chain[i+1]))
		default:
			checkToken(t, rs, "the current token after many rotations", tok)
		}
	}
	// A forgotten token is unknown to the store; the family's current
	// generation says it was retired (the caller ends the family).
	checkRotateInvalid(t, rs, "a forgotten retired token", chain[0].Hash, s)
	checkCurrent(t, rs, "a family after many rotations", s, chain[rotations])
	checkReuse(t, rs, "the oldest retired token kept", chain[forgotten], chain[forgotten+1], false)
	for i, tok := range otherChain[:len(otherChain)-1] {
		checkToken(t, rs, fmt.Sprintf("retired token %d of another family", i), retired(tok, otherChain[i+1]))
	}
	checkToken(t, rs, "the current token of another family", otherChain[len(otherChain)-1])
}

// checkCurrent checks that CurrentRefreshToken of s's family is want.
func checkCurrent(t *testing.T, rs sesame.RefreshStore, what string, s sesame.Session, want sesame.RefreshToken) {
	t.Helper()
	got, err := rs.CurrentRefreshToken(ctx(t), s.UserID, s.ID)
	if err != nil {
		t.Errorf("CurrentRefreshToken(%s): %v", what, err)
		return
	}
	if d := tokenDiff(got, want); d != "" {
		t.Errorf("CurrentRefreshToken(%s): %s", what, d)
	}
}

// checkNoCurrent checks that CurrentRefreshToken(userID, sessionID) is
// sesame.ErrInvalidGrant.
func checkNoCurrent(t *testing.T, rs sesame.RefreshStore, what, userID, sessionID string) {
	t.Helper()
	if got, err := rs.CurrentRefreshToken(ctx(t), userID, sessionID); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("CurrentRefreshToken(%s) = %+v, %v; want ErrInvalidGrant", what, got, err)
	}
}

func testRefreshCurrent(t *testing.T, ss sesame.SessionStore, rs sesame.RefreshStore) {
	s := tokenSession(t, ss, sesame.NewID())
	checkNoCurrent(t, rs, "a session without a family", s.UserID, s.ID)
	checkNoCurrent(t, rs, "an unknown session", s.UserID, sesame.NewID())
	t0 := newRefreshToken(s)
	mustCreateToken(t, rs, t0)
	checkCurrent(t, rs, "a new family", s, t0)
	checkNoCurrent(t, rs, "another user's session", sesame.NewID(), s.ID)
	t1 := successor(t0)
	mustRotate(t, rs, t0, t1)
	checkCurrent(t, rs, "a family after one rotation", s, t1)

	// A family whose current token has expired has none.
	e := tokenSession(t, ss, s.UserID)
	e0 := newRefreshToken(e)
	mustCreateToken(t, rs, e0)
	e1 := successor(e0)
	e1.ExpiresAt = time.Now().Add(-time.Minute)
	mustRotate(t, rs, e0, e1)
	checkNoCurrent(t, rs, "a family whose current token expired", e.UserID, e.ID)

	// Nor has a session that expired, or ended.
	x := tokenSession(t, ss, s.UserID)
	mustCreateToken(t, rs, newRefreshToken(x))
	if err := ss.TouchSession(ctx(t), x.UserID, x.ID, time.Now(), time.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	checkNoCurrent(t, rs, "the family of an expired session", x.UserID, x.ID)
	if err := ss.DeleteSession(ctx(t), s.UserID, s.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	checkNoCurrent(t, rs, "the family of an ended session", s.UserID, s.ID)
}
