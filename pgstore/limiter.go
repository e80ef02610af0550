package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/sesameauth/sesame"
)

var _ sesame.Limiter = (*Store)(nil)

// Hit adds one attempt to key in one statement: a row whose window has
// ended starts a new one, else its count grows. Concurrent hits on one key
// serialise on the row, so every caller sees a distinct count.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int, time.Duration, error) {
	if window <= 0 {
		return 0, 0, errors.New("pgstore: hit: window must be positive")
	}
	now := s.now()
	var (
		n     int
		reset time.Time
	)
	err := s.pool.QueryRow(ctx, `
		INSERT INTO login_attempts (key, count, reset_at) VALUES ($1, 1, $3)
		ON CONFLICT (key) DO UPDATE SET
			count    = CASE WHEN login_attempts.reset_at <= $2 THEN 1 ELSE login_attempts.count + 1 END,
			reset_at = CASE WHEN login_attempts.reset_at <= $2 THEN $3 ELSE login_attempts.reset_at END
		RETURNING count, reset_at`, clean(key), now, now.Add(window)).Scan(&n, &reset)
	if err != nil {
		return 0, 0, translate("hit", err)
	}
	// A concurrent caller that read the clock later may have opened the
	// window, and PostgreSQL rounds to microseconds: clamp into (0, window].
	return n, min(max(reset.Sub(now), time.Millisecond), window), nil
}

// Forgive takes one attempt back from key's current window, never below
// zero.
func (s *Store) Forgive(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `UPDATE login_attempts SET count = count - 1
		WHERE key = $1 AND count > 0 AND reset_at > $2`, clean(key), s.now())
	if err != nil {
		return translate("forgive", err)
	}
	return nil
}

// Reset forgets every attempt of key.
func (s *Store) Reset(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_attempts WHERE key = $1`, clean(key)); err != nil {
		return translate("reset", err)
	}
	return nil
}

// deleteEndedWindows removes counters whose window has ended.
func (s *Store) deleteEndedWindows(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM login_attempts WHERE reset_at <= $1`, now)
	if err != nil {
		return 0, translate("delete expired", err)
	}
	return int(tag.RowsAffected()), nil
}
