package memstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
)

// tokenFamily stores a token session of user with id, and a family of
// three tokens (two retired), and returns them.
func tokenFamily(t *testing.T, st *memstore.Store, id, user string, now time.Time, ttl time.Duration) (sesame.Session, []sesame.RefreshToken) {
	t.Helper()
	ctx := t.Context()
	_, hash := sesame.NewSecret()
	s := sesame.Session{ID: id, SecretHash: hash, UserID: user, Kind: sesame.KindToken,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(ttl), AbsoluteExpiresAt: now.Add(ttl)}
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	var family []sesame.RefreshToken
	for i := range 3 {
		_, h := sesame.NewSecret()
		tok := sesame.RefreshToken{Hash: h, SessionID: id, UserID: user, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		var err error
		if i == 0 {
			err = st.CreateRefreshToken(ctx, tok)
		} else {
			err = st.RotateRefreshToken(ctx, family[i-1].Hash, tok)
		}
		if err != nil {
			t.Fatal(err)
		}
		family = append(family, tok)
	}
	return s, family
}

func checkFamilyGone(t *testing.T, st *memstore.Store, what string, family []sesame.RefreshToken) {
	t.Helper()
	for _, tok := range family {
		if _, err := st.RefreshToken(t.Context(), tok.Hash); !errors.Is(err, sesame.ErrInvalidGrant) {
			t.Errorf("%s: RefreshToken = %v, want ErrInvalidGrant", what, err)
		}
	}
}

// TestFamiliesOfOddIDs checks refresh families and revocations of sessions
// whose IDs the compact index cannot hold.
func TestFamiliesOfOddIDs(t *testing.T) {
	st, c := newClockStore()
	ctx := t.Context()
	now := c.Now()
	_, famA := tokenFamily(t, st, "odd-a", "u", now, time.Hour)
	_, famB := tokenFamily(t, st, "ODD-B", "u", now, time.Hour)
	_, famC := tokenFamily(t, st, sesame.NewID(), "u", now, time.Hour)
	if err := st.DeleteSession(ctx, "u", "odd-a"); err != nil {
		t.Fatal(err)
	}
	checkFamilyGone(t, st, "after DeleteSession", famA)
	if got, err := st.RefreshToken(ctx, famB[2].Hash); err != nil || got.UserID != "u" || got.SessionID != "ODD-B" {
		t.Errorf("another odd session's token: %+v, %v", got, err)
	}
	ended, err := st.DeleteUserSessions(ctx, "u", "")
	if err != nil || len(ended) != 2 {
		t.Fatalf("DeleteUserSessions = %q, %v", ended, err)
	}
	checkFamilyGone(t, st, "after DeleteUserSessions", famB)
	checkFamilyGone(t, st, "after DeleteUserSessions", famC)
	list, err := st.RevocationsSince(ctx, 0, 10)
	if err != nil || len(list) != 3 || list[0].SessionID != "odd-a" || list[1].SessionID != "ODD-B" {
		t.Errorf("RevocationsSince = %+v, %v; want odd-a, ODD-B and the third", list, err)
	}
	if n, _ := st.DeleteExpired(ctx); n != 0 {
		t.Errorf("DeleteExpired = %d, want 0: everything was deleted already", n)
	}
}

// TestSweepFamilies checks that DeleteExpired removes an expired session
// with its family, counts both, and logs no revocation.
func TestSweepFamilies(t *testing.T) {
	st, c := newClockStore()
	ctx := t.Context()
	_, short := tokenFamily(t, st, sesame.NewID(), "u", c.Now(), time.Minute)
	_, long := tokenFamily(t, st, sesame.NewID(), "u", c.Now(), time.Hour)
	c.Add(time.Minute)
	checkFamilyGone(t, st, "expired, before the sweep", short)
	if n, err := st.DeleteExpired(ctx); err != nil || n != 1+len(short) {
		t.Errorf("DeleteExpired = %d, %v; want %d (the session and its tokens)", n, err, 1+len(short))
	}
	if _, err := st.RefreshToken(ctx, long[2].Hash); err != nil {
		t.Errorf("the live family's token: %v", err)
	}
	if list, _ := st.RevocationsSince(ctx, 0, 10); len(list) != 0 {
		t.Errorf("the sweep logged revocations: %+v", list)
	}
}

func TestRevocationRetention(t *testing.T) {
	st, c := newClockStore()
	ctx := t.Context()
	end := func() {
		t.Helper()
		s := sesame.Session{ID: sesame.NewID(), UserID: "u", ExpiresAt: c.Now().Add(48 * time.Hour)}
		s.SecretHash = sesame.HashSecret(s.ID)
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteSession(ctx, s.UserID, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func() (s []int64) {
		t.Helper()
		list, err := st.RevocationsSince(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			s = append(s, r.Seq)
		}
		return s
	}
	end()
	c.Add(time.Hour)
	end()
	c.Add(sesame.DefaultRevocationRetention - time.Hour)
	st.DeleteExpired(ctx)
	if got := seqs(); len(got) != 2 {
		t.Fatalf("at the retention: seqs %v, want both", got)
	}
	c.Add(time.Nanosecond)
	st.DeleteExpired(ctx)
	if got := seqs(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("past the first's retention: seqs %v, want [2]", got)
	}
	st.RevocationRetention = time.Minute
	c.Add(time.Hour)
	st.DeleteExpired(ctx)
	if got := seqs(); len(got) != 0 {
		t.Fatalf("past a shorter retention: seqs %v, want none", got)
	}
	end()
	if got := seqs(); len(got) != 1 || got[0] != 3 {
		t.Errorf("after pruning, the next revocation has seqs %v, want [3]: a Seq is never reused", got)
	}
	if list, err := st.RevocationsSince(ctx, 0, 0); err != nil || len(list) != 0 {
		t.Errorf("RevocationsSince with limit 0 = %+v, %v; want none", list, err)
	}
}

func TestUnknownKind(t *testing.T) {
	st := memstore.New()
	s := sesame.Session{ID: sesame.NewID(), UserID: "u", Kind: "bearer", ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(t.Context(), s); err == nil {
		t.Error("CreateSession with an unknown kind succeeded")
	}
}
