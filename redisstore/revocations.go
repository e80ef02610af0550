package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesameauth/sesame"
)

// appendedMemory is how long the log remembers that it holds a revocation,
// so that appending it again (a retry after a lost answer, or two callers
// flushing one pending set) adds nothing.
const appendedMemory = time.Hour

// appendRevocations appends the user's pending revocations to the log and
// then clears them from the pending set. An error means some may not be in
// the log; they stay pending.
func (s *Store) appendRevocations(ctx context.Context, uid string, list []pending) error {
	if len(list) == 0 {
		return nil
	}
	args := []string{itoa(s.retention().Milliseconds()), itoa(appendedMemory.Milliseconds()), revocationsChannel}
	clear := make([]string, 0, 2*len(list))
	for _, p := range list {
		args = append(args, p.id, itoa(p.at))
		clear = append(clear, p.id, itoa(p.at))
	}
	if err := appendScript.Exec(ctx, s.client, []string{revocationLogKey}, args).Error(); err != nil {
		return translate(ctx, "append revocations", err)
	}
	// Failing here leaves them pending: a later flush appends nothing twice
	// within appendedMemory.
	clearPendingScript.Exec(ctx, s.client, []string{pendingKey(uid)}, clear)
	return nil
}

// maxRetries bounds the users whose pending revocations are retried in the
// background at once; beyond it, they wait for the user's next session end.
const maxRetries = 10_000

// retryPending flushes the user's pending revocations in the background
// after a failed append, until one succeeds, the store is closed, or the
// revocations are older than the log keeps them. Without it, a revocation
// whose append failed would wait for the user's next session end: a logout
// retried by the client finds no session (401) and appends nothing.
func (s *Store) retryPending(uid string) {
	if _, scheduled := s.retrying.LoadOrStore(uid, struct{}{}); scheduled {
		return
	}
	if s.retries.Add(1) > maxRetries {
		s.retries.Add(-1)
		s.retrying.Delete(uid)
		return
	}
	go func() {
		defer func() {
			s.retrying.Delete(uid)
			s.retries.Add(-1)
		}()
		giveUp := time.Now().Add(s.retention())
		for delay := 50 * time.Millisecond; time.Now().Before(giveUp); delay = min(2*delay, 5*time.Second) {
			select {
			case <-s.closed:
				return
			case <-time.After(delay):
			}
			if s.flushPending(uid) == nil {
				return
			}
		}
	}()
}

// flushPending appends what is in the user's pending set to the log.
func (s *Store) flushPending(uid string) error {
	ctx, cancel := s.bound(context.Background())
	defer cancel()
	scores, err := s.client.Do(ctx, s.client.B().Zrange().Key(pendingKey(uid)).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		return translate(ctx, "flush pending revocations", err)
	}
	list := make([]pending, 0, len(scores))
	for _, z := range scores {
		list = append(list, pending{id: z.Member, at: int64(z.Score)})
	}
	return s.appendRevocations(ctx, uid, list)
}

// seqOf maps a stream ID (ms-seq) to a Seq: ms*1e6 + seq. Redis numbers the
// entries of one millisecond from 0, so this is increasing as long as fewer
// than a million revocations share a millisecond.
func seqOf(id string) (int64, error) {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseInt(ms, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || n >= 1e6 {
		return 0, fmt.Errorf("stream ID %q does not map to a Seq", id)
	}
	return m*1e6 + n, nil
}

// RevocationsSince returns the logged revocations with Seq > after, in Seq
// order, at most limit of them (none if limit is not positive). The log
// keeps revocations for RevocationRetention (by Redis's clock), trimmed
// approximately: a few older ones may remain.
func (s *Store) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	list := []sesame.Revocation{}
	if limit <= 0 {
		return list, nil
	}
	start := "-"
	if after > 0 {
		start = fmt.Sprintf("(%d-%d", after/1e6, after%1e6)
	}
	entries, err := s.client.Do(ctx, s.client.B().Xrange().Key(revocationLogKey).Start(start).End("+").Count(int64(limit)).Build()).AsXRange()
	if err != nil {
		return nil, translate(ctx, "revocations since", err)
	}
	for _, e := range entries {
		r, err := revocationOf(e)
		if err != nil {
			return nil, fmt.Errorf("redisstore: revocations since: %w", err)
		}
		list = append(list, r)
	}
	return list, nil
}

// revocationOf reads one entry of the log.
func revocationOf(e rueidis.XRangeEntry) (sesame.Revocation, error) {
	seq, err := seqOf(e.ID)
	if err != nil {
		return sesame.Revocation{}, err
	}
	at, err := strconv.ParseInt(e.FieldValues["t"], 10, 64)
	if err != nil {
		return sesame.Revocation{}, fmt.Errorf("entry %s: time %q", e.ID, e.FieldValues["t"])
	}
	return sesame.Revocation{Seq: seq, SessionID: e.FieldValues["s"], At: fromMS(at)}, nil
}
