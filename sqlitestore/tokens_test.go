package sqlitestore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/sqlitestore"
)

func newTokenSession(userID string, now time.Time) (sesame.Session, sesame.RefreshToken) {
	s := newSession(userID, now)
	s.Kind = sesame.KindToken
	_, hash := sesame.NewSecret()
	return s, sesame.RefreshToken{Hash: hash, SessionID: s.ID, UserID: userID, CreatedAt: now, ExpiresAt: s.ExpiresAt}
}

// TestTwoStoresTokens opens the same file twice, as two processes do: a
// session ended through one is in the other's revocation log at once, and
// of rotations of one token racing through both, exactly one wins.
func TestTwoStoresTokens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	a, b := open(t, path), open(t, path)

	s, tok := newTokenSession("u1", time.Now())
	if err := a.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateRefreshToken(ctx, tok); err != nil {
		t.Fatalf("CreateRefreshToken through the other store: %v", err)
	}

	const racers = 10 // per store
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, reuses := 0, 0
	start := make(chan struct{})
	for i := range 2 * racers {
		st := []*sqlitestore.Store{a, b}[i%2]
		wg.Go(func() {
			_, hash := sesame.NewSecret()
			<-start
			err := st.RotateRefreshToken(ctx, tok.Hash, sesame.RefreshToken{Hash: hash, SessionID: s.ID, CreatedAt: time.Now(), ExpiresAt: tok.ExpiresAt})
			var reuse *sesame.ReuseError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.As(err, &reuse):
				reuses++
			default:
				t.Errorf("RotateRefreshToken: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || reuses != 2*racers-1 {
		t.Errorf("rotations through two stores: %d won, %d saw a reuse; want 1, %d", wins, reuses, 2*racers-1)
	}

	if err := a.DeleteSession(ctx, s.UserID, s.ID); err != nil {
		t.Fatal(err)
	}
	list, err := b.RevocationsSince(ctx, 0, 10)
	if err != nil || len(list) != 1 || list[0].SessionID != s.ID {
		t.Errorf("RevocationsSince through the other store = %+v, %v; want the ended session", list, err)
	}
	if _, err := b.RefreshToken(ctx, tok.Hash); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("RefreshToken through the other store after the end = %v, want ErrInvalidGrant", err)
	}
}

// TestSweepTokens checks DeleteExpired on tokens: with their expired
// sessions (counted), past their own deadline, and of a session replaced
// through another's secret hash; and the retention of revocations.
func TestSweepTokens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	st := open(t, path)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	st.Now = func() time.Time { return now }

	// A session that expires with two tokens.
	short, tok := newTokenSession("u1", t0)
	short.ExpiresAt = t0.Add(time.Minute)
	if err := st.CreateSession(ctx, short); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	next := tok
	_, next.Hash = sesame.NewSecret()
	if err := st.RotateRefreshToken(ctx, tok.Hash, next); err != nil {
		t.Fatal(err)
	}
	// A live session whose token ends first.
	long, early := newTokenSession("u1", t0)
	early.ExpiresAt = t0.Add(time.Minute)
	if err := st.CreateSession(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshToken(ctx, early); err != nil {
		t.Fatal(err)
	}
	// A session replaced through its secret hash leaves its token behind,
	// unseen, until the token's deadline.
	replaced, orphan := newTokenSession("u2", t0)
	orphan.ExpiresAt = t0.Add(2 * time.Minute)
	if err := st.CreateSession(ctx, replaced); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshToken(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	usurper := newSession("u2", t0)
	usurper.SecretHash = replaced.SecretHash
	if err := st.CreateSession(ctx, usurper); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RefreshToken(ctx, orphan.Hash); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("RefreshToken of a replaced session = %v, want ErrInvalidGrant", err)
	}
	// A revocation, to be kept for RevocationRetention.
	ended := newSession("u3", t0)
	if err := st.CreateSession(ctx, ended); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSession(ctx, ended.UserID, ended.ID); err != nil {
		t.Fatal(err)
	}

	now = t0.Add(time.Minute)
	if n, err := st.DeleteExpired(ctx); err != nil || n != 4 {
		t.Errorf("DeleteExpired = %d, %v; want 4: a session, its two tokens, the early token", n, err)
	}
	now = t0.Add(2 * time.Minute)
	if n, err := st.DeleteExpired(ctx); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1: the replaced session's token", n, err)
	}
	var left int
	if err := raw(t, path).QueryRow(`SELECT count(*) FROM refresh_tokens`).Scan(&left); err != nil || left != 0 {
		t.Errorf("refresh_tokens holds %d rows, %v; want none", left, err)
	}

	if list, _ := st.RevocationsSince(ctx, 0, 10); len(list) != 1 || !list[0].At.Equal(t0) {
		t.Errorf("revocations within the retention = %+v, want the one at %v", list, t0)
	}
	now = t0.Add(sesame.DefaultRevocationRetention + time.Millisecond)
	st.DeleteExpired(ctx)
	if list, _ := st.RevocationsSince(ctx, 0, 10); len(list) != 0 {
		t.Errorf("revocations past the retention = %+v, want none", list)
	}
	if list, err := st.RevocationsSince(ctx, 0, 0); err != nil || len(list) != 0 {
		t.Errorf("RevocationsSince with limit 0 = %+v, %v; want none", list, err)
	}
}

// TestMigrateKind opens a database made by the first schema: its sessions
// come back as cookie sessions.
func TestMigrateKind(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	schema, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := raw(t, path)
	s := newSession("u1", time.Now())
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`,
		string(schema),
		`INSERT INTO schema_migrations VALUES (1, 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.SecretHash[:], s.UserID, s.CreatedAt.UnixMilli(), s.LastSeenAt.UnixMilli(),
		s.ExpiresAt.UnixMilli(), s.AbsoluteExpiresAt.UnixMilli(), s.IP, s.UserAgent); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st := open(t, path)
	got, err := st.Session(ctx, s.SecretHash)
	if err != nil || got.Kind != sesame.KindCookie {
		t.Errorf("a session of the first schema: Kind %q, %v; want %q", got.Kind, err, sesame.KindCookie)
	}
	if err := st.CreateSession(ctx, sesame.Session{ID: "x", Kind: "bearer", ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
		t.Error("CreateSession with an unknown kind succeeded")
	}
}
