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
	tok := sesame.RefreshToken{Hash: tokHash, SessionID: s.ID, UserID: s.UserID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(6 * time.Hour)}
	if err := st.CreateRefreshToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Hit(ctx, "ip:203.0.113.7", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	hexHash := func(h [32]byte) string { return fmt.Sprintf("%x", h) }
	records, bucket := redisstore.RecordsKey(s.UserID), redisstore.HashBucket(s.SecretHash)
	for _, c := range []struct {
		key  string
		want time.Duration
	}{
		// The records and the secret-hash pointer, at ExpiresAt plus one
		// more idle period (capped at AbsoluteExpiresAt).
		{records, time.Hour},
		{bucket, time.Hour},
		{redisstore.FamilyKey(s.UserID, s.ID), 6 * time.Hour}, // the family, at its last token's end
		{"rt:" + hexHash(tokHash), 6 * time.Hour},
		{"lim:ip:203.0.113.7", 10 * time.Minute},
	} {
		if got := pttl(t, st, c.key); !near(got, c.want) {
			t.Errorf("PTTL %s = %v, want about %v", c.key, got, c.want)
		}
	}

	// A touch within the pointer's deadline moves nothing; one past it
	// moves the deadline to the new ExpiresAt plus one more idle period.
	if err := st.TouchSession(ctx, s.UserID, s.ID, time.Now(), time.Now().Add(50*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := pttl(t, st, records); !near(got, time.Hour) {
		t.Errorf("PTTL of the records after a touch within the deadline = %v, want about 1h", got)
	}
	if err := st.TouchSession(ctx, s.UserID, s.ID, time.Now(), time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{records, bucket} {
		if got := pttl(t, st, k); !near(got, 48*time.Hour) {
			t.Errorf("PTTL %s after a touch past the pointer's deadline = %v, want about 48h", k, got)
		}
	}
	if got, err := st.Session(ctx, s.SecretHash); err != nil || !got.ExpiresAt.After(time.Now().Add(23*time.Hour)) {
		t.Errorf("Session after the touch = %v, %v; want the new deadline", got.ExpiresAt, err)
	}

	// Ending the session leaves no key of it behind.
	if err := st.DeleteSession(ctx, s.UserID, s.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{records, bucket, redisstore.FamilyKey(s.UserID, s.ID), "rt:" + hexHash(tokHash), "{u:" + s.UserID + "}:rv"} {
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
	if err := st.TouchSession(ctx, s.UserID, s.ID, time.Now(), time.Now().Add(3*time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
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
	if err := c.Do(ctx, c.B().Hdel().Key(redisstore.RecordsKey(s.UserID)).Field(redisstore.IDField(s.ID)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Session(ctx, s.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("Session through a dangling pointer: %v, want ErrSessionNotFound", err)
	}
	if err := st.TouchSession(ctx, s.UserID, s.ID, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession through a dangling pointer: %v, want ErrSessionNotFound", err)
	}
	if err := st.DeleteSession(ctx, s.UserID, s.ID); err != nil {
		t.Errorf("DeleteSession through a dangling pointer: %v", err)
	}
	if list, err := st.RevocationsSince(ctx, 0, 10); err != nil || len(list) != 0 {
		t.Errorf("revocations after deleting a session that was gone: %v, %v", list, err)
	}
}

// refusingLog returns a store on a private Redis whose ACL forbids XADD, so
// that every append to the revocation log fails, and a function that
// allows it again.
func refusingLog(t *testing.T) (*redisstore.Store, func()) {
	t.Helper()
	needRedisServer(t)
	srv := startRedis(t, freePort(t), t.TempDir())
	port := fmt.Sprint(srv.port)
	cli(t, "-p", port, "ACL", "SETUSER", "sesame", "on", ">pw", "~*", "&*", "+@all", "-xadd")
	st, err := redisstore.Open(t.Context(), fmt.Sprintf("redis://sesame:pw@%s/0", srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, func() { cli(t, "-p", port, "ACL", "SETUSER", "sesame", "+xadd") }
}

// TestRevocationAppendFails makes appending to the revocation log fail (an
// ACL that forbids XADD) and checks that ending sessions reports it, and
// that calling again once the log accepts appends logs each once.
func TestRevocationAppendFails(t *testing.T) {
	st, allowAppends := refusingLog(t)
	ctx := t.Context()
	user := sesame.NewID()
	a, b, c := newSession(user), newSession(user), newSession(user)
	for _, s := range []sesame.Session{a, b, c} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteSession(ctx, a.UserID, a.ID); err == nil {
		t.Error("DeleteSession with the log refusing appends = nil, want an error")
	}
	if _, err := st.Session(ctx, a.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("Session after a DeleteSession whose log append failed: %v, want ErrSessionNotFound", err)
	}
	ended, err := st.DeleteUserSessions(ctx, user, c.ID)
	if err == nil || !slices.Equal(ended, []string{b.ID}) {
		t.Errorf("DeleteUserSessions with the log refusing appends = %q, %v; want [%s] and an error", ended, err, b.ID)
	}

	allowAppends()
	if err := st.DeleteSession(ctx, a.UserID, a.ID); err != nil {
		t.Fatalf("DeleteSession again: %v", err)
	}
	if _, err := st.DeleteUserSessions(ctx, user, c.ID); err != nil {
		t.Fatalf("DeleteUserSessions again: %v", err)
	}
	if err := st.DeleteSession(ctx, a.UserID, a.ID); err != nil { // nothing left to append
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

// TestCacheCoherence checks the client-side cache against the writes of
// the same store and of another one (another node) on the same Redis.
func TestCacheCoherence(t *testing.T) {
	a := open(t, testURL())
	b := open(t, testURL())
	ctx := t.Context()
	// within is how long another node may go on seeing a change: Redis's
	// invalidation message normally arrives well before the next request,
	// and no record stays cached for more than a second.
	const within = time.Second
	eventually := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for tries := 1; !ok(); tries++ {
			if time.Since(start) > within {
				t.Fatalf("%s: not seen after %v", what, within)
			}
			if tries == 1 {
				defer func() { t.Logf("%s: seen after %v, not at once", what, time.Since(start)) }()
			}
			time.Sleep(time.Millisecond)
		}
	}
	gone := func(st *redisstore.Store, s sesame.Session) func() bool {
		return func() bool {
			_, err := st.Session(ctx, s.SecretHash)
			if err != nil && !errors.Is(err, sesame.ErrSessionNotFound) {
				t.Fatal(err)
			}
			return err != nil
		}
	}
	warm := func(what string, s sesame.Session, stores ...*redisstore.Store) {
		t.Helper()
		for _, st := range stores {
			for range 2 { // the second from the cache
				if _, err := st.Session(ctx, s.SecretHash); err != nil {
					t.Fatalf("%s: Session: %v", what, err)
				}
			}
		}
	}
	for i := range 50 {
		user := sesame.NewID()
		s := newSession(user)
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		warm("new session", s, a, b)

		// A touch on one node: that node reads its own write at once, the
		// other within a second.
		seen := s.LastSeenAt.Add(time.Duration(i+1) * time.Minute)
		if err := b.TouchSession(ctx, user, s.ID, seen, seen.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Session(ctx, s.SecretHash); err != nil || !got.LastSeenAt.Equal(seen.Truncate(time.Millisecond)) {
			t.Fatalf("touching node: Session right after its touch = %v, %v; want LastSeenAt %v", got.LastSeenAt, err, seen)
		}
		eventually("the other node sees the touch", func() bool {
			got, err := a.Session(ctx, s.SecretHash)
			return err == nil && got.LastSeenAt.Equal(seen.Truncate(time.Millisecond))
		})

		// An end on one node: refused there on the very next lookup, on
		// the other within a second.
		ender, other := a, b
		if i%2 == 1 {
			ender, other = b, a
		}
		warm("before the end", s, a, b)
		switch i % 3 {
		case 0:
			err := ender.DeleteSession(ctx, user, s.ID)
			if err != nil {
				t.Fatal(err)
			}
		case 1:
			if _, err := ender.DeleteUserSessions(ctx, user, ""); err != nil {
				t.Fatal(err)
			}
		case 2: // a touch into the past: it expired
			if err := ender.TouchSession(ctx, user, s.ID, time.Now(), time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if !gone(ender, s)() {
			t.Fatalf("try %d: the ending node still finds the session on the very next lookup", i)
		}
		eventually("the other node refuses the ended session", gone(other, s))

		// The same ID stored again with a new secret (a replaced session):
		// the old secret is refused, the new one found, on both.
		s2 := s
		_, s2.SecretHash = sesame.NewSecret()
		if err := a.CreateSession(ctx, s2); err != nil {
			t.Fatal(err)
		}
		warm("the replacement", s2, a, b)
		if !gone(a, s)() || !gone(b, s)() {
			t.Fatalf("try %d: the ended secret is found again after its ID was reused", i)
		}
	}
}

// TestForgetExpired checks that writes forget the expired entries of the
// hashes they write to: a user's records, and a pointer bucket.
func TestForgetExpired(t *testing.T) {
	st := open(t, testURL())
	ctx := t.Context()
	user := sesame.NewID()
	var prefix [32]byte // every hash below starts alike: one pointer bucket
	prefix[0], prefix[1] = 0xab, 0xcd
	mk := func() sesame.Session {
		s := newSession(user)
		_, h := sesame.NewSecret()
		copy(s.SecretHash[2:], h[2:])
		s.SecretHash[0], s.SecretHash[1] = prefix[0], prefix[1]
		return s
	}
	for range 10 {
		if err := st.CreateSession(ctx, mk()); err != nil {
			t.Fatal(err)
		}
	}
	c := st.Client()
	hlen := func(key string) int64 {
		n, err := c.Do(ctx, c.B().Hlen().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	records, bucket := redisstore.RecordsKey(user), redisstore.HashBucket(prefix)
	if n, m := hlen(records), hlen(bucket); n != 10 || m != 10 {
		t.Fatalf("HLEN records, bucket = %d, %d; want 10, 10", n, m)
	}
	// Three hours on, past the sessions' ExpiresAt (1h) and their pointers'
	// deadline (ExpiresAt plus one more idle period: 2h).
	st.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	s := mk()
	s.CreatedAt, s.LastSeenAt = st.Now(), st.Now()
	s.ExpiresAt, s.AbsoluteExpiresAt = st.Now().Add(time.Hour), st.Now().Add(12*time.Hour)
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if n, m := hlen(records), hlen(bucket); n != 1 || m != 1 {
		t.Errorf("HLEN records, bucket after a write past the others' deadlines = %d, %d; want 1, 1", n, m)
	}
	if got, err := st.Session(ctx, s.SecretHash); err != nil || got.ID != s.ID {
		t.Errorf("Session(the new one) = %q, %v", got.ID, err)
	}
}

// TestRevocationRetried checks that a revocation whose append to the log
// failed reaches the log by itself once the log accepts appends again,
// with nobody calling again (a client retrying its logout finds no
// session, and would end nothing).
func TestRevocationRetried(t *testing.T) {
	st, allowAppends := refusingLog(t)
	ctx := t.Context()
	a := newSession(sesame.NewID())
	if err := st.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSession(ctx, a.UserID, a.ID); err == nil {
		t.Fatal("DeleteSession with the log refusing appends = nil, want an error")
	}
	time.Sleep(200 * time.Millisecond) // a retry or two fail meanwhile
	allowAppends()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := st.RevocationsSince(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].SessionID == a.ID {
			break
		}
		if len(list) > 1 || time.Now().After(deadline) {
			t.Fatalf("revocations logged = %v, want %s alone within 10s of the log accepting appends", list, a.ID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFamilyBounded rotates one family far past sesame.RetiredRefreshTokensKept: the
// family keeps its current token and the newest retired ones (a reuse of
// which is still detected), and forgets the older ones with their
// pointers.
func TestFamilyBounded(t *testing.T) {
	st := open(t, testURL())
	ctx := t.Context()
	s := newSession(sesame.NewID())
	s.Kind = sesame.KindToken
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := func() sesame.RefreshToken {
		_, h := sesame.NewSecret()
		return sesame.RefreshToken{Hash: h, SessionID: s.ID, UserID: s.UserID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	chain := []sesame.RefreshToken{tok()}
	if err := st.CreateRefreshToken(ctx, chain[0]); err != nil {
		t.Fatal(err)
	}
	const rotations = sesame.RetiredRefreshTokensKept + 30
	for range rotations {
		next := tok()
		if err := st.RotateRefreshToken(ctx, chain[len(chain)-1].Hash, next); err != nil {
			t.Fatal(err)
		}
		chain = append(chain, next)
	}
	c := st.Client()
	n, err := c.Do(ctx, c.B().Hlen().Key(redisstore.FamilyKey(s.UserID, s.ID)).Build()).AsInt64()
	if err != nil || n != sesame.RetiredRefreshTokensKept+1 {
		t.Errorf("family HLEN = %d, %v; want %d", n, err, sesame.RetiredRefreshTokensKept+1)
	}
	forgotten := chain[rotations-sesame.RetiredRefreshTokensKept-1]
	if _, err := st.RefreshToken(ctx, forgotten.Hash); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("RefreshToken(a forgotten retired token) = %v, want ErrInvalidGrant", err)
	}
	if got := pttl(t, st, fmt.Sprintf("rt:%x", forgotten.Hash)); got != -2 {
		t.Errorf("the pointer of a forgotten token is still there (PTTL %v)", got)
	}
	oldestKept := chain[rotations-sesame.RetiredRefreshTokensKept]
	var reuse *sesame.ReuseError
	if err := st.RotateRefreshToken(ctx, oldestKept.Hash, tok()); !errors.As(err, &reuse) {
		t.Errorf("RotateRefreshToken(the oldest retired token kept) = %v, want a reuse", err)
	}
	if _, err := st.RefreshToken(ctx, chain[len(chain)-1].Hash); err != nil {
		t.Errorf("RefreshToken(the current token) = %v", err)
	}
}

// TestCacheSavesReads counts the HGETs a private Redis serves for repeated
// lookups of one session: with the client-side cache, the first lookup
// reads pointer and record and the others read nothing; with cache_mb=0,
// every lookup reads both.
func TestCacheSavesReads(t *testing.T) {
	needRedisServer(t)
	srv := startRedis(t, freePort(t), t.TempDir())
	hgets := func() int {
		t.Helper()
		out := cli(t, "-p", fmt.Sprint(srv.port), "INFO", "commandstats")
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_hget:calls="); ok {
				n, _, _ := strings.Cut(rest, ",")
				var calls int
				fmt.Sscan(n, &calls)
				return calls
			}
		}
		return 0
	}
	for _, c := range []struct {
		query string
		want  int // HGETs for 10 lookups
	}{{"", 2}, {"?cache_mb=0", 20}} {
		st, err := redisstore.Open(t.Context(), fmt.Sprintf("redis://%s/0%s", srv.addr(), c.query))
		if err != nil {
			t.Fatal(err)
		}
		s := newSession(sesame.NewID())
		if err := st.CreateSession(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		before := hgets()
		for range 10 {
			if _, err := st.Session(t.Context(), s.SecretHash); err != nil {
				t.Fatal(err)
			}
		}
		if got := hgets() - before; got != c.want {
			t.Errorf("URL %q: 10 lookups of one session made %d HGETs, want %d", c.query, got, c.want)
		}
		st.Close()
	}
}
