package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
)

// BenchmarkGetSession is the in-process cost of GET /v1/session with a valid
// cookie on the memory store, beside BenchmarkBare, a handler writing the
// same bytes: their ratio is Sesame's own per-request overhead, without the
// network and the load generator.
func BenchmarkGetSession(b *testing.B) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	h, err := server.NewServer(server.Deps{Auth: auth, Users: st, Sessions: st, Audit: st})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	auth.Register(ctx, "a@x.test", "password one", nil)
	l, err := auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/session", nil)
	req.Header.Set("Cookie", server.CookieName+"="+l.Secret)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkBare(b *testing.B) {
	body := []byte(`{"user":{"id":"0fb266a94ef2c8950ff653ffc04da22d","email":"ada@x.test","roles":["user"],"created_at":"2026-11-23T01:52:43.474Z"},"session":{"id":"d81f211758de15d4eae2a2cc5b74d63c","created_at":"2026-11-23T01:52:44.126Z","expires_at":"2026-11-23T02:22:44.126Z"}}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	req := httptest.NewRequest("GET", "/v1/session", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}
