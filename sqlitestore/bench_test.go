package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/sesameauth/sesame/sqlitestore"
)

// benchDB is a database file filled with sessions for the lookup
// benchmarks. It grows in place: each size adds to the rows already there.
type benchDB struct {
	path string
	raw  *sql.DB // a connection of its own, as another process would have
	rows int
}

// newBenchDB opens a store on a new file and returns it with the file.
func newBenchDB(b *testing.B) (*benchDB, *sqlitestore.Store) {
	path := filepath.Join(b.TempDir(), "bench.db")
	st := open(b, path)
	db := raw(b, path)
	// Random keys land all over four indexes: with SQLite's default 2 MB
	// cache a million inserts spend minutes evicting and rereading pages.
	if _, err := db.Exec(`PRAGMA cache_size = -1048576`); err != nil { // 1 GiB, allocated as used
		b.Fatal(err)
	}
	return &benchDB{path: path, raw: db}, st
}

// grow fills the table up to n sessions in one transaction, inside SQLite
// (a recursive CTE), which is far faster than n round trips. The secret
// hashes are random 32-byte blobs, as SHA-256 outputs are.
func (db *benchDB) grow(b *testing.B, n int) {
	if db.rows >= n {
		return
	}
	start := time.Now()
	now := time.Now().UnixMilli()
	if _, err := db.raw.Exec(`INSERT INTO sessions
		(id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent)
		WITH RECURSIVE c(i) AS (SELECT ?1 UNION ALL SELECT i+1 FROM c WHERE i < ?2)
		SELECT lower(hex(randomblob(16))), randomblob(32), 'user-' || (i % 50000),
			?3, ?3, ?3 + 3600000, ?3 + 86400000, '192.0.2.' || (i % 250),
			'Mozilla/5.0 (X11; Linux x86_64) bench' FROM c`,
		db.rows+1, n, now); err != nil {
		b.Fatal(err)
	}
	// Fold the WAL back into the file, so lookups read the b-tree only.
	if _, err := db.raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	b.Logf("inserted %d sessions in %v", n-db.rows, time.Since(start).Round(time.Millisecond))
	db.rows = n
}

// sample returns the secret hashes of k sessions picked at random, with
// repetition, among the first n.
func (db *benchDB) sample(b *testing.B, n, k int) [][32]byte {
	stmt, err := db.raw.Prepare(`SELECT secret_hash FROM sessions WHERE rowid = ?`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	hashes := make([][32]byte, k)
	for i := range hashes {
		var h []byte
		if err := stmt.QueryRow(1 + rand.IntN(n)).Scan(&h); err != nil {
			b.Fatal(err)
		}
		copy(hashes[i][:], h)
	}
	return hashes
}

// sampleSize is how many random sessions a benchmark draws, with
// repetition: enough that a large table's pages do not all sit in SQLite's
// cache.
const sampleSize = 1 << 16

// BenchmarkSessionLookup measures Session(hash), the lookup every
// authenticated request makes, for random existing sessions in tables of
// growing size.
func BenchmarkSessionLookup(b *testing.B) {
	db, st := newBenchDB(b)
	ctx := requestContext(b)
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		var hashes [][32]byte // the closure runs once per b.N tried
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			if hashes == nil {
				db.grow(b, n)
				hashes = db.sample(b, n, sampleSize)
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for i := range b.N {
				if _, err := st.Session(ctx, hashes[i%len(hashes)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionLookupParallel measures Session(hash) from GOMAXPROCS
// goroutines at once, through the reader pool, with 10,000 sessions.
func BenchmarkSessionLookupParallel(b *testing.B) {
	const n = 10_000
	db, st := newBenchDB(b) // here, not in the closure that runs once per b.N tried
	db.grow(b, n)
	hashes := db.sample(b, n, sampleSize)
	ctx := requestContext(b)
	b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(hashes))
			for pb.Next() {
				if _, err := st.Session(ctx, hashes[i%len(hashes)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// requestContext returns a context that can be canceled, as an HTTP
// request's is, so that the benchmark takes the path a request takes: the
// driver spends more on such a context than on context.Background.
func requestContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// reportCPU starts measuring the CPU time the process uses; the function
// it returns reports it per operation as cpu-ns/op. On a shared machine it
// varies less with the load than ns/op, wall time, does.
func reportCPU(b *testing.B) func() {
	start, ok := cpuTime()
	return func() {
		if end, ok2 := cpuTime(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
