package sqlitestore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/storetest"
)

// BenchmarkRefreshGrowth rotates one refresh family 31,000 times
// (storetest.RotateFamily), recording a token.refreshed audit event each
// time (what 31,000 refreshes over HTTP
// write), and reports what the database holds then: refresh-token rows,
// audit rows and the bytes in use (pages not on the free list), and then
// the same once the audit retention has passed (DeleteEventsBefore, where
// the store has it). The file itself does not shrink: SQLite reuses the
// freed pages.
func BenchmarkRefreshGrowth(b *testing.B) {
	const refreshes = 31_000
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "growth.db")
		st := open(b, path)
		ctx := context.Background()
		storetest.RotateFamily(b, st, st, refreshes, func(s sesame.Session) {
			if err := st.Record(ctx, sesame.Event{Time: time.Now(), Type: sesame.EventTokenRefreshed, UserID: s.UserID,
				SessionID: s.ID, IP: s.IP, UserAgent: s.UserAgent}); err != nil {
				b.Fatal(err)
			}
		})
		if _, err := st.DeleteExpired(ctx); err != nil {
			b.Fatal(err)
		}
		db := raw(b, path)
		count := func(q string) float64 {
			var n float64
			if err := db.QueryRow(q).Scan(&n); err != nil {
				b.Fatal(err)
			}
			return n
		}
		b.ReportMetric(count(`SELECT count(*) FROM refresh_tokens`), "token-rows")
		b.ReportMetric(count(`SELECT count(*) FROM audit_events`), "audit-rows")
		inUse := func() float64 {
			db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			return count(`SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())`) *
				count(`SELECT page_size FROM pragma_page_size()`)
		}
		b.ReportMetric(inUse(), "bytes-in-use")
		if fi, err := os.Stat(path); err == nil {
			b.ReportMetric(float64(fi.Size()), "file-bytes")
		}
		// The audit retention: every event is older than "now" once the
		// loop is over (the old store has no DeleteEventsBefore).
		if p, ok := any(st).(interface {
			DeleteEventsBefore(context.Context, time.Time) (int, error)
		}); ok {
			if _, err := p.DeleteEventsBefore(ctx, time.Now().Add(time.Second)); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(count(`SELECT count(*) FROM audit_events`), "audit-rows-after-sweep")
			b.ReportMetric(inUse(), "bytes-in-use-after-sweep")
		}
		db.Close()
	}
}
