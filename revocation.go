package sesame

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RevocationSet is the in-process set of ended sessions that a verifier of
// stateless access tokens consults on every request, at the cost of a map
// lookup and no network hop. Sessions this process ends are added at once
// (Add); sessions ended elsewhere (another node, the CLI) arrive from the
// store's RevocationLog through Sync, which Run calls every interval.
//
// An entry stays until no access token of that session can still be valid
// (Retain after the revocation). If the set has not synced for MaxStale,
// Revoked returns ErrUnavailable: an answer it cannot vouch for is no answer.
type RevocationSet struct {
	log      RevocationLog
	retain   time.Duration
	maxStale time.Duration
	now      func() time.Time

	// Fresh, if set, is the most a verdict may lag the log: Revoked syncs
	// first (one caller at a time, the others wait for its result) when
	// the last sync is older. It closes the gap between a revocation made
	// by another process and the next poll, at the cost of one small store
	// query per Fresh interval under load.
	Fresh time.Duration

	syncMu   sync.Mutex // one Sync at a time
	mu       sync.RWMutex
	until    map[string]time.Time
	lastSeq  int64
	syncedAt time.Time
}

// NewRevocationSet returns a set fed by log (which may be nil for a set fed
// only by Add), keeping entries for retain, and refusing to answer when it
// has not synced for maxStale (zero: never refuse).
func NewRevocationSet(log RevocationLog, retain, maxStale time.Duration, now func() time.Time) *RevocationSet {
	if now == nil {
		now = time.Now
	}
	return &RevocationSet{log: log, retain: retain, maxStale: maxStale, now: now, until: map[string]time.Time{}}
}

// Add marks the session as ended.
func (r *RevocationSet) Add(sessionID string) {
	until := r.now().Add(r.retain)
	r.mu.Lock()
	if until.After(r.until[sessionID]) {
		r.until[sessionID] = until
	}
	r.mu.Unlock()
}

// Revoked reports whether the session has ended. It returns ErrUnavailable
// when the set is fed by a log and has not synced within MaxStale.
func (r *RevocationSet) Revoked(sessionID string) (bool, error) {
	r.mu.RLock()
	_, revoked := r.until[sessionID]
	synced := r.syncedAt
	r.mu.RUnlock()
	if revoked {
		return true, nil // known revoked: refuse whatever the store says
	}
	if r.log != nil && r.Fresh > 0 && r.now().Sub(synced) > r.Fresh {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := r.syncIfOlder(ctx, synced)
		cancel()
		if err == nil {
			r.mu.RLock()
			_, revoked = r.until[sessionID]
			synced = r.syncedAt
			r.mu.RUnlock()
			if revoked {
				return true, nil
			}
		}
	}
	if r.log != nil && r.maxStale > 0 && r.now().Sub(synced) > r.maxStale {
		return false, fmt.Errorf("revocation set last synced %s ago: %w", r.now().Sub(synced).Round(time.Millisecond), ErrUnavailable)
	}
	return false, nil
}

// Len returns the number of entries.
func (r *RevocationSet) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.until)
}

// syncIfOlder syncs unless another caller already synced since seen.
func (r *RevocationSet) syncIfOlder(ctx context.Context, seen time.Time) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.RLock()
	done := r.syncedAt.After(seen)
	r.mu.RUnlock()
	if done {
		return nil
	}
	return r.sync(ctx)
}

// Sync reads the revocations logged since the last sync and adds them.
func (r *RevocationSet) Sync(ctx context.Context) error {
	if r.log == nil {
		return nil
	}
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	return r.sync(ctx)
}

func (r *RevocationSet) sync(ctx context.Context) error {
	for {
		r.mu.RLock()
		after := r.lastSeq
		r.mu.RUnlock()
		const page = 1000
		// Anything committed before the query started is in its answer.
		now := r.now()
		list, err := r.log.RevocationsSince(ctx, after, page)
		if err != nil {
			return err
		}
		r.mu.Lock()
		for _, v := range list {
			until := v.At.Add(r.retain)
			if until.After(now) && until.After(r.until[v.SessionID]) {
				r.until[v.SessionID] = until
			}
			if v.Seq > r.lastSeq {
				r.lastSeq = v.Seq
			}
		}
		if len(list) < page {
			r.syncedAt = now
		}
		r.mu.Unlock()
		if len(list) < page {
			return nil
		}
	}
}

// prune drops entries whose tokens have all expired.
func (r *RevocationSet) prune() {
	now := r.now()
	r.mu.Lock()
	for id, until := range r.until {
		if !until.After(now) {
			delete(r.until, id)
		}
	}
	r.mu.Unlock()
}

// Run syncs every interval until ctx ends, logging nothing: callers watch
// Revoked's errors (and /readyz) for a store that stopped answering.
func (r *RevocationSet) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastPrune := r.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.Sync(ctx); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		if r.now().Sub(lastPrune) > time.Minute {
			r.prune()
			lastPrune = r.now()
		}
	}
}
