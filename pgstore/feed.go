package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sesameauth/sesame"
)

var _ sesame.RevocationFeed = (*Store)(nil)

// revocationsChannel is the NOTIFY channel on which every transaction that
// logs revocations announces them (see logRevocations).
const revocationsChannel = "sesame_revocations"

// Feed timing: how often FollowRevocations sends a heartbeat, and how long
// it waits for one before it calls the feed broken.
const (
	heartbeatEvery   = 100 * time.Millisecond
	heartbeatTimeout = 2 * time.Second
)

// FollowRevocations follows the revocation log by LISTEN/NOTIFY on a
// connection of its own, taken from the pool for as long as it runs.
//
// Every transaction that logs revocations also sends a NOTIFY on
// sesame_revocations; PostgreSQL delivers notifications only once their
// transaction commits, and in commit order. Each one is reported as
// FeedEvent.More: the set then reads the log itself, which stays the source
// of truth, so a notification lost in a broken connection costs nothing once
// the feed follows again (its first event is always More).
//
// The heartbeat travels the same path: every 100 ms FollowRevocations sends
// a NOTIFY on a channel that only this connection listens to, from another
// connection, noting the time before it did. When the notification comes
// back, every revocation committed before that time has been announced
// ahead of it, so it is reported as FeedEvent.Current. A heartbeat that has
// not come back within 2 s, or any error of the connection, ends the feed
// with an error.
func (s *Store) FollowRevocations(ctx context.Context, after int64, report func(sesame.FeedEvent)) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return translate("follow revocations", err)
	}
	conn := c.Hijack() // ours alone: closed below, never back in the pool
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	var b [8]byte
	rand.Read(b[:])
	heartbeats := "sesame_feed_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "LISTEN "+revocationsChannel+"; LISTEN "+heartbeats); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return translate("follow revocations: listen", err)
	}
	// Listening from here on: whatever commits later is announced, and
	// the log holds everything before.
	report(sesame.FeedEvent{More: true})

	// One goroutine waits for notifications; it owns the connection
	// until it returns, which cancelling lctx makes it do.
	lctx, stop := context.WithCancel(ctx)
	notes := make(chan *pgconn.Notification, 256)
	done := make(chan error, 1)
	go func() {
		for {
			n, err := conn.WaitForNotification(lctx)
			if err != nil {
				done <- err
				return
			}
			select {
			case notes <- n:
			case <-lctx.Done():
				done <- lctx.Err()
				return
			}
		}
	}()
	defer func() {
		stop()
		<-done
	}()

	// ended is nil once ctx has ended: the feed stopped, it did not break.
	ended := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	type beat struct {
		n    uint64
		sent time.Time
	}
	var (
		pending []beat // sent, not yet back, oldest first
		next    uint64
	)
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	send := func() error {
		if len(pending) > 0 && time.Since(pending[0].sent) > heartbeatTimeout {
			return fmt.Errorf("pgstore: follow revocations: %w: no heartbeat back for %v", sesame.ErrUnavailable, heartbeatTimeout)
		}
		next++
		b := beat{n: next, sent: time.Now()}
		sctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		defer cancel()
		if _, err := s.pool.Exec(sctx, `SELECT pg_notify($1, $2)`, heartbeats, strconv.FormatUint(b.n, 10)); err != nil {
			return translate("follow revocations: heartbeat", err)
		}
		pending = append(pending, b)
		return nil
	}
	// handle takes one notification, and any already waiting behind it,
	// announcing a run of revocations once.
	handle := func(n *pgconn.Notification) {
		more := false
	drain:
		for {
			if n.Channel == revocationsChannel {
				more = true
			} else if k, err := strconv.ParseUint(n.Payload, 10, 64); err == nil {
				for len(pending) > 0 && pending[0].n <= k {
					if pending[0].n == k {
						report(sesame.FeedEvent{More: more, Current: pending[0].sent})
						more = false
					}
					pending = pending[1:]
				}
			}
			select {
			case n = <-notes:
			default:
				break drain
			}
		}
		if more {
			report(sesame.FeedEvent{More: true})
		}
	}
	if err := send(); err != nil {
		return ended(err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			done <- err // for the deferred wait
			if ctx.Err() != nil {
				return nil
			}
			return translate("follow revocations", err)
		case n := <-notes:
			handle(n)
		case <-tick.C:
			if err := send(); err != nil {
				return ended(err)
			}
		}
	}
}
