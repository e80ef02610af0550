package server

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesameauth/sesame/memstore"
)

// countingCounter is a session store that counts how often it is asked to
// count.
type countingCounter struct {
	*memstore.Store
	calls atomic.Int64
}

func (c *countingCounter) CountSessions(ctx context.Context) (int, error) {
	c.calls.Add(1)
	return c.Store.CountSessions(ctx)
}

// TestLiveSessionGaugeIsSampled: however often /metrics is scraped, the
// store counts its sessions at most once every liveSampleEvery (issue 7
// item 9); a later scrape sees a new count.
func TestLiveSessionGaugeIsSampled(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := &countingCounter{Store: memstore.New()}
	reg := prometheus.NewRegistry()
	newMetrics(reg, st, nil, clock)
	live := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "sesame_sessions_live" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no sesame_sessions_live")
		return 0
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { live() })
	}
	wg.Wait()
	if n := st.calls.Load(); n != 1 {
		t.Errorf("50 scrapes within %v counted the sessions %d times, want 1", liveSampleEvery, n)
	}
	mu.Lock()
	now = now.Add(liveSampleEvery)
	mu.Unlock()
	live()
	live()
	if n := st.calls.Load(); n != 2 {
		t.Errorf("scrapes after %v: %d counts in all, want 2", liveSampleEvery, n)
	}
}
