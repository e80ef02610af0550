package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunLimiter tests a sesame.Limiter, and its sesame.Sweeper if it
// implements one. newStore must return a fresh, empty store on every call.
// It sleeps once, for about two seconds, to see a window end.
func RunLimiter(t *testing.T, newStore func(t *testing.T) sesame.Limiter) {
	const window = time.Minute
	// hit checks that Hit(key, w) counts want, and that the window ends
	// within w.
	hit := func(t *testing.T, l sesame.Limiter, key string, w time.Duration, want int) {
		t.Helper()
		n, reset, err := l.Hit(ctx(t), key, w)
		if err != nil {
			t.Fatalf("Hit(%q, %v): %v", key, w, err)
		}
		if n != want {
			t.Errorf("Hit(%q, %v) count = %d, want %d", key, w, n, want)
		}
		if reset <= 0 || reset > w {
			t.Errorf("Hit(%q, %v) reset = %v, want in (0, %v]", key, w, reset, w)
		}
	}
	forgive := func(t *testing.T, l sesame.Limiter, key string) {
		t.Helper()
		if err := l.Forgive(ctx(t), key); err != nil {
			t.Fatalf("Forgive(%q): %v", key, err)
		}
	}
	reset := func(t *testing.T, l sesame.Limiter, key string) {
		t.Helper()
		if err := l.Reset(ctx(t), key); err != nil {
			t.Fatalf("Reset(%q): %v", key, err)
		}
	}

	t.Run("Counts", func(t *testing.T) {
		l := newStore(t)
		for want := 1; want <= 3; want++ {
			hit(t, l, "ip:203.0.113.7", window, want)
		}
	})
	t.Run("KeysIndependent", func(t *testing.T) {
		l := newStore(t)
		hit(t, l, "email:ada@example.test", window, 1)
		hit(t, l, "email:ada@example.test", window, 2)
		hit(t, l, "email:grace@example.test", window, 1)
		hit(t, l, "ip:203.0.113.7", window, 1)
		hit(t, l, "email:ada@example.test", window, 3)
	})
	t.Run("Forgive", func(t *testing.T) {
		l := newStore(t)
		hit(t, l, "a", window, 1)
		hit(t, l, "a", window, 2)
		forgive(t, l, "a")
		hit(t, l, "a", window, 2)

		// Never below zero.
		hit(t, l, "b", window, 1)
		for range 3 {
			forgive(t, l, "b")
		}
		hit(t, l, "b", window, 1)
		hit(t, l, "b", window, 2)

		// A key never hit.
		forgive(t, l, "c")
		hit(t, l, "c", window, 1)
	})
	t.Run("Reset", func(t *testing.T) {
		l := newStore(t)
		for want := 1; want <= 3; want++ {
			hit(t, l, "a", window, want)
		}
		hit(t, l, "b", window, 1)
		reset(t, l, "a")
		hit(t, l, "a", window, 1)
		hit(t, l, "b", window, 2)
		reset(t, l, "never hit")
	})
	t.Run("WindowEnds", func(t *testing.T) {
		// A store may count in whole seconds, so the short window is 1s
		// and the sleep more than two. (Only one hit goes into the short
		// window: on a loaded machine a second one may come too late.)
		const short = time.Second
		l := newStore(t)
		hit(t, l, "short", short, 1)
		hit(t, l, "long", window, 1)
		time.Sleep(2*short + 100*time.Millisecond)
		if sw, ok := l.(sesame.Sweeper); ok {
			// The ended window may be one record or several; the live
			// one must stay.
			if n, err := sw.DeleteExpired(ctx(t)); err != nil || n < 1 {
				t.Errorf("DeleteExpired = %d, %v; want at least 1, nil", n, err)
			}
		}
		hit(t, l, "short", short, 1)
		hit(t, l, "long", window, 2)
	})
	t.Run("Concurrent", func(t *testing.T) {
		const n = 100
		l := newStore(t)
		counts := make([]int, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				c, reset, err := l.Hit(ctx(t), "ip:203.0.113.7", window)
				if err != nil {
					t.Errorf("Hit: %v", err)
				}
				if reset <= 0 || reset > window {
					t.Errorf("Hit reset = %v, want in (0, %v]", reset, window)
				}
				counts[i] = c
			})
		}
		close(start)
		wg.Wait()
		slices.Sort(counts)
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("%d parallel Hits counted %v, want each of 1 to %d once", n, counts, n)
			}
		}
	})
}
