package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/sesameauth/sesame/redisstore"
	"github.com/sesameauth/sesame/storetest"
)

// TestFeed follows the revocation stream with blocking reads on one Store
// while another, on the same Redis, ends sessions: two nodes.
func TestFeed(t *testing.T) {
	url := testURL()
	storetest.RunFeed(t, func(t *testing.T) storetest.FeedNodes {
		writer := open(t, url) // flushes the database
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		feed, err := redisstore.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { feed.Close() })
		return storetest.FeedNodes{Writer: writer, Feed: feed}
	})
}
