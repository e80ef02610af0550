package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/sesameauth/sesame/storetest"
)

// TestStore runs the contract every store passes, on a fresh database file
// per test. Throttling counters are not kept here (Limiter is nil).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		st, clk := open(t, filepath.Join(t.TempDir(), "sesame.db")), &storetest.Clock{}
		st.Now = clk.Now
		return storetest.Stores{Users: st, Sessions: st, Refresh: st, Revocations: st, Keys: st, Audit: st, Clock: clk}
	})
}
