package redisstore

import (
	"context"
	"fmt"
	"time"
)

// Hit adds an attempt to key and returns the attempts in the current window
// and the time until it ends, in one script: INCR, and PEXPIRE NX to start
// the window with its first attempt. Windows are timed by Redis's clock, to
// the millisecond; window must be positive.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int, time.Duration, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ms := window.Milliseconds()
	if ms <= 0 {
		return 0, 0, fmt.Errorf("redisstore: hit: window %v is not a positive number of milliseconds", window)
	}
	res, err := hitScript.Exec(ctx, s.client, []string{limiterKey(key)}, []string{itoa(ms)}).AsIntSlice()
	if err != nil {
		return 0, 0, translate(ctx, "hit", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("redisstore: hit: unexpected answer %v", res)
	}
	left := time.Duration(max(res[1], 1)) * time.Millisecond
	return int(res[0]), min(left, window), nil
}

// Forgive takes one attempt back from key's current window, if it has any.
func (s *Store) Forgive(ctx context.Context, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := forgiveScript.Exec(ctx, s.client, []string{limiterKey(key)}, nil).Error(); err != nil {
		return translate(ctx, "forgive", err)
	}
	return nil
}

// Reset forgets key's window.
func (s *Store) Reset(ctx context.Context, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.client.Do(ctx, s.client.B().Del().Key(limiterKey(key)).Build()).Error(); err != nil {
		return translate(ctx, "reset", err)
	}
	return nil
}
