package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
)

// TestForwardAuthPeers: only loopback and --trusted-proxies may ask, since
// the answer names identities and the question can name any URL.
func TestForwardAuthPeers(t *testing.T) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Issuer: "https://sesame.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/forward-auth", "/v1/auth-request"} {
		for _, tc := range []struct {
			peer string
			want int
		}{
			{"127.0.0.1:4000", http.StatusUnauthorized},
			{"[::1]:4000", http.StatusUnauthorized},
			{"[::ffff:127.0.0.1]:4000", http.StatusUnauthorized},
			{"10.1.2.3:4000", http.StatusUnauthorized},
			{"10.2.0.1:4000", http.StatusForbidden},
			{"203.0.113.7:4000", http.StatusForbidden},
			{"[2001:db8::1]:4000", http.StatusForbidden},
		} {
			r := httptest.NewRequest("GET", path, nil)
			r.RemoteAddr = tc.peer
			// A forged X-Forwarded-For naming loopback changes nothing.
			r.Header.Set("X-Forwarded-For", "127.0.0.1")
			r.Header.Set("X-Forwarded-Method", "GET")
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Forwarded-Host", "app.example.test")
			r.Header.Set("X-Forwarded-Uri", "/")
			r.Header.Set("X-Original-Method", "GET")
			r.Header.Set("X-Original-URL", "https://app.example.test/")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("%s from %s: %d, want %d; body %s", path, tc.peer, w.Code, tc.want, w.Body)
			}
		}
	}
}

// TestForwardAuthIdentityCurrent: an allowed decision's identity headers
// (and the upstream token, cached per session and audience) follow the
// user's email and roles as they change while the session lives on. An old
// email in Remote-Email may by then be another user's.
func TestForwardAuthIdentityCurrent(t *testing.T) {
	h, auth, u, secret := memServer(t, func(d *server.Deps) {
		d.Issuer, d.TokenIssuer = "https://sesame.example.test", testIssuer(t)
	})
	ctx := t.Context()
	decide := func() http.Header {
		t.Helper()
		r := httptest.NewRequest("GET", "/v1/auth-request", nil)
		r.RemoteAddr = "127.0.0.1:5000"
		r.Header.Set("Cookie", server.CookieName+"="+secret)
		r.Header.Set("X-Original-Method", "GET")
		r.Header.Set("X-Original-URL", "https://app.example.test/")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("auth-request: %d %s", w.Code, w.Body)
		}
		return w.Header()
	}
	first := decide()
	if got := first.Get("Remote-Email"); got != "a@x.test" {
		t.Fatalf("Remote-Email %q", got)
	}
	if again := decide(); again.Get("Authorization") != first.Get("Authorization") {
		t.Errorf("a second decision for the same session and audience minted a new token; the cache is not used")
	}
	sys := sesame.Client{}
	if _, err := auth.SetEmail(ctx, u.ID, "renamed@example.test", sys); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.SetRoles(ctx, u.ID, []string{"user", "auditor"}, sys); err != nil {
		t.Fatal(err)
	}
	now := decide()
	if got := now.Get("Remote-Email"); got != "renamed@example.test" {
		t.Errorf("Remote-Email after the email changed: %q, want renamed@example.test", got)
	}
	if got := now.Get("Remote-Groups"); got != "user,auditor" {
		t.Errorf("Remote-Groups after the roles changed: %q, want user,auditor", got)
	}
	if now.Get("Authorization") == first.Get("Authorization") {
		t.Errorf("the upstream token minted for the old email and roles is still handed out")
	}
}

// TestSignedInAnswersNoStore: every answer about a signed-in user is
// Cache-Control: no-store, the sign-in and registration included.
func TestSignedInAnswersNoStore(t *testing.T) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", method, path, got)
		}
		return w
	}
	creds := `{"email":"a@x.test","password":"password one"}`
	do("POST", "/v1/users", creds, "")
	login := do("POST", "/v1/session", creds, "")
	cookie := login.Result().Cookies()[0]
	c := cookie.Name + "=" + cookie.Value
	do("GET", "/v1/session", "", c)
	do("GET", "/v1/sessions", "", c)
	do("GET", "/v1/userinfo", "", c)
}
