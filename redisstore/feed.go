package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesameauth/sesame"
)

var _ sesame.RevocationFeed = (*Store)(nil)

// feedBlock is how long one blocking read of the log waits for an entry:
// each read that returns is the feed's heartbeat.
const feedBlock = 100 * time.Millisecond

// feedBatch is the most entries one read returns.
const feedBatch = 1000

// FollowRevocations follows the revocation log (a Redis Stream) with
// blocking reads, XREAD BLOCK 100 from the last entry it has: Redis answers
// at once with whatever was appended after it, or after 100 ms with
// nothing. The entries are carried in the event; the stream is the log, so
// there is no gap to fill after a break.
//
// Each read that returns is the heartbeat: it was sent after the time noted
// just before it, and Redis answers a read with every entry it holds past
// the given ID, so every revocation logged before that time is carried by
// this event or an earlier one (FeedEvent.Current). A read that fails (Redis
// down, a broken connection, no answer within the store's timeout) ends the
// feed with an error matching sesame.ErrUnavailable.
func (s *Store) FollowRevocations(ctx context.Context, after int64, report func(sesame.FeedEvent)) error {
	last := fmt.Sprintf("%d-%d", after/1e6, after%1e6)
	for ctx.Err() == nil {
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, feedBlock+s.timeout)
		streams, err := s.client.Do(rctx, s.client.B().Xread().Count(feedBatch).Block(feedBlock.Milliseconds()).
			Streams().Key(revocationLogKey).Id(last).Build()).AsXRead()
		cancel()
		if err != nil && !rueidis.IsRedisNil(err) {
			if ctx.Err() != nil {
				return nil
			}
			return translate(ctx, "follow revocations", err)
		}
		entries := streams[revocationLogKey]
		list := make([]sesame.Revocation, 0, len(entries))
		for _, e := range entries {
			r, err := revocationOf(e)
			if err != nil {
				return fmt.Errorf("redisstore: follow revocations: %w", err)
			}
			list = append(list, r)
			last = e.ID
		}
		ev := sesame.FeedEvent{Revocations: list}
		if len(entries) < feedBatch {
			ev.Current = sent
		}
		report(ev)
	}
	return nil
}
