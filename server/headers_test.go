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
// (only then does an answer depend on Origin), Strict-Transport-Security
// exactly when the server is behind TLS, and Referrer-Policy on every
// redirect (a browser follows it under that policy). The one exception is
// forward auth's allowed answer, which only the proxy reads: it carries no
// headers for a browser, and still no-store. Its refusals, which Caddy,
// Traefik and Envoy hand to the browser, carry them all.
func TestResponseHeaders(t *testing.T) {
	const (
		originalURL = "https://app.example.test/docs/"
		proxy       = "127.0.0.1:5000"
	)
	authRequest := map[string]string{"X-Original-Method": "GET", "X-Original-URL": originalURL}
	forwardAuth := map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https",
		"X-Forwarded-Host": "app.example.test", "X-Forwarded-Uri": "/docs/", "Accept": "text/html"}
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
				peer         string
				headers      map[string]string
				status       int
			}{
				{"GET", "/v1/session", true, "", nil, http.StatusOK},
				{"GET", "/v1/session", false, "", nil, http.StatusUnauthorized},
				{"GET", "/healthz", false, "", nil, http.StatusOK},
				{"GET", "/nowhere", false, "", nil, http.StatusNotFound},
				{"PUT", "/v1/session", true, "", nil, http.StatusMethodNotAllowed},
				{"GET", "/", false, "", nil, http.StatusSeeOther},
				{"GET", "/static/", false, "", nil, http.StatusNotFound},         // no listing
				{"GET", "/static", false, "", nil, http.StatusTemporaryRedirect}, // the ServeMux's own redirect
				{"GET", "/v1/auth-request", true, proxy, authRequest, http.StatusOK},
				{"GET", "/v1/auth-request", false, proxy, authRequest, http.StatusUnauthorized},
				{"GET", "/v1/auth-request", true, "192.0.2.7:5000", authRequest, http.StatusForbidden},
				{"GET", "/v1/auth-request", true, proxy, nil, http.StatusBadRequest},
				{"GET", "/v1/forward-auth", false, proxy, forwardAuth, http.StatusFound},
				{"GET", "/v1/forward-auth/docs/", false, proxy, forwardAuth, http.StatusFound}, // Envoy's form
			} {
				req := httptest.NewRequest(r.method, r.path, nil)
				if r.peer != "" {
					req.RemoteAddr = r.peer
				}
				for k, v := range r.headers {
					req.Header.Set(k, v)
				}
				if r.cookie {
					req.Header.Set("Cookie", server.CookieName+"="+secret)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				what := r.method + " " + r.path
				if w.Code != r.status {
					t.Fatalf("%s: status %d, want %d (%s)", what, w.Code, r.status, w.Body)
				}
				got := w.Result().Header
				if strings.HasPrefix(r.path, "/v1/auth-request") && r.status == http.StatusOK {
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
				if redirect := w.Code/100 == 3; redirect != (got.Get("Referrer-Policy") == "same-origin") {
					t.Errorf("%s: %d with Referrer-Policy %q; every redirect, and only a redirect or a page, says same-origin", what, w.Code, got.Get("Referrer-Policy"))
				}
			}
		})
	}
}
