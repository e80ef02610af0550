package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/server"
)

// busyHasher is a saturated password hasher: every Hash waits a moment and
// then gives up with sesame.ErrBusy, as password.Hasher does when no slot
// frees up in time.
type busyHasher struct{}

func (busyHasher) Hash(ctx context.Context, password string) (string, error) {
	time.Sleep(5 * time.Millisecond)
	return "", fmt.Errorf("busy hasher: %w", sesame.ErrBusy)
}

func (busyHasher) Verify(ctx context.Context, encoded, password string) (bool, bool, error) {
	time.Sleep(5 * time.Millisecond)
	return false, false, fmt.Errorf("busy hasher: %w", sesame.ErrBusy)
}

// TestLoginFloodWhileHasherBusy sends many logins for unknown emails at
// once while every hash is refused as busy: each must get 503 unavailable
// with Retry-After, and the server must stay sound. (Under -race this also
// checks the lazily made hash that unknown emails are verified against is
// made and retried without a data race.)
func TestLoginFloodWhileHasherBusy(t *testing.T) {
	st := memstore.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth := sesame.New(sesame.Config{
		Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: busyHasher{},
		AddressMaxFailures: 1 << 20, AccountMaxFailures: 1 << 20, Logger: log,
	})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}, Hasher: busyHasher{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		var wg sync.WaitGroup
		for i := range 48 {
			wg.Go(func() {
				body := fmt.Sprintf(`{"email":"ghost-%d-%d@x.test","password":"wrong guess"}`, round, i)
				req := httptest.NewRequest("POST", "/v1/session", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.RemoteAddr = fmt.Sprintf("192.0.2.%d:4000", i)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"unavailable"`) || rec.Header().Get("Retry-After") == "" {
					t.Errorf("login while every hash is busy: %d %q (Retry-After %q), want 503 unavailable with Retry-After",
						rec.Code, rec.Body, rec.Header().Get("Retry-After"))
				}
				if sc := rec.Header().Values("Set-Cookie"); len(sc) > 0 {
					t.Errorf("503 set a cookie: %q", sc)
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			// The requests are stuck for good; fail now rather than at the
			// test binary's timeout. (Their goroutines leak.)
			t.Fatalf("round %d: logins for unknown emails still unanswered after 10s while the hasher refuses every hash: the server hangs them", round)
		}
	}
}
