package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
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
