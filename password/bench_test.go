package password_test

import (
	"testing"
	"time"

	"github.com/sesameauth/sesame/password"
)

// BenchmarkHash measures one hash under the default parameters: the CPU
// time a login costs.
func BenchmarkHash(b *testing.B) {
	h := password.NewHasher(password.Params{})
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashParallel measures hashes under the default parameters from
// GOMAXPROCS goroutines through the default bound of runtime.NumCPU() at
// once: the throughput of logins a machine can sustain.
func BenchmarkHashParallel(b *testing.B) {
	h := password.NewHasher(password.Params{}, password.MaxWait(time.Hour))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
