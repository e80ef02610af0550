package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesameauth/sesame"
)

// epochKey holds the time (unix ms) since which this Redis has kept
// Sesame's data. Redis may lose everything (a restart without persistence,
// a failover to an empty replica); the key goes with it.
const epochKey = "{sesame}:epoch"

var _ sesame.EpochStore = (*Store)(nil)

// Epoch returns the time since which the store's data is complete. If the
// marker is missing, the data was lost (or this is a new store): Epoch
// writes a new marker with the current time, unless another node did so
// first, and returns whichever was written. Tokens issued before the epoch
// belong to sessions whose revocations may have been lost with the data.
func (s *Store) Epoch(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// Whole seconds, like the iat of the tokens it is compared with: a
	// token issued in the epoch's own second is accepted, so a store that is
	// merely new refuses nothing, and a loss is detected for every token
	// issued in an earlier second.
	now := strconv.FormatInt(s.nowMS()/1000*1000, 10)
	// SET NX GET: set the marker if missing, and return the old value
	// (nil if it was missing, in which case ours is in force).
	v, err := s.client.Do(ctx, s.client.B().Set().Key(epochKey).Value(now).Nx().Get().Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return time.Time{}, fmt.Errorf("redisstore: epoch: %w: %w", sesame.ErrUnavailable, err)
	}
	if rueidis.IsRedisNil(err) {
		v = now
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("redisstore: epoch: malformed marker %q", v)
	}
	return time.UnixMilli(ms).UTC(), nil
}
