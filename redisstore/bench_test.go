package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/redisstore"
)

// benchStore opens a store on a Redis of the benchmark's own when
// redis-server is installed (so that INFO memory counts nothing else), and
// otherwise on the test Redis.
func benchStore(b *testing.B) (*redisstore.Store, string) {
	url := testURL()
	if _, err := exec.LookPath("redis-server"); err == nil && os.Getenv("SESAME_TEST_REDIS") == "" {
		srv := startRedis(b, freePort(b), b.TempDir())
		url = fmt.Sprintf("redis://%s/0", srv.addr())
	}
	return open(b, url), url
}

// benchFill grows the store to n sessions of users users (created in
// parallel through CreateSession) and returns the secret hashes of all of
// them. The sessions look like memstore's benchmark's: a 40-byte user
// agent, an IPv4 address, a 30-minute idle and 12-hour absolute deadline.
type benchFill struct {
	st     *redisstore.Store
	users  []string
	hashes [][32]byte
	base   int64 // used_memory before the first session
}

func newBenchFill(b *testing.B, st *redisstore.Store, users int) *benchFill {
	f := &benchFill{st: st, base: usedMemory(b, st)}
	for range users {
		f.users = append(f.users, sesame.NewID())
	}
	return f
}

func (f *benchFill) grow(b *testing.B, n int) {
	if len(f.hashes) >= n {
		return
	}
	uas := []string{
		"Mozilla/5.0 (X11; Linux x86_64) Firefox/1",
		"Mozilla/5.0 (Macintosh) Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0) Chrome/131",
	}
	from := len(f.hashes)
	for range n - from {
		_, h := sesame.NewSecret()
		f.hashes = append(f.hashes, h)
	}
	start := time.Now()
	const workers = 64
	var wg sync.WaitGroup
	ctx := context.Background()
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			now := time.Now()
			for i := from + w; i < n; i += workers {
				err := f.st.CreateSession(ctx, sesame.Session{
					ID: sesame.NewID(), SecretHash: f.hashes[i], UserID: f.users[i%len(f.users)],
					CreatedAt: now, LastSeenAt: now,
					ExpiresAt: now.Add(30 * time.Minute), AbsoluteExpiresAt: now.Add(12 * time.Hour),
					IP: "203.0.113.7", UserAgent: uas[i%len(uas)],
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d sessions in %v (%.0f/s)", n-from, time.Since(start).Round(time.Millisecond),
		float64(n-from)/time.Since(start).Seconds())
}

// perSession returns Redis's used_memory since the first session, divided
// by the sessions.
func (f *benchFill) perSession(b *testing.B) float64 {
	return float64(usedMemory(b, f.st)-f.base) / float64(len(f.hashes))
}

// benchSizes are the store sizes of the lookup benchmark; a million takes a
// few minutes to fill and about a gigabyte of Redis memory, so it runs only
// with SESAME_BENCH_1M set.
func benchSizes() []int {
	if os.Getenv("SESAME_BENCH_1M") != "" {
		return []int{10_000, 100_000, 1_000_000}
	}
	return []int{10_000, 100_000}
}

// BenchmarkSessionLookup measures Session(hash), the lookup every
// authenticated request makes, for random existing sessions in stores of
// growing size, and reports Redis's memory per session (INFO memory's
// used_memory) as redis-B/session. cache=off reads Redis every time (two
// round trips: pointer, record); cache=on goes through the client-side
// cache, where a random pick among many sessions is nearly always a first
// read (a miss, which also asks Redis to track the keys).
func BenchmarkSessionLookup(b *testing.B) {
	st, url := benchStore(b)
	uncached, err := redisstore.Open(b.Context(), url+"?cache_mb=0") // no flush: it shares st's data
	if err != nil {
		b.Fatal(err)
	}
	defer uncached.Close()
	f := newBenchFill(b, st, 1000)
	for _, n := range benchSizes() {
		f.grow(b, n)
		per := f.perSession(b)
		b.Logf("%d sessions of %d users: used_memory %.0f bytes/session", n, len(f.users), per)
		for _, c := range []struct {
			name string
			st   *redisstore.Store
		}{{"off", uncached}, {"on", st}} {
			b.Run(fmt.Sprintf("sessions=%d/cache=%s", n, c.name), func(b *testing.B) {
				ctx := b.Context()
				rng := rand.New(rand.NewPCG(1, 2))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.st.Session(ctx, f.hashes[rng.IntN(n)]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(per, "redis-B/session")
			})
		}
	}
}

// BenchmarkSessionLookupParallel measures Session(hash) from many
// goroutines at once (rueidis pipelines them on shared connections), with
// 100,000 sessions.
func BenchmarkSessionLookupParallel(b *testing.B) {
	const n = 100_000
	st, _ := benchStore(b) // here, not in the closure that runs once per b.N tried
	f := newBenchFill(b, st, 1000)
	f.grow(b, n)
	b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
		b.SetParallelism(16)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for pb.Next() {
				if _, err := st.Session(b.Context(), f.hashes[rng.IntN(n)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkSessionMemory reports Redis's memory per session at 100,000
// sessions for two shapes of user base: 1000 users with 100 sessions each
// (as BenchmarkSessionLookup), and one session per user.
func BenchmarkSessionMemory(b *testing.B) {
	const n = 100_000
	for _, users := range []int{1000, n} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			st, _ := benchStore(b)
			f := newBenchFill(b, st, users)
			f.grow(b, n)
			per := f.perSession(b)
			b.Logf("%d sessions of %d users: used_memory %.0f bytes/session", n, users, per)
			for b.Loop() {
			}
			b.ReportMetric(per, "redis-B/session")
		})
	}
}

// BenchmarkSessionCached measures Session(hash) for a session in use: after
// the first lookup, both reads come from the client-side cache.
func BenchmarkSessionCached(b *testing.B) {
	st := open(b, testURL())
	s := newSession(sesame.NewID())
	if err := st.CreateSession(b.Context(), s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.Session(b.Context(), s.SecretHash); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
