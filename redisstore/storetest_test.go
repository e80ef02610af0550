package redisstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/redisstore"
	"github.com/sesameauth/sesame/storetest"
)

// TestStore runs the contract every store passes against the Redis of
// SESAME_TEST_REDIS (default redis://127.0.0.1:6379/9), flushing its
// database before every test.
func TestStore(t *testing.T) {
	url := testURL()
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		st, clk := open(t, url), &storetest.Clock{}
		st.Now = clk.Now
		return storetest.Stores{Sessions: st, Refresh: st, Revocations: st, Limiter: st, Clock: clk}
	})
}

// TestStoreWithoutCache runs the contract with the client-side cache
// turned off (cache_mb=0), where every lookup reads Redis.
func TestStoreWithoutCache(t *testing.T) {
	url := testURL()
	if strings.Contains(url, "?") {
		url += "&cache_mb=0"
	} else {
		url += "?cache_mb=0"
	}
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		st := open(t, url)
		return storetest.Stores{Sessions: st, Refresh: st, Revocations: st, Limiter: st}
	})
}

// TestCluster runs the contract against a three-primary Redis Cluster that
// it starts from redis-server on loopback ports.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	url := startCluster(t)

	// A node of it, named without ?cluster=true, is refused at once.
	first, _, _ := strings.Cut(strings.TrimPrefix(url, "redis://"), ",")
	if st, err := redisstore.Open(t.Context(), "redis://"+first); err == nil || errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("Open(a Cluster node without cluster=true) = %v, want a configuration error", err)
		if err == nil {
			st.Close()
		}
	}
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		st := open(t, url)
		return storetest.Stores{Sessions: st, Refresh: st, Revocations: st, Limiter: st}
	})
}
