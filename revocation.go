package sesame

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// RevocationSet is the one owner of revocation in a process: the in-memory
// set of ended sessions that every verdict consults, at the cost of a map
// lookup and no network hop. Sessions this process ends are added at once
// (Add), before the response that ended them; sessions ended elsewhere
// (another node, the CLI) arrive from the store's revocation feed, which
// Run follows.
//
// The set knows how current it is: Current is a time before which every
// revocation committed to the store is in the set. A feed moves it forward
// by a heartbeat that travels the same path as the revocations (a NOTIFY
// through the listening connection, a blocking stream read that returns,
// a poll of the log), so silence on a broken feed is never taken for
// "nothing was revoked". When Current falls more than MaxLag behind the
// clock, Revoked and Check return ErrRevocationsBehind (which matches
// ErrUnavailable): the node answers 503
// rather than from a set it cannot vouch for, until the feed catches up.
//
// An entry stays until no access token of that session can still be valid
// (retain after the revocation).
type RevocationSet struct {
	log    RevocationLog
	retain time.Duration
	maxLag time.Duration
	now    func() time.Time

	// PollInterval is how often Run reads a log that pushes nothing (no
	// RevocationFeed): SQLite, whose LogVersion makes an unchanged poll a
	// single pragma, and memstore. Default 100ms.
	PollInterval time.Duration

	syncMu      sync.Mutex // one read of the log at a time; guards the fields below
	version     uint64     // the log's version before the last full read
	haveVersion bool
	behind      bool // the feed announced revocations that a failed read did not fetch

	mu      sync.RWMutex
	until   map[string]time.Time
	lastSeq int64
	current time.Time // every revocation committed before it is in the set
	epoch   time.Time // see EpochStore
}

// NewRevocationSet returns a set fed by log (nil for a set fed only by
// Add, which is always current), keeping entries for retain, and refusing
// to answer when it is more than maxLag behind the log (zero: never
// refuse).
func NewRevocationSet(log RevocationLog, retain, maxLag time.Duration, now func() time.Time) *RevocationSet {
	if now == nil {
		now = time.Now
	}
	return &RevocationSet{log: log, retain: retain, maxLag: maxLag, now: now, until: map[string]time.Time{}}
}

// Add marks the session as ended, at once and whatever the log says.
func (r *RevocationSet) Add(sessionID string) {
	until := r.now().Add(r.retain)
	r.mu.Lock()
	if until.After(r.until[sessionID]) {
		r.until[sessionID] = until
	}
	r.mu.Unlock()
}

// Revoked reports whether the session has ended, for a credential of it
// issued at issuedAt (zero for a credential that carries no issue time,
// such as a session cookie). A credential issued before the log's epoch
// (see EpochStore) counts as revoked: its session's revocation may have
// been lost with the store's data; tokens count whole seconds, so the epoch
// is compared at that precision.
//
// A session known to have ended is revoked whatever the feed's state.
// Otherwise, when the set is more than MaxLag behind the log, Revoked
// returns an error matching ErrUnavailable: an answer it cannot vouch for
// is no answer. Revoked does no I/O.
func (r *RevocationSet) Revoked(sessionID string, issuedAt time.Time) (bool, error) {
	r.mu.RLock()
	_, revoked := r.until[sessionID]
	epoch, current := r.epoch, r.current
	r.mu.RUnlock()
	if revoked || (!issuedAt.IsZero() && !epoch.IsZero() && issuedAt.Before(epoch.Truncate(time.Second))) {
		return true, nil
	}
	return false, r.check(current)
}

// Check returns an error matching ErrUnavailable when the set is more than
// MaxLag behind the log, as Revoked would for a session it does not know.
func (r *RevocationSet) Check() error {
	r.mu.RLock()
	current := r.current
	r.mu.RUnlock()
	return r.check(current)
}

func (r *RevocationSet) check(current time.Time) error {
	if r.log == nil || r.maxLag <= 0 {
		return nil
	}
	if lag := r.now().Sub(current); lag > r.maxLag {
		if current.IsZero() {
			return fmt.Errorf("revocations never read: %w", ErrRevocationsBehind)
		}
		return fmt.Errorf("revocation feed %s behind (bound %s): %w", lag.Round(time.Millisecond), r.maxLag, ErrRevocationsBehind)
	}
	return nil
}

// Lag returns how far the set is behind the log: the time since Current.
// It is zero for a set fed only by Add.
func (r *RevocationSet) Lag() time.Duration {
	if r.log == nil {
		return 0
	}
	r.mu.RLock()
	current := r.current
	r.mu.RUnlock()
	return max(r.now().Sub(current), 0)
}

// Current returns the time before which every revocation committed to the
// store is in the set (zero before the first read).
func (r *RevocationSet) Current() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current
}

// MaxLag returns the bound past which the set refuses to answer.
func (r *RevocationSet) MaxLag() time.Duration { return r.maxLag }

// Ping reports ErrUnavailable when the set is behind by more than MaxLag,
// so a server's readiness check includes the feed.
func (r *RevocationSet) Ping(ctx context.Context) error { return r.Check() }

// Len returns the number of entries.
func (r *RevocationSet) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.until)
}

// Sync reads the revocations logged since the last read and adds them; on
// success every revocation committed before Sync began is in the set.
func (r *RevocationSet) Sync(ctx context.Context) error {
	if r.log == nil {
		return nil
	}
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	return r.sync(ctx)
}

// sync is Sync under syncMu.
func (r *RevocationSet) sync(ctx context.Context) error {
	// Taken before anything is read: whatever was committed before it is
	// in what follows.
	start := r.now()
	// The version too: anything committed after it changes it, so a read
	// skipped for an unchanged version never hides a revocation.
	var version uint64
	lv, versioned := r.log.(LogVersioner)
	if versioned {
		v, err := lv.LogVersion(ctx)
		if err != nil {
			return err
		}
		version = v
	}
	if !versioned || !r.haveVersion || version != r.version {
		if err := r.readLog(ctx); err != nil {
			return err
		}
	}
	if err := r.readEpoch(ctx); err != nil {
		return err
	}
	r.version, r.haveVersion = version, versioned
	r.behind = false
	r.advance(start)
	return nil
}

// readLog adds every revocation logged after the last one seen.
func (r *RevocationSet) readLog(ctx context.Context) error {
	const page = 1000
	for {
		r.mu.RLock()
		after := r.lastSeq
		r.mu.RUnlock()
		list, err := r.log.RevocationsSince(ctx, after, page)
		if err != nil {
			return err
		}
		r.addLogged(list)
		if len(list) < page {
			return nil
		}
	}
}

// addLogged adds revocations read from the log (or carried by its feed).
func (r *RevocationSet) addLogged(list []Revocation) {
	if len(list) == 0 {
		return
	}
	now := r.now()
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
}

// readEpoch refreshes the epoch of a log that can lose its data.
func (r *RevocationSet) readEpoch(ctx context.Context) error {
	es, ok := r.log.(EpochStore)
	if !ok {
		return nil
	}
	epoch, err := es.Epoch(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if epoch.After(r.epoch) {
		r.epoch = epoch
	}
	r.mu.Unlock()
	return nil
}

// advance moves Current forward to t.
func (r *RevocationSet) advance(t time.Time) {
	r.mu.Lock()
	if t.After(r.current) {
		r.current = t
	}
	r.mu.Unlock()
}

// FeedEvent is what a RevocationFeed reports. A feed reports in the order
// the store committed: an event never speaks for a revocation that an
// earlier event has not reported or announced.
type FeedEvent struct {
	// Revocations are entries of the log the feed carried, in Seq order.
	Revocations []Revocation
	// More announces that revocations beyond those carried may have been
	// logged: the set reads the log before it takes Current.
	More bool
	// Current, when not zero, is a time before which every revocation
	// the store committed has been carried or announced by this event or
	// an earlier one: the feed's heartbeat.
	Current time.Time
}

// RevocationFeed is implemented by revocation logs that push: instead of
// being read before every request, they tell each node of revocations as
// they commit.
type RevocationFeed interface {
	// FollowRevocations reports to report what the log receives after Seq
	// after, and heartbeats (FeedEvent.Current) at least a few times a
	// second while it is connected, until ctx ends (then it returns nil)
	// or the feed breaks (then it returns the error, and the caller
	// follows again from the last Seq it has). Its first event announces
	// or carries everything logged after after. report is called from one
	// goroutine at a time and may read the log.
	FollowRevocations(ctx context.Context, after int64, report func(FeedEvent)) error
}

// apply takes one event of the feed.
func (r *RevocationSet) apply(ctx context.Context, ev FeedEvent) error {
	r.addLogged(ev.Revocations)
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if ev.More {
		r.behind = true
	}
	if r.behind {
		// Also retried on every later event until it succeeds: Current
		// does not move while announced revocations are unread.
		if err := r.sync(ctx); err != nil {
			return err
		}
	}
	if !ev.Current.IsZero() {
		if err := r.readEpoch(ctx); err != nil {
			return err
		}
		r.advance(ev.Current)
	}
	return nil
}

// Run keeps the set current until ctx ends: it follows the log's
// RevocationFeed, following again after a break (Current stands still
// meanwhile, so requests get 503 once it is MaxLag behind), or, for a log
// that pushes nothing, reads it every PollInterval. It drops entries whose
// tokens have all expired once a minute. onErr (optional) hears each
// failure, at most once a second while they repeat.
func (r *RevocationSet) Run(ctx context.Context, onErr func(error)) {
	if r.log == nil {
		return
	}
	go r.pruneEvery(ctx, time.Minute)
	var errMu sync.Mutex // report is called from the feed's goroutine too
	var lastErr time.Time
	report := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if err == nil || onErr == nil || ctx.Err() != nil || r.now().Sub(lastErr) < time.Second {
			return
		}
		lastErr = r.now()
		onErr(err)
	}
	feed, ok := r.log.(RevocationFeed)
	if !ok {
		every := r.PollInterval
		if every <= 0 {
			every = 100 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			report(r.Sync(ctx))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	var caughtUp atomic.Bool // since the last break
	for delay := 10 * time.Millisecond; ctx.Err() == nil; delay = min(2*delay, 500*time.Millisecond) {
		r.mu.RLock()
		after := r.lastSeq
		r.mu.RUnlock()
		caughtUp.Store(false)
		err := feed.FollowRevocations(ctx, after, func(ev FeedEvent) {
			if err := r.apply(ctx, ev); err != nil {
				report(fmt.Errorf("reading revocations: %w", err))
			} else if !ev.Current.IsZero() {
				caughtUp.Store(true)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("feed ended")
		}
		report(fmt.Errorf("revocation feed: %w", err))
		if caughtUp.Load() {
			delay = 10 * time.Millisecond // it worked for a while: retry soon
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// pruneEvery drops entries whose tokens have all expired, every interval.
func (r *RevocationSet) pruneEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.now()
		r.mu.Lock()
		for id, until := range r.until {
			if !until.After(now) {
				delete(r.until, id)
			}
		}
		r.mu.Unlock()
	}
}
