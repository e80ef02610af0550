package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
)

// BenchmarkPortal compares each page with its JSON equivalent in the same
// run (docs/BENCHMARKS.md): GET /account against GET /v1/sessions (both
// signed in, three sessions listed), and POST /login against POST
// /v1/session (password.Fast, so the hash does not hide the rest).
func BenchmarkPortal(b *testing.B) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast),
		AccountMaxFailures: 1 << 30, AddressMaxFailures: 1 << 30})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	auth.Register(ctx, "a@x.test", "password one", nil)
	var secret string
	for i := 0; i < 3; i++ {
		l, err := auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one", Client: sesame.Client{IP: "127.0.0.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}})
		if err != nil {
			b.Fatal(err)
		}
		secret = l.Secret
	}
	get := func(path string) func(b *testing.B) {
		return func(b *testing.B) {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Cookie", server.CookieName+"="+secret)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		}
	}
	post := func(path, ct, body string, want int) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", path, strings.NewReader(body))
				req.Header.Set("Content-Type", ct)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != want {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		}
	}
	b.Run("GET_v1_sessions", get("/v1/sessions"))
	b.Run("GET_account", get("/account"))
	b.Run("POST_v1_session", post("/v1/session", "application/json", `{"email":"a@x.test","password":"password one"}`, http.StatusCreated))
	b.Run("POST_login", post("/login", "application/x-www-form-urlencoded", "email=a%40x.test&password=password+one", http.StatusSeeOther))
}
