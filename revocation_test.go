package sesame_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
)

// countingLog counts reads of the revocation log and can fail them.
type countingLog struct {
	*memstore.Store
	reads atomic.Int64
	fail  atomic.Bool
}

func (c *countingLog) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return nil, errors.New("store down")
	}
	return c.Store.RevocationsSince(ctx, after, limit)
}

func newLiveSession(t *testing.T, st *memstore.Store) string {
	t.Helper()
	_, h := sesame.NewSecret()
	s := sesame.Session{ID: sesame.NewID(), SecretHash: h, UserID: "u1", CreatedAt: time.Now(), LastSeenAt: time.Now(),
		ExpiresAt: time.Now().Add(time.Hour), AbsoluteExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// A deletion committed by another writer of the store (another process,
// another node) is seen by the very next verdict, not the next poll.
func TestRevocationSetSyncOnRead(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	log := &countingLog{Store: st}
	set := sesame.NewRevocationSet(log, time.Hour, 0, nil)
	set.SyncOnRead = true
	id := newLiveSession(t, st)
	if revoked, err := set.Revoked(id); revoked || err != nil {
		t.Fatalf("live session: revoked=%v err=%v", revoked, err)
	}
	if err := st.DeleteSession(ctx, "u1", id); err != nil { // not through the set
		t.Fatal(err)
	}
	if revoked, err := set.Revoked(id); !revoked || err != nil {
		t.Fatalf("right after another writer ended it: revoked=%v err=%v, want true", revoked, err)
	}
	// A known revocation needs no read and survives the log failing.
	log.fail.Store(true)
	before := log.reads.Load()
	if revoked, err := set.Revoked(id); !revoked || err != nil || log.reads.Load() != before {
		t.Fatalf("known revoked with the log down: revoked=%v err=%v reads=%d", revoked, err, log.reads.Load()-before)
	}
	// Anything else cannot be vouched for: unavailable, never "not revoked".
	if _, err := set.Revoked(newLiveSession(t, st)); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("log down: err=%v, want ErrUnavailable", err)
	}
}

// Concurrent readers share log reads: far fewer reads than verdicts.
func TestRevocationSetBatchesReads(t *testing.T) {
	st := memstore.New()
	log := &countingLog{Store: st}
	set := sesame.NewRevocationSet(log, time.Hour, 0, nil)
	set.SyncOnRead = true
	id := newLiveSession(t, st)
	var wg sync.WaitGroup
	const readers, each = 32, 200
	for range readers {
		wg.Go(func() {
			for range each {
				if revoked, err := set.Revoked(id); revoked || err != nil {
					t.Errorf("revoked=%v err=%v", revoked, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := log.reads.Load(); n > readers*each {
		t.Fatalf("log reads %d for %d verdicts: more than one each", n, readers*each)
	} else {
		t.Logf("%d log reads for %d verdicts", n, readers*each)
	}
}
