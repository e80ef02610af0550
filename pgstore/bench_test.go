package pgstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchTable fills the sessions table of a fresh schema for the lookup
// benchmarks. It grows in place: each size adds to the rows already there.
type benchTable struct {
	schema string
	rows   int
}

// grow fills the table up to n sessions with one INSERT ... SELECT over
// generate_series, inside the server, which is far faster than n round
// trips, and then vacuums and analyses it as autovacuum would in time. Row
// i's secret hash is SHA-256 of i as 8 big-endian bytes, so the benchmark
// picks existing sessions without asking the database.
func (bt *benchTable) grow(b *testing.B, n int) {
	if bt.rows >= n {
		return
	}
	ctx := context.Background()
	pool := adminPool(b)
	start := time.Now()
	if _, err := pool.Exec(ctx, `INSERT INTO `+bt.schema+`.sessions
		(id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent)
		SELECT md5(i::text), sha256(int8send(i)), 'user-' || (i % 50000),
			$3::timestamptz, $3, $3 + interval '1 hour', $3 + interval '1 day', '192.0.2.' || (i % 250),
			'Mozilla/5.0 (X11; Linux x86_64) bench'
		FROM generate_series($1::bigint, $2::bigint) i`, bt.rows+1, n, time.Now()); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+bt.schema+`.sessions`); err != nil {
		b.Fatal(err)
	}
	b.Logf("inserted %d sessions in %v", n-bt.rows, time.Since(start).Round(time.Millisecond))
	bt.rows = n
}

// sample returns the secret hashes of k sessions picked at random, with
// repetition, among the first n.
func sample(n, k int) [][32]byte {
	hashes := make([][32]byte, k)
	for i := range hashes {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(1+rand.IntN(n)))
		hashes[i] = sha256.Sum256(b[:])
	}
	return hashes
}

// sampleSize is how many random sessions a benchmark draws, with
// repetition: enough that a large table's pages do not all stay in the
// buffers of one backend's recent use.
const sampleSize = 1 << 16

// BenchmarkSessionLookup measures Session(hash), the lookup every
// authenticated request makes, for random existing sessions in tables of
// growing size: one round trip over loopback to a prepared statement that
// probes the unique index on secret_hash.
//
//	go test -run '^$' -bench SessionLookup -benchtime 20000x ./pgstore/
func BenchmarkSessionLookup(b *testing.B) {
	conn := freshSchema(b)
	st := open(b, conn)
	bt := &benchTable{schema: schemaOf(b, conn)}
	ctx := requestContext(b)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		var hashes [][32]byte // the closure runs once per b.N tried
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			if hashes == nil {
				bt.grow(b, n)
				hashes = sample(n, sampleSize)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := st.Session(ctx, hashes[i%len(hashes)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionLookupParallel measures Session(hash) from GOMAXPROCS
// goroutines at once, through the pool, with 100,000 sessions.
func BenchmarkSessionLookupParallel(b *testing.B) {
	const n = 100_000
	conn := freshSchema(b) // here, not in the closure that runs once per b.N tried
	st := open(b, conn)
	bt := &benchTable{schema: schemaOf(b, conn)}
	bt.grow(b, n)
	hashes := sample(n, sampleSize)
	ctx := requestContext(b)
	b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
		b.ReportAllocs()
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
// request's is, so that the benchmark takes the path a request takes.
func requestContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}
