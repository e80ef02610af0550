package pgstore_test

import (
	"testing"

	"github.com/sesameauth/sesame/storetest"
)

// TestFeed follows LISTEN/NOTIFY on one Store while another, on the same
// schema, ends sessions: two nodes on one database.
func TestFeed(t *testing.T) {
	storetest.RunFeed(t, func(t *testing.T) storetest.FeedNodes {
		conn := freshSchema(t)
		return storetest.FeedNodes{Writer: open(t, conn), Feed: open(t, conn)}
	})
}
