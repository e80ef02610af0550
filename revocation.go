package sesame

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

	// SyncOnRead makes Revoked consult the log before every verdict on a
	// session it does not already know is revoked, so a revocation that
	// another process (the CLI, another node on the same store) committed
	// before the request arrived is always seen. Concurrent readers share
	// one query: each waits for a read of the log that began after it
	// arrived, so under load one query serves a whole batch of requests.
	SyncOnRead bool

	started     atomic.Int64 // syncs begun
	completed   int64        // the last sync that succeeded, under syncMu
	version     uint64       // the log's version before the last full read, under syncMu
	haveVersion bool
	syncMu      sync.Mutex // one Sync at a time
	mu          sync.RWMutex
	until       map[string]time.Time
	lastSeq     int64
	syncedAt    time.Time
	epoch       time.Time // see EpochStore
}

// IssuedTooEarly reports whether a token issued at iat predates the log's
// epoch (see EpochStore): its session's revocation may have been lost with
// the store's data, so it must be refused. Tokens count whole seconds, so
// the epoch is compared at that precision.
func (r *RevocationSet) IssuedTooEarly(iat time.Time) bool {
	r.mu.RLock()
	e := r.epoch
	r.mu.RUnlock()
	return !e.IsZero() && iat.Before(e.Truncate(time.Second))
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
	if r.log != nil && r.SyncOnRead {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := r.syncAfter(ctx, r.started.Load())
		cancel()
		if err != nil {
			return false, fmt.Errorf("reading revocations: %w: %w", ErrUnavailable, err)
		}
		r.mu.RLock()
		_, revoked = r.until[sessionID]
		r.mu.RUnlock()
		return revoked, nil
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

// syncAfter makes sure a sync that began after the caller's arrival (when
// begun syncs numbered seen) has succeeded, running one if none has.
func (r *RevocationSet) syncAfter(ctx context.Context, seen int64) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if r.completed > seen {
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
	n := r.started.Add(1)
	// Taken before the read: anything committed after it changes the
	// version, so a skipped read never hides it.
	var version uint64
	if lv, ok := r.log.(LogVersioner); ok {
		v, err := lv.LogVersion(ctx)
		if err != nil {
			return err
		}
		if r.haveVersion && v == r.version {
			r.mu.Lock()
			r.syncedAt = r.now()
			r.mu.Unlock()
			r.completed = n
			return nil
		}
		version = v
		defer func() {
			if r.completed == n {
				r.version, r.haveVersion = version, true
			}
		}()
	}
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
		r.mu.Unlock()
		if len(list) < page {
			if es, ok := r.log.(EpochStore); ok {
				epoch, err := es.Epoch(ctx)
				if err != nil {
					return err
				}
				r.mu.Lock()
				if epoch.After(r.epoch) {
					r.epoch = epoch
				}
				r.mu.Unlock()
			}
			r.mu.Lock()
			r.syncedAt = now
			r.mu.Unlock()
			r.completed = n
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

// Guard returns a TokenVerifier that also refuses tokens issued before the
// log's epoch (IssuedTooEarly). v should consult this set for revocations,
// so that the epoch it compares against is as fresh as the verdict.
func (r *RevocationSet) Guard(v TokenVerifier) TokenVerifier { return epochGuard{v, r} }

type epochGuard struct {
	v TokenVerifier
	r *RevocationSet
}

func (g epochGuard) Verify(ctx context.Context, token string) (Claims, error) {
	c, err := g.v.Verify(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	if g.r.IssuedTooEarly(c.IssuedAt) {
		return Claims{}, fmt.Errorf("%w: issued before the session store's data began", ErrInvalidToken)
	}
	return c, nil
}
