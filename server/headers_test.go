package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sesameauth/sesame/server"
)

// TestResponseHeaders holds the headers docs/API.md promises on every
// answer of the API: signed in or not, found or not, an error or not.
// Vary: Origin is there exactly when --allowed-origins names an origin
// (only then does an answer depend on Origin), and Strict-Transport-Security
// exactly when the server is behind TLS. The one exception is forward
// auth's allowed answer, which only the proxy reads: it carries no headers
// for a browser, and still no-store.
func TestResponseHeaders(t *testing.T) {
	for _, tc := range []struct {
		name      string
		origins   []string
		tls, vary bool
	}{
		{"plain", nil, false, false},
		{"TLS", nil, true, false},
		{"allowed origins", []string{"https://app.example.test"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _, secret := memServer(t, func(d *server.Deps) {
				d.AllowedOrigins, d.TLS = tc.origins, tc.tls
				d.Issuer, d.TokenIssuer = "https://sesame.example.test", testIssuer(t)
			})
			for _, r := range []struct {
				method, path string
				cookie       bool
				status       int
			}{
				{"GET", "/v1/session", true, http.StatusOK},
				{"GET", "/v1/session", false, http.StatusUnauthorized},
				{"GET", "/healthz", false, http.StatusOK},
				{"GET", "/nowhere", false, http.StatusNotFound},
				{"PUT", "/v1/session", true, http.StatusMethodNotAllowed},
				{"GET", "/v1/auth-request", true, http.StatusOK},
				{"GET", "/v1/auth-request", false, http.StatusUnauthorized},
			} {
				req := httptest.NewRequest(r.method, r.path, nil)
				req.RemoteAddr = "127.0.0.1:5000"
				req.Header.Set("X-Original-Method", "GET")
				req.Header.Set("X-Original-URL", "https://app.example.test/")
				if r.cookie {
					req.Header.Set("Cookie", server.CookieName+"="+secret)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				what := r.method + " " + r.path
				if w.Code != r.status {
					t.Fatalf("%s: status %d, want %d", what, w.Code, r.status)
				}
				got := w.Result().Header
				if r.path == "/v1/auth-request" && r.status == http.StatusOK {
					for _, k := range []string{"X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Strict-Transport-Security"} {
						if v := got.Values(k); len(v) > 0 {
							t.Errorf("allowed forward-auth answer: %s %q, which only a browser reads", k, v)
						}
					}
					if cc, auth := got.Get("Cache-Control"), got.Get("Authorization"); cc != "no-store" || !strings.HasPrefix(auth, "Bearer ") {
						t.Errorf("allowed forward-auth answer: Cache-Control %q, Authorization %q", cc, auth)
					}
					continue
				}
				for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
					if v := got.Values(k); len(v) != 1 || v[0] != want {
						t.Errorf("%s: %s %q, want exactly %q", what, k, v, want)
					}
				}
				if csp := got.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
					t.Errorf("%s: Content-Security-Policy %q allows content or framing", what, csp)
				}
				if hsts := got.Get("Strict-Transport-Security"); (hsts != "") != tc.tls {
					t.Errorf("%s: Strict-Transport-Security %q with TLS %t", what, hsts, tc.tls)
				}
				if vary := got.Values("Vary"); (len(vary) > 0 && vary[0] == "Origin") != tc.vary {
					t.Errorf("%s: Vary %q with allowed origins %q", what, vary, tc.origins)
				}
			}
		})
	}
}
