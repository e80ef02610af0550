package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/redisstore"
)

func newSession(userID string) sesame.Session {
	_, hash := sesame.NewSecret()
	now := time.Now()
	return sesame.Session{
		ID: sesame.NewID(), SecretHash: hash, UserID: userID,
		CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(12 * time.Hour),
		IP: "203.0.113.7", UserAgent: "test",
	}
}

// operations are one call of each kind a request makes, for the outage
// tests.
func operations(st *redisstore.Store, s sesame.Session) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"Session": func(ctx context.Context) error { _, err := st.Session(ctx, s.SecretHash); return err },
		"CreateSession": func(ctx context.Context) error {
			return st.CreateSession(ctx, newSession(s.UserID))
		},
		"TouchSession": func(ctx context.Context) error {
			return st.TouchSession(ctx, s.UserID, s.ID, time.Now(), time.Now().Add(time.Hour))
		},
		"DeleteSession":    func(ctx context.Context) error { return st.DeleteSession(ctx, s.UserID, sesame.NewID()) },
		"UserSessions":     func(ctx context.Context) error { _, err := st.UserSessions(ctx, s.UserID); return err },
		"RevocationsSince": func(ctx context.Context) error { _, err := st.RevocationsSince(ctx, 0, 10); return err },
		"Hit":              func(ctx context.Context) error { _, _, err := st.Hit(ctx, "ip:x", time.Minute); return err },
		"CountSessions":    func(ctx context.Context) error { _, err := st.CountSessions(ctx); return err },
		"Ping":             func(ctx context.Context) error { return st.Ping(ctx) },
	}
}

// checkUnavailable checks that every operation fails quickly with an error
// matching sesame.ErrUnavailable.
func checkUnavailable(t *testing.T, st *redisstore.Store, s sesame.Session, within time.Duration) {
	t.Helper()
	for name, op := range operations(st, s) {
		start := time.Now()
		err := op(t.Context())
		if name == "Session" {
			// A session read before the outage is in the client-side cache
			// until the client notices the dead connection (it drops the
			// cache then: microseconds when Redis dies, the operation
			// timeout when the network does), and never longer than
			// recordCacheTTL (1 s) after it was read.
			for tries := 1; err == nil && time.Since(start) < time.Second+within; tries++ {
				if tries == 1 {
					defer func() { t.Logf("Session with Redis down: answered from the cache for %v", time.Since(start)) }()
				}
				time.Sleep(time.Millisecond)
				start2 := time.Now()
				err = op(t.Context())
				if took := time.Since(start2); took > within {
					t.Errorf("Session with Redis down took %v, want at most %v", took.Round(time.Millisecond), within)
				}
			}
			if !errors.Is(err, sesame.ErrUnavailable) {
				t.Errorf("Session with Redis down: error %v, want one matching ErrUnavailable within a second", err)
			}
			continue
		}
		took := time.Since(start)
		if !errors.Is(err, sesame.ErrUnavailable) {
			t.Errorf("%s with Redis down: error %v, want one matching ErrUnavailable", name, err)
		}
		if took > within {
			t.Errorf("%s with Redis down took %v, want at most %v", name, took.Round(time.Millisecond), within)
		}
	}
}

// TestOutage stops a Redis that a store uses, checks that operations fail
// at once with ErrUnavailable, restarts it on the same port and checks that
// the same store works again within seconds.
func TestOutage(t *testing.T) {
	needRedisServer(t)
	srv := startRedis(t, freePort(t), t.TempDir())
	st, err := redisstore.Open(t.Context(), fmt.Sprintf("redis://%s/0", srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newSession("outage-user")
	if err := st.CreateSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Session(t.Context(), s.SecretHash); err != nil {
		t.Fatal(err)
	}

	srv.stop()
	checkUnavailable(t, st, s, 2*time.Second)

	srv.start(t) // an empty server: nothing was persisted
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := st.CreateSession(t.Context(), s)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CreateSession 5s after Redis restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, op := range operations(st, s) {
		if err := op(t.Context()); err != nil {
			t.Errorf("%s after Redis restarted: %v", name, err)
		}
	}
}

// TestUnresponsive freezes the Redis a store uses (SIGSTOP): operations
// fail with ErrUnavailable after the connection string's timeout instead of
// hanging, and work again once it thaws.
func TestUnresponsive(t *testing.T) {
	needRedisServer(t)
	srv := startRedis(t, freePort(t), t.TempDir())
	st, err := redisstore.Open(t.Context(), fmt.Sprintf("redis://%s/0?timeout=1s", srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newSession("frozen-user")
	if err := st.CreateSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			srv.cmd.Process.Signal(syscall.SIGCONT)
			thawed = true
		}
	}
	defer thaw()
	start := time.Now()
	_, err = st.Session(t.Context(), s.SecretHash)
	if took := time.Since(start); !errors.Is(err, sesame.ErrUnavailable) || took > 2*time.Second {
		t.Errorf("Session with Redis frozen: %v after %v, want ErrUnavailable within 2s (timeout=1s)", err, took.Round(time.Millisecond))
	} else {
		t.Logf("Session with Redis frozen failed after %v", took.Round(time.Millisecond))
	}
	thaw()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := st.Session(t.Context(), s.SecretHash)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Session 5s after Redis thawed: %v", err)
		}
		t.Logf("Session after Redis thawed: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOpenUnreachable checks that Open gives up within seconds.
func TestOpenUnreachable(t *testing.T) {
	port := freePort(t) // nothing listens there
	start := time.Now()
	_, err := redisstore.Open(t.Context(), fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if !errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("Open(unreachable) = %v, want an error matching ErrUnavailable", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Open(unreachable) took %v", took)
	}
	_, err = redisstore.Open(t.Context(), fmt.Sprintf("redis://127.0.0.1:%d,127.0.0.1:%d/?cluster=true", port, port+1))
	if !errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("Open(unreachable cluster) = %v, want an error matching ErrUnavailable", err)
	}
}
