package redisstore_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/redisstore"
)

// pttl returns the key's time to live in Redis (-2 if there is no key, -1
// if it has no TTL).
func pttl(t *testing.T, st *redisstore.Store, key string) time.Duration {
	t.Helper()
	c := st.Client()
	ms, err := c.Do(t.Context(), c.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	if ms < 0 {
		return time.Duration(ms)
	}
	return time.Duration(ms) * time.Millisecond
}

func near(got, want time.Duration) bool {
	d := got - want
	return -5*time.Second < d && d < 5*time.Second
}

// TestTTLs checks that every record Redis keeps expires when its deadline
// passes, so that Redis forgets what has expired without a sweeper.
func TestTTLs(t *testing.T) {
	st := open(t, testURL())
	ctx := t.Context()
	s := newSession(sesame.NewID())
	s.Kind = sesame.KindToken
	s.ExpiresAt = time.Now().Add(30 * time.Minute)
	s.AbsoluteExpiresAt = time.Now().Add(12 * time.Hour)
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	_, tokHash := sesame.NewSecret()
	tok := sesame.RefreshToken{Hash: tokHash, SessionID: s.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(6 * time.Hour)}
	if err := st.CreateRefreshToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Hit(ctx, "ip:203.0.113.7", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	hexHash := func(h [32]byte) string { return fmt.Sprintf("%x", h) }
	u := "{u:" + s.UserID + "}"
	for _, c := range []struct {
		key  string
		want time.Duration
	}{
		{u + ":s:" + s.ID, 30 * time.Minute},            // the record, at ExpiresAt
		{"sh:" + hexHash(s.SecretHash), 12 * time.Hour}, // pointers, at the later deadline
		{"si:" + s.ID, 12 * time.Hour},
		{u + ":idx", 12 * time.Hour},
		{u + ":f:" + s.ID, 6 * time.Hour}, // the family, at its last token's end
		{"rt:" + hexHash(tokHash), 6 * time.Hour},
		{"lim:ip:203.0.113.7", 10 * time.Minute},
	} {
		if got := pttl(t, st, c.key); !near(got, c.want) {
			t.Errorf("PTTL %s = %v, want about %v", c.key, got, c.want)
		}
	}

	// A touch moves the record's TTL; one past the pointers' moves theirs.
	if err := st.TouchSession(ctx, s.ID, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := pttl(t, st, u+":s:"+s.ID); !near(got, time.Hour) {
		t.Errorf("PTTL of the record after a touch = %v, want about 1h", got)
	}
	if err := st.TouchSession(ctx, s.ID, time.Now(), time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{u + ":s:" + s.ID, "sh:" + hexHash(s.SecretHash), "si:" + s.ID, u + ":idx"} {
		if got := pttl(t, st, k); !near(got, 24*time.Hour) {
			t.Errorf("PTTL %s after a touch past the pointers' deadline = %v, want about 24h", k, got)
		}
	}

	// Ending the session leaves no key of it behind.
	if err := st.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{u + ":s:" + s.ID, "sh:" + hexHash(s.SecretHash), "si:" + s.ID, u + ":idx", u + ":f:" + s.ID, "rt:" + hexHash(tokHash), u + ":rv"} {
		if got := pttl(t, st, k); got != -2 {
			t.Errorf("%s still there after DeleteSession (PTTL %v)", k, got)
		}
	}
}

// TestOddIDs stores sessions whose user and session IDs hold the characters
// that key names and hash tags give meaning to.
func TestOddIDs(t *testing.T) {
	st := open(t, testURL())
	ctx := t.Context()
	users := []string{"", "a}b", "{x}", "~7b", "u:1:2", "日本"}
	ids := []string{"", "a:b", "}{", "s p a c e", strings.ToUpper(sesame.NewID())}
	var all []sesame.Session
	for i, u := range users {
		for j, id := range ids {
			s := newSession(u)
			s.ID = fmt.Sprintf("%s-%d", id, i)
			s.CreatedAt = s.CreatedAt.Add(time.Duration(j) * time.Second)
			if err := st.CreateSession(ctx, s); err != nil {
				t.Fatalf("CreateSession(user %q, id %q): %v", u, s.ID, err)
			}
			all = append(all, s)
		}
	}
	for _, s := range all {
		got, err := st.Session(ctx, s.SecretHash)
		if err != nil || got.ID != s.ID || got.UserID != s.UserID {
			t.Errorf("Session(user %q, id %q) = %q of %q, %v", s.UserID, s.ID, got.ID, got.UserID, err)
		}
	}
	for i, u := range users {
		list, err := st.UserSessions(ctx, u)
		if err != nil || len(list) != len(ids) {
			t.Errorf("UserSessions(%q) = %d sessions, %v; want %d", u, len(list), err, len(ids))
		}
		for _, s := range list {
			if s.UserID != u {
				t.Errorf("UserSessions(%q) lists a session of %q", u, s.UserID)
			}
		}
		keep := fmt.Sprintf("%s-%d", ids[1], i)
		ended, err := st.DeleteUserSessions(ctx, u, keep)
		if err != nil || len(ended) != len(ids)-1 || slices.Contains(ended, keep) {
			t.Errorf("DeleteUserSessions(%q) = %q, %v", u, ended, err)
		}
	}
}

// TestStoreClock checks that the store's clock, not Redis's TTLs alone,
// decides what is live.
func TestStoreClock(t *testing.T) {
	st := open(t, testURL())
	ctx := t.Context()
	s := newSession(sesame.NewID())
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	st.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := st.Session(ctx, s.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("Session past ExpiresAt on the store's clock: %v, want ErrSessionNotFound", err)
	}
	if list, err := st.UserSessions(ctx, s.UserID); err != nil || len(list) != 0 {
		t.Errorf("UserSessions past ExpiresAt = %d sessions, %v", len(list), err)
	}
	if err := st.TouchSession(ctx, s.ID, time.Now(), time.Now().Add(3*time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession past ExpiresAt: %v, want ErrSessionNotFound", err)
	}
	if n, err := st.CountSessions(ctx); err != nil || n != 0 {
		t.Errorf("CountSessions past ExpiresAt = %d, %v; want 0", n, err)
	}
}

// TestDanglingPointer checks that a pointer whose record is gone (a crash
// between the two writes) is ignored.
func TestDanglingPointer(t *testing.T) {
	st := open(t, testURL())
	ctx := t.Context()
	s := newSession(sesame.NewID())
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	c := st.Client()
	if err := c.Do(ctx, c.B().Del().Key("{u:"+s.UserID+"}:s:"+s.ID).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Session(ctx, s.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("Session through a dangling pointer: %v, want ErrSessionNotFound", err)
	}
	if err := st.TouchSession(ctx, s.ID, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession through a dangling pointer: %v, want ErrSessionNotFound", err)
	}
	if err := st.DeleteSession(ctx, s.ID); err != nil {
		t.Errorf("DeleteSession through a dangling pointer: %v", err)
	}
	if list, err := st.RevocationsSince(ctx, 0, 10); err != nil || len(list) != 0 {
		t.Errorf("revocations after deleting a session that was gone: %v, %v", list, err)
	}
}

// TestRevocationAppendFails makes appending to the revocation log fail (an
// ACL that forbids XADD) and checks that ending sessions reports it, and
// that calling again once the log accepts appends logs each once.
func TestRevocationAppendFails(t *testing.T) {
	needRedisServer(t)
	srv := startRedis(t, freePort(t), t.TempDir())
	port := fmt.Sprint(srv.port)
	cli(t, "-p", port, "ACL", "SETUSER", "sesame", "on", ">pw", "~*", "&*", "+@all", "-xadd")
	st, err := redisstore.Open(t.Context(), fmt.Sprintf("redis://sesame:pw@%s/0", srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	user := sesame.NewID()
	a, b, c := newSession(user), newSession(user), newSession(user)
	for _, s := range []sesame.Session{a, b, c} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteSession(ctx, a.ID); err == nil {
		t.Error("DeleteSession with the log refusing appends = nil, want an error")
	}
	if _, err := st.Session(ctx, a.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("Session after a DeleteSession whose log append failed: %v, want ErrSessionNotFound", err)
	}
	ended, err := st.DeleteUserSessions(ctx, user, c.ID)
	if err == nil || !slices.Equal(ended, []string{b.ID}) {
		t.Errorf("DeleteUserSessions with the log refusing appends = %q, %v; want [%s] and an error", ended, err, b.ID)
	}

	cli(t, "-p", port, "ACL", "SETUSER", "sesame", "+xadd")
	if err := st.DeleteSession(ctx, a.ID); err != nil {
		t.Fatalf("DeleteSession again: %v", err)
	}
	if _, err := st.DeleteUserSessions(ctx, user, c.ID); err != nil {
		t.Fatalf("DeleteUserSessions again: %v", err)
	}
	if err := st.DeleteSession(ctx, a.ID); err != nil { // nothing left to append
		t.Fatalf("DeleteSession a third time: %v", err)
	}
	list, err := st.RevocationsSince(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range list {
		got = append(got, r.SessionID)
	}
	want := []string{a.ID, b.ID}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("revocations logged = %q, want %q, each once", got, want)
	}
}
