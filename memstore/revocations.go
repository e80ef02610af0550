package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/sesameauth/sesame"
)

// revocations is the revocation log, oldest first. Entries are added while
// the sessions' lock is held, so a session that a reader sees gone has its
// revocation in the log already; RevocationsSince takes only this lock, and
// waits for no session write.
type revocations struct {
	mu   sync.RWMutex
	list []sesame.Revocation
	seq  int64 // of the last entry ever added
}

// add logs the revocation of the sessions at now.
func (rv *revocations) add(now int64, ids ...string) {
	if len(ids) == 0 {
		return
	}
	at := fromNanos(now)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for _, id := range ids {
		rv.seq++
		rv.list = append(rv.list, sesame.Revocation{Seq: rv.seq, SessionID: strings.Clone(id), At: at})
	}
}

// prune drops the entries logged before cutoff. It stops at the first
// entry that is not: with a clock that went back, some stay a little longer.
func (rv *revocations) prune(cutoff int64) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	i := 0
	for i < len(rv.list) && toNanos(rv.list[i].At) < cutoff {
		i++
	}
	if i > 0 {
		n := copy(rv.list, rv.list[i:])
		clear(rv.list[n:])
		rv.list = rv.list[:n]
	}
}

// RevocationsSince returns the logged revocations with Seq > after, in Seq
// order, at most limit of them (none if limit is not positive).
func (s *Store) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	rv := &s.revocations
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(rv.list, after, func(r sesame.Revocation, seq int64) int {
		if r.Seq <= seq {
			return -1
		}
		return 1
	})
	n := min(max(limit, 0), len(rv.list)-i)
	return slices.Clone(rv.list[i : i+n : i+n]), nil
}
