package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// X-Forwarded-For is believed only from trusted proxies, only back to the
// first untrusted hop, and entries with ports (as some proxies send them)
// are read rather than ending the walk at the proxy's own address.
func TestClientOf(t *testing.T) {
	s := &server{Deps: Deps{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.9:1234", "", "203.0.113.9"},
		{"203.0.113.9:1234", "198.51.100.1", "203.0.113.9"}, // untrusted peer: XFF ignored
		{"10.0.0.2:1234", "198.51.100.1", "198.51.100.1"},
		{"10.0.0.2:1234", "198.51.100.1:5678", "198.51.100.1"},
		{"10.0.0.2:1234", "[2001:db8::1]:443", "2001:db8::1"},
		{"10.0.0.2:1234", "192.0.2.7, 198.51.100.1, 10.0.0.3", "198.51.100.1"}, // first untrusted from the right
		{"10.0.0.2:1234", "garbage", "10.0.0.2"},
		{"[::ffff:10.0.0.2]:1234", "198.51.100.1", "198.51.100.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientOf(r).IP; got != tc.want {
			t.Errorf("peer %s, XFF %q: client %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}
