package memstore_test

import (
	"runtime"
	"testing"

	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/storetest"
)

// BenchmarkRefreshGrowth rotates one refresh family 31,000 times and
// reports the heap the store holds afterwards (live heap after a GC,
// minus the same before the store was made).
func BenchmarkRefreshGrowth(b *testing.B) {
	const refreshes = 31_000
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	for b.Loop() {
		before := heap()
		st := memstore.New()
		storetest.RotateFamily(b, st, st, refreshes, nil)
		b.ReportMetric(heap()-before, "heap-bytes")
		runtime.KeepAlive(st)
	}
}
