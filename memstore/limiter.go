package memstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// limiter is the Limiter part of Store: one fixed window per key. A window
// that has ended counts nothing; DeleteExpired removes it, so the map holds
// only keys tried within their last window.
type limiter struct {
	mu      sync.Mutex
	windows map[string]*limitWindow
}

type limitWindow struct {
	count int
	end   int64 // Unix nanoseconds
}

func (l *limiter) init() { l.windows = make(map[string]*limitWindow) }

// Hit adds an attempt to key and returns the attempts in the current window
// and the time until it ends. A window starts at the first attempt after the
// previous one ended and lasts window, which must be positive.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int, time.Duration, error) {
	if window <= 0 {
		return 0, 0, fmt.Errorf("memstore: hit: window %v is not positive", window)
	}
	now := s.now()
	l := &s.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	switch {
	case w == nil:
		w = new(limitWindow)
		l.windows[strings.Clone(key)] = w
		fallthrough
	case now >= w.end:
		w.count, w.end = 0, addNanos(now, window)
	}
	w.count++
	// A caller that read the clock later may have opened the window first.
	return w.count, min(max(time.Duration(w.end-now), 1), window), nil
}

// Forgive takes one attempt back from key's current window, if it has any.
func (s *Store) Forgive(ctx context.Context, key string) error {
	now := s.now()
	l := &s.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.windows[key]; w != nil && now < w.end && w.count > 0 {
		w.count--
	}
	return nil
}

// Reset forgets key's window.
func (s *Store) Reset(ctx context.Context, key string) error {
	l := &s.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.windows, key)
	return nil
}

func (l *limiter) deleteExpired(now int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, w := range l.windows {
		if now >= w.end {
			delete(l.windows, k)
			n++
		}
	}
	return n
}
