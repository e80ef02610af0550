package memstore_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
)

// BenchmarkRefreshGrowth rotates one refresh family 31,000 times and
// reports the heap the store holds afterwards (live heap after a GC,
// minus the same before the store was made).
func BenchmarkRefreshGrowth(b *testing.B) {
	const refreshes = 31_000
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	for b.Loop() {
		before := heap()
		st := memstore.New()
		ctx := context.Background()
		now := time.Now()
		s := sesame.Session{ID: sesame.NewID(), UserID: sesame.NewID(), CreatedAt: now, LastSeenAt: now,
			ExpiresAt: now.Add(720 * time.Hour), AbsoluteExpiresAt: now.Add(720 * time.Hour), Kind: sesame.KindToken}
		_, s.SecretHash = sesame.NewSecret()
		if err := st.CreateSession(ctx, s); err != nil {
			b.Fatal(err)
		}
		_, h := sesame.NewSecret()
		cur := sesame.RefreshToken{Hash: h, SessionID: s.ID, UserID: s.UserID, CreatedAt: now, ExpiresAt: s.ExpiresAt}
		if err := st.CreateRefreshToken(ctx, cur); err != nil {
			b.Fatal(err)
		}
		for range refreshes {
			_, h := sesame.NewSecret()
			next := cur
			next.Hash, next.CreatedAt = h, time.Now()
			if err := st.RotateRefreshToken(ctx, cur.Hash, next); err != nil {
				b.Fatal(err)
			}
			cur = next
		}
		b.ReportMetric(heap()-before, "heap-bytes")
		runtime.KeepAlive(st)
	}
}
