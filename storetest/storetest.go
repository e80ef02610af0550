// Package storetest is the contract every Sesame store passes: an exported
// test suite that each backend runs from its own tests, against a fresh,
// empty store per test.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Stores {
//			st := memstore.New()
//			return storetest.Stores{Users: st, Sessions: st, Refresh: st,
//				Revocations: st, Keys: st, Audit: st, Limiter: st}
//		})
//	}
//
// A backend that keeps only some of the records leaves the other fields nil,
// or runs one part alone with RunUsers, RunSessions, RunRefresh,
// RunRevocations, RunKeys, RunAudit or RunLimiter. The optional interfaces
// (sesame.Pinger, sesame.SessionCounter, sesame.Sweeper) are tested when a
// store implements them.
//
// What the suite assumes beyond the comments in package sesame:
//
//   - Times come back within a millisecond of what was stored: a store may
//     keep milliseconds only, and may truncate or round. Only the instant
//     counts, not the location or a monotonic clock reading.
//   - Each store runs on a clock within a minute of the test's: sessions
//     meant to be expired end a minute or more in the past, and live ones an
//     hour or more in the future.
//   - CreateSession and TouchSession accept deadlines in the past (the
//     session is then as good as absent), and IP and UserAgent are any valid
//     UTF-8 of up to 512 bytes.
//   - A store that implements sesame.Sweeper keeps expired records until
//     DeleteExpired, and its count includes each of them (the suite does
//     not count the refresh tokens that go with a session).
//   - A session's Kind is stored; an empty Kind is read back as
//     sesame.KindCookie.
//   - CreateRefreshToken returns sesame.ErrSessionNotFound, storing
//     nothing, when the token's session is gone or expired; a session
//     created again under the same ID does not bring back the family that
//     ended with the old one.
//   - A revocation just logged survives DeleteExpired.
//   - A limiter may count time in whole seconds.
//
// The suite sleeps once, about two seconds, to see a limiter window end.
// It starts many goroutines at once; run it with -race.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// Stores is what a backend provides to Run; nil fields are skipped. The
// fields may all be the same value.
type Stores struct {
	Users    sesame.UserStore
	Sessions sesame.SessionStore
	// Refresh and Revocations are tested with Sessions, which must be the
	// same backend: its sessions own the families, and its deletions fill
	// the log.
	Refresh     sesame.RefreshStore
	Revocations sesame.RevocationLog
	Keys        sesame.KeyStore
	Audit       sesame.AuditLog
	Limiter     sesame.Limiter
	// Clock, when set, is the clock the backend's Sessions run on (their
	// Now field); the suite then also checks that the store's clock, not
	// the database's, decides when a session ends (subtest Clock).
	Clock *Clock
}

// Run runs the suite of every store newStores provides, each as a subtest
// (Users, Sessions, Clock, Refresh, Revocations, Keys, Audit, Limiter, Ping).
// newStores must return fresh, empty stores on every call and release them
// with t.Cleanup; it is called once per test, and once more by Run itself to
// see which stores the backend has.
func Run(t *testing.T, newStores func(t *testing.T) Stores) {
	probe := newStores(t)
	sub := func(name string, present bool, run func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			if !present {
				t.Skipf("the backend has no %s store", name)
			}
			run(t)
		})
	}
	sub("Users", probe.Users != nil, func(t *testing.T) {
		RunUsers(t, func(t *testing.T) sesame.UserStore { return newStores(t).Users })
	})
	sub("Sessions", probe.Sessions != nil, func(t *testing.T) {
		RunSessions(t, func(t *testing.T) sesame.SessionStore { return newStores(t).Sessions })
	})
	sub("Clock", probe.Clock != nil && probe.Sessions != nil, func(t *testing.T) {
		st := newStores(t)
		testClock(t, st.Sessions, st.Clock)
	})
	sub("Refresh", probe.Refresh != nil && probe.Sessions != nil, func(t *testing.T) {
		RunRefresh(t, func(t *testing.T) (sesame.SessionStore, sesame.RefreshStore) {
			st := newStores(t)
			return st.Sessions, st.Refresh
		})
	})
	sub("Revocations", probe.Revocations != nil && probe.Sessions != nil, func(t *testing.T) {
		RunRevocations(t, func(t *testing.T) (sesame.SessionStore, sesame.RevocationLog) {
			st := newStores(t)
			return st.Sessions, st.Revocations
		})
	})
	sub("Keys", probe.Keys != nil, func(t *testing.T) {
		RunKeys(t, func(t *testing.T) sesame.KeyStore { return newStores(t).Keys })
	})
	sub("Audit", probe.Audit != nil, func(t *testing.T) {
		RunAudit(t, func(t *testing.T) sesame.AuditLog { return newStores(t).Audit })
	})
	sub("Limiter", probe.Limiter != nil, func(t *testing.T) {
		RunLimiter(t, func(t *testing.T) sesame.Limiter { return newStores(t).Limiter })
	})
	t.Run("Ping", func(t *testing.T) {
		st := newStores(t)
		pinged := false
		for _, s := range []any{st.Users, st.Sessions, st.Refresh, st.Revocations, st.Keys, st.Audit, st.Limiter} {
			if p, ok := s.(sesame.Pinger); ok {
				pinged = true
				if err := p.Ping(t.Context()); err != nil {
					t.Errorf("Ping(%T) = %v, want nil", p, err)
				}
			}
		}
		if !pinged {
			t.Skip("no store implements sesame.Pinger")
		}
	})
}

// sameTime reports whether a and b are within a millisecond of each other:
// the precision the suite asks of a store. (Comparing after truncating both
// to the millisecond would fail now and then for a store that rounds, as
// PostgreSQL does to the microsecond, when the rounding carries over a
// millisecond boundary.)
func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return -time.Millisecond < d && d < time.Millisecond
}

// ctx returns the test's context; a store call that outlives the test is a
// bug of the store.
func ctx(t *testing.T) context.Context { return t.Context() }
