package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/sesameauth/sesame/storetest"
)

// TestFeed: a set polling one handle's data_version learns of sessions
// ended through another handle on the same file (another process, such as
// the CLI, in production) within a second.
func TestFeed(t *testing.T) {
	storetest.RunFeed(t, func(t *testing.T) storetest.FeedNodes {
		path := filepath.Join(t.TempDir(), "sesame.db")
		return storetest.FeedNodes{Writer: open(t, path), Feed: open(t, path)}
	})
}
