package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzTokenForm drives the token endpoints' form parsing with arbitrary
// bodies: a body is refused with 400 invalid_request, or read exactly as
// url.ParseQuery reads it with no parameter repeated; never a panic.
func FuzzTokenForm(f *testing.F) {
	for _, s := range []string{
		"grant_type=password&username=a%40x.test&password=correct+horse",
		"grant_type=refresh_token&refresh_token=abc",
		"token=abc&token_type_hint=refresh_token",
		"grant_type=password&password=a&password=b",
		"grant_type=password;username=a;password=b",
		"username=%zz",
		"%00=%00&grant_type=%FF%FE",
		"a=1&&b=2&=3&c",
		"grant_type=password&GRANT_TYPE=refresh_token",
		"refresh_token=" + strings.Repeat("A", 4096),
		"",
		"&&&&",
		"password=%E2%80%AE%C2%85",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := httptest.NewRequest("POST", "/v1/token", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		in, err := decodeTokenRequest(r)
		vals, perr := url.ParseQuery(string(b))
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.code != "invalid_request" || len(ae.desc) > 256 {
				t.Fatalf("decodeTokenRequest(%q) = %v, want a short 400 invalid_request", b, err)
			}
			if perr == nil {
				repeated := false
				for _, v := range vals {
					repeated = repeated || len(v) > 1
				}
				if !repeated {
					t.Fatalf("decodeTokenRequest(%q) refused a form that parses with no repeated parameter: %v", b, err)
				}
			}
			return
		}
		if perr != nil {
			t.Fatalf("decodeTokenRequest(%q) accepted a form url.ParseQuery refuses: %v", b, perr)
		}
		for k, got := range map[string]string{
			"grant_type": in.GrantType, "username": in.Username, "password": in.Password,
			"refresh_token": in.RefreshToken, "scope": in.Scope, "client_id": in.ClientID,
			"token": in.Token, "token_type_hint": in.TokenHint,
		} {
			if len(vals[k]) > 1 {
				t.Fatalf("decodeTokenRequest(%q) accepted %s repeated", b, k)
			}
			if want := vals.Get(k); got != want {
				t.Fatalf("decodeTokenRequest(%q): %s = %q, url.ParseQuery says %q", b, k, got, want)
			}
		}
	})
}

// FuzzClientOf drives the client address and agent with arbitrary
// X-Forwarded-For and User-Agent headers from a trusted and an untrusted
// peer: the address is the peer's unless the peer is trusted, and then an
// address that was in the header or the peer's; the agent is valid UTF-8
// with no control character (C0, DEL or C1), at most 512 bytes and an
// ellipsis.
func FuzzClientOf(f *testing.F) {
	for _, s := range []string{
		"198.51.100.1",
		"198.51.100.1:5678",
		"[2001:db8::1]:443",
		"192.0.2.7, 198.51.100.1, 10.0.0.3",
		"garbage, 10.0.0.3",
		"::ffff:198.51.100.1",
		"fe80::1%eth0",
		"unknown",
		",,,",
		"10.0.0.3, 10.0.0.4",
		"1.2.3.4\x00",
		strings.Repeat("10.0.0.1,", 1000),
	} {
		f.Add(s, "Mozilla/5.0 \x1b[31m\u0085\xff", true)
		f.Add(s, "", false)
	}
	s := &server{Deps: Deps{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}}}
	f.Fuzz(func(t *testing.T, xff, ua string, trustedPeer bool) {
		peer := "203.0.113.9"
		if trustedPeer {
			peer = "10.0.0.2"
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer + ":1234"
		r.Header["X-Forwarded-For"] = []string{xff}
		r.Header["User-Agent"] = []string{ua}
		c := s.clientOf(r)
		if !trustedPeer && c.IP != peer {
			t.Fatalf("untrusted peer, X-Forwarded-For %q: client %q, want the peer %s", xff, c.IP, peer)
		}
		a, err := netip.ParseAddr(c.IP)
		if err != nil {
			t.Fatalf("X-Forwarded-For %q: client %q is not an address (%v)", xff, c.IP, err)
		}
		if c.IP != peer {
			found := false
			for _, h := range strings.Split(xff, ",") {
				if ha, err := parseHop(h); err == nil && ha.Unmap() == a {
					found = true
				}
			}
			if !found {
				t.Fatalf("X-Forwarded-For %q: client %q is neither the peer nor one of its entries", xff, c.IP)
			}
		}
		if !utf8.ValidString(c.UserAgent) || len(c.UserAgent) > 512+len("…") || strings.ContainsFunc(c.UserAgent, unicode.IsControl) {
			t.Fatalf("User-Agent %q: cleaned to %q", ua, c.UserAgent)
		}
	})
}
