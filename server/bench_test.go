package server_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
	"github.com/sesameauth/sesame/token"
)

// BenchmarkGetSession is the in-process cost of GET /v1/session with a valid
// cookie on the memory store, beside BenchmarkBare, a handler writing the
// same bytes: their ratio is Sesame's own per-request overhead, without the
// network and the load generator.
func BenchmarkGetSession(b *testing.B) {
	h, _, _, secret := memServer(b, nil)
	req := httptest.NewRequest("GET", "/v1/session", nil)
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

// BenchmarkAuthRequest is GET /v1/auth-request with a valid cookie on the
// memory store, with a token minted for the upstream (cached after the
// first): the in-process cost of a forward-auth decision, beside
// BenchmarkBare.
func BenchmarkAuthRequest(b *testing.B) {
	h, _, _, secret := memServer(b, func(d *server.Deps) {
		d.Issuer, d.TokenIssuer = "https://sesame.example.test", testIssuer(b)
	})
	req := httptest.NewRequest("GET", "/v1/auth-request", nil)
	req.RemoteAddr = "127.0.0.1:5000"
	req.Header.Set("Cookie", server.CookieName+"="+secret)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URL", "https://app.example.test/docs/?page=2")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Header().Get("Authorization") == "" {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkUserinfo is GET /v1/userinfo with one bearer token on the
// memory store (verified once, then from the verifier's cache, as serve
// configures it): the in-process cost of a bearer request, beside
// BenchmarkBare.
func BenchmarkUserinfo(b *testing.B) {
	iss := testIssuer(b)
	v, err := token.NewVerifier(iss.Keys, iss.Issuer, iss.Audience[0], token.WithCache(16384))
	if err != nil {
		b.Fatal(err)
	}
	h, _, _, _ := memServer(b, func(d *server.Deps) { d.Issuer, d.Verifier = iss.Issuer, v })
	tok, _, err := iss.IssueAccessToken(sesame.Claims{Subject: sesame.NewID(), Email: "a@x.test", Roles: []string{"user"}, SessionID: sesame.NewID()})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// memServer is the API handler on a fresh memory store with the fast
// hasher, its Deps adjusted by with (if not nil), and the user a@x.test
// (password "password one") signed in: the handler, the authenticator,
// the user and the session's secret.
func memServer(tb testing.TB, with func(*server.Deps)) (http.Handler, *sesame.Authenticator, sesame.User, string) {
	tb.Helper()
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	d := server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}}
	if with != nil {
		with(&d)
	}
	h, err := server.NewServer(d)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	u, err := auth.Register(ctx, "a@x.test", "password one", nil)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
	if err != nil {
		tb.Fatal(err)
	}
	return h, auth, u, l.Secret
}

// testIssuer is an EdDSA token issuer on a fresh key.
func testIssuer(b testing.TB) *token.Issuer {
	master := make([]byte, token.MasterKeySize)
	rand.Read(master)
	priv, k, err := token.GenerateKey(token.EdDSA, time.Now().Add(-time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	if k, err = token.SealKey(master, k, priv); err != nil {
		b.Fatal(err)
	}
	ks, err := token.NewKeySet([]sesame.SigningKey{k}, master, token.EdDSA, time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return &token.Issuer{Keys: token.NewKeys(ks), Issuer: "https://sesame.example.test", Audience: []string{"https://sesame.example.test"}}
}
