// Package memstore keeps users, sessions, the audit log and login throttling
// counters in memory, for tests, development and single-node servers that may
// forget everything when they stop.
//
// One [Store] implements every store interface of package sesame (users,
// sessions, refresh-token families, the revocation log, signing keys, the
// audit log and the limiter), and the optional [sesame.SessionCounter],
// [sesame.Sweeper] and [sesame.Pinger]:
//
//	st := memstore.New()
//	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, ...})
//
// Expired sessions, their refresh tokens and ended limiter windows are
// invisible at once but stay in memory until [Store.DeleteExpired] removes
// them; call it periodically. It also drops revocations older than
// [Store.RevocationRetention].
//
// A session costs about 240 bytes of heap with typical fields (a 40-byte user
// agent) at a million sessions; see BenchmarkSessionLookup. A refresh token
// costs some 200 bytes more, and only token sessions have them. Every method
// is safe for concurrent use. No method blocks on anything but the store's
// own locks, so the contexts are not consulted.
package memstore

import (
	"context"
	"math"
	"time"

	"github.com/sesameauth/sesame"
)

var (
	_ sesame.UserStore      = (*Store)(nil)
	_ sesame.SessionStore   = (*Store)(nil)
	_ sesame.AuditLog       = (*Store)(nil)
	_ sesame.Limiter        = (*Store)(nil)
	_ sesame.SessionCounter = (*Store)(nil)
	_ sesame.Sweeper        = (*Store)(nil)
	_ sesame.Pinger         = (*Store)(nil)
	_ sesame.RefreshStore   = (*Store)(nil)
	_ sesame.SessionBackend = (*Store)(nil)
	_ sesame.RevocationLog  = (*Store)(nil)
	_ sesame.KeyStore       = (*Store)(nil)
)

// Store is an in-memory store of users, sessions, refresh tokens,
// revocations, signing keys, audit events and limiter windows. Create it
// with New; the zero value is not usable.
type Store struct {
	// Now is the clock that decides whether a session has expired and when
	// a limiter window ends. New sets it to time.Now; set it before the
	// store is used (tests set a fake clock).
	Now func() time.Time

	// RevocationRetention is how long DeleteExpired keeps a revocation in
	// the log: at least as long as an access token lives. New sets it to
	// sesame.DefaultRevocationRetention, which it also means when not positive.
	RevocationRetention time.Duration

	users       users
	sessions    sessions
	revocations revocations
	keys        keys
	audit       audit
	limiter     limiter
}

// New returns an empty store on the wall clock.
func New() *Store {
	s := &Store{Now: time.Now, RevocationRetention: sesame.DefaultRevocationRetention}
	s.users.init()
	s.sessions.init()
	s.limiter.init()
	return s
}

func (s *Store) now() int64 {
	if s.Now == nil {
		return toNanos(time.Now())
	}
	return toNanos(s.Now())
}

// Ping reports that the store answers; it always does.
func (s *Store) Ping(ctx context.Context) error { return nil }

// DeleteExpired removes the expired sessions with their refresh tokens, and
// the ended limiter windows, and returns how many of these records it
// removed. It takes the session lock in short turns (one index shard at a
// time), so lookups go on while it runs. It also drops the revocations
// logged more than RevocationRetention ago, without counting them; the
// expired sessions it removes are not logged as revoked (they had ended).
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	now := s.now()
	retain := s.RevocationRetention
	if retain <= 0 {
		retain = sesame.DefaultRevocationRetention
	}
	if now > math.MinInt64+int64(retain) {
		s.revocations.prune(now - int64(retain))
	}
	return s.sessions.deleteExpired(now) + s.limiter.deleteExpired(now), nil
}

// Times are kept as Unix nanoseconds to keep sessions small. A zero
// time.Time is kept as zeroNanos; times outside the years 1678 to 2262,
// which UnixNano cannot represent, are clamped to the nearest end of that
// range, so a deadline far in the future stays far in the future.
const zeroNanos = math.MinInt64

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

func toNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return zeroNanos
	case t.Before(minTime):
		return math.MinInt64 + 1
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == zeroNanos {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// addNanos returns t+d without overflowing.
func addNanos(t int64, d time.Duration) int64 {
	if d > 0 && t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}
