package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RotateFamily starts a refresh family on a new token session of ss and
// rotates it n times through rs, calling after (if not nil) after each
// rotation with the session: what n refreshes of one client over HTTP do
// to a store. Benchmarks of a store's growth use it.
func RotateFamily(tb testing.TB, ss sesame.SessionStore, rs sesame.RefreshStore, n int, after func(s sesame.Session)) {
	tb.Helper()
	ctx := context.Background()
	now := time.Now()
	s := sesame.Session{ID: sesame.NewID(), UserID: sesame.NewID(), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(720 * time.Hour), AbsoluteExpiresAt: now.Add(720 * time.Hour), Kind: sesame.KindToken,
		IP: "203.0.113.9", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}
	_, s.SecretHash = sesame.NewSecret()
	if err := ss.CreateSession(ctx, s); err != nil {
		tb.Fatal(err)
	}
	_, h := sesame.NewSecret()
	cur := sesame.RefreshToken{Hash: h, SessionID: s.ID, UserID: s.UserID, CreatedAt: now, ExpiresAt: s.ExpiresAt}
	if err := rs.CreateRefreshToken(ctx, cur); err != nil {
		tb.Fatal(err)
	}
	for range n {
		next := cur
		_, next.Hash = sesame.NewSecret()
		next.CreatedAt = time.Now()
		if err := rs.RotateRefreshToken(ctx, cur.Hash, next); err != nil {
			tb.Fatal(err)
		}
		cur = next
		if after != nil {
			after(s)
		}
	}
}
