package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/sqlitestore"
)

// TestLogRetention checks that the revocation log keeps a revocation at
// least as long as an access token may live, even past the 24 h default.
func TestLogRetention(t *testing.T) {
	sq, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	mem := memstore.New()
	for _, c := range []struct {
		atLeast, want time.Duration
	}{{11 * time.Minute, 24 * time.Hour}, {72 * time.Hour, 72 * time.Hour}} {
		setLogRetention(sq, c.atLeast)
		setLogRetention(mem, c.atLeast)
		if sq.RevocationRetention != c.want || mem.RevocationRetention != c.want {
			t.Errorf("tokens living %v: retention SQLite %v, memory %v; want %v", c.atLeast, sq.RevocationRetention, mem.RevocationRetention, c.want)
		}
	}
}
