package main

// End-to-end tests of refresh_token_in=cookie (API.md "Tokens in a browser
// without a readable secret") over HTTP. The same in Chromium, through the
// demo's single-page app, is in e2e_browser_test.go.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const rcName = "__Secure-sesame-refresh"

// rcCookie sends the refresh cookie.
func rcCookie(v string) e2eOpt {
	return func(r *http.Request) { r.Header.Add("Cookie", rcName+"="+v) }
}

// rcGrant is a cookie-mode grant: the access token, and the refresh cookie
// the response set.
type rcGrant struct {
	access string
	cookie *http.Cookie
	raw    string
}

// rcGrantOf checks a cookie-mode token response: 200, no-store, an access
// token and no refresh_token in the body, the refresh cookie with exactly
// the contract's attributes, and no cookie holding the access token.
func rcGrantOf(t testing.TB, r e2eResp, what string, familyLeft time.Duration) rcGrant {
	t.Helper()
	if !r.wantFor(t, what, http.StatusOK) {
		t.FailNow()
	}
	tokWantNoStore(t, r, what)
	m := r.json(t)
	if _, ok := m["refresh_token"]; ok {
		t.Errorf("%s: the body has a refresh_token: %s", what, r.body)
	}
	g := rcGrant{}
	g.access, _ = m["access_token"].(string)
	if g.access == "" {
		t.Fatalf("%s: no access_token: %s", what, r.body)
	}
	for _, raw := range r.header.Values("Set-Cookie") {
		if strings.Contains(raw, g.access) {
			t.Errorf("%s: a cookie holds the access token: %q", what, raw)
		}
		if strings.HasPrefix(raw, rcName+"=") {
			if g.raw != "" {
				t.Errorf("%s: two refresh cookies", what)
			}
			g.raw = raw
		}
	}
	for _, c := range r.cookies() {
		if c.Name == rcName {
			g.cookie = c
		}
	}
	if g.cookie == nil || len(g.cookie.Value) < 43 {
		t.Fatalf("%s: no refresh cookie of at least 256 bits: %q", what, r.header.Values("Set-Cookie"))
	}
	attrs := map[string]bool{}
	for _, a := range strings.Split(g.raw, ";")[1:] {
		k, _, _ := strings.Cut(strings.TrimSpace(a), "=")
		attrs[strings.ToLower(k)] = true
	}
	for _, want := range []string{"httponly", "secure", "path", "samesite", "max-age"} {
		if !attrs[want] {
			t.Errorf("%s: refresh cookie %q lacks %s", what, g.raw, want)
		}
	}
	if attrs["domain"] {
		t.Errorf("%s: refresh cookie %q has a Domain", what, g.raw)
	}
	if g.cookie.Path != "/v1/token" || g.cookie.SameSite != http.SameSiteStrictMode || !g.cookie.HttpOnly || !g.cookie.Secure {
		t.Errorf("%s: refresh cookie %q: want HttpOnly; Secure; SameSite=Strict; Path=/v1/token", what, g.raw)
	}
	if left := time.Duration(g.cookie.MaxAge) * time.Second; left > familyLeft || left < familyLeft-time.Minute {
		t.Errorf("%s: refresh cookie Max-Age %s, want about %s (the family's end)", what, left, familyLeft)
	}
	return g
}

func (s *e2eServer) rcPassword(t testing.TB, email string, opts ...e2eOpt) e2eResp {
	t.Helper()
	return s.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {e2ePassword}, "refresh_token_in": {"cookie"}}.Encode(), opts...)
}

func (s *e2eServer) rcRefresh(t testing.TB, cookie string, opts ...e2eOpt) e2eResp {
	t.Helper()
	return s.form(t, "/v1/token", "grant_type=refresh_token", append([]e2eOpt{rcCookie(cookie)}, opts...)...)
}

// rcCleared reports whether the response clears the refresh cookie.
func rcCleared(r e2eResp) bool {
	for _, c := range r.cookies() {
		if c.Name == rcName && c.MaxAge < 0 && strings.Contains(strings.Join(r.header.Values("Set-Cookie"), ";"), "Path=/v1/token") {
			return true
		}
	}
	return false
}

func TestRefreshCookie(t *testing.T) {
	s := e2eStart(t, "--refresh-token-ttl", "2h", "--allowed-origins", "http://localhost:9000", "--session-store", "memory")
	email, _ := s.newUser(t, "spa")

	g := rcGrantOf(t, s.rcPassword(t, email), "password grant with refresh_token_in=cookie", 2*time.Hour)
	s.wantAccessAlive(t, g.access, "cookie-mode access token")
	// JSON asks the same way.
	rcGrantOf(t, s.do(t, "POST", "/v1/token", map[string]string{"grant_type": "password", "username": email, "password": e2ePassword, "refresh_token_in": "cookie"}), "JSON password grant with refresh_token_in=cookie", 2*time.Hour)

	// A refresh with no refresh_token reads the cookie and rotates it.
	g2 := rcGrantOf(t, s.rcRefresh(t, g.cookie.Value), "refresh from the cookie", 2*time.Hour)
	if g2.cookie.Value == g.cookie.Value {
		t.Fatal("the refresh cookie was not rotated")
	}
	if tokParseSID(g2.access) != tokParseSID(g.access) {
		t.Error("a refresh from the cookie changed the family")
	}
	// The retired cookie presented again ends the family, and is cleared.
	reuse := s.rcRefresh(t, g.cookie.Value)
	reuse.wantFor(t, "the retired refresh cookie again", http.StatusBadRequest, "invalid_grant")
	if !rcCleared(reuse) {
		t.Errorf("a refused refresh cookie was not cleared: %q", reuse.header.Values("Set-Cookie"))
	}
	s.wantAccessDead(t, g2.access, "after the refresh cookie's reuse")
	s.rcRefresh(t, g2.cookie.Value).wantFor(t, "the successor after reuse", http.StatusBadRequest, "invalid_grant")

	// No cookie and no token: a clear 400.
	s.form(t, "/v1/token", "grant_type=refresh_token").want(t, http.StatusBadRequest, "invalid_request")
	if junk := s.form(t, "/v1/token", "grant_type=refresh_token", rcCookie("not-a-token")).want(t, http.StatusBadRequest, "invalid_grant"); !rcCleared(junk) {
		t.Error("a refresh cookie that is no token was not cleared")
	}
	s.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {e2ePassword}, "refresh_token_in": {"body"}}.Encode()).want(t, http.StatusBadRequest, "invalid_request")

	// A refresh token from the body may move into the cookie.
	body := s.grant(t, email, e2ePassword)
	moved := rcGrantOf(t, s.form(t, "/v1/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body.refresh}, "refresh_token_in": {"cookie"}}.Encode()), "body token into the cookie", 2*time.Hour)

	// Revoke without a token ends the cookie's family and clears it.
	rv := s.form(t, "/v1/token/revoke", "", rcCookie(moved.cookie.Value))
	rv.wantFor(t, "revoke by the cookie", http.StatusOK)
	if !rcCleared(rv) {
		t.Errorf("revoke by the cookie did not clear it: %q", rv.header.Values("Set-Cookie"))
	}
	s.wantAccessDead(t, moved.access, "after revoke by the cookie")
	s.rcRefresh(t, moved.cookie.Value).wantFor(t, "the cookie after revoke", http.StatusBadRequest, "invalid_grant")
	s.form(t, "/v1/token/revoke", "").want(t, http.StatusBadRequest, "invalid_request")
}

// TestRefreshCookieCrossOrigin: every request that uses or asks for the
// refresh cookie is refused from another origin, and changes nothing;
// an allowed origin may.
func TestRefreshCookieCrossOrigin(t *testing.T) {
	s := e2eStart(t, "--allowed-origins", "http://localhost:9000", "--session-store", "memory")
	email, _ := s.newUser(t, "spacsrf")
	g := rcGrantOf(t, s.rcPassword(t, email), "grant", 720*time.Hour)

	for i, attack := range []e2eOpt{
		e2eCrossSite("http://evil.test"),
		func(r *http.Request) {
			r.Header.Set("Origin", "http://127.0.0.1:1")
			r.Header.Set("Sec-Fetch-Site", "same-site")
		},
		e2eHeader("Origin", "null"),
		e2eHeader("Origin", "http://evil.test"),
	} {
		s.rcPassword(t, email, attack).wantFor(t, "cross-origin grant asking for the cookie", http.StatusForbidden, "csrf")
		r := s.rcRefresh(t, g.cookie.Value, attack)
		r.wantFor(t, "cross-origin refresh from the cookie", http.StatusForbidden, "csrf")
		if len(r.header.Values("Set-Cookie")) != 0 {
			t.Errorf("attack %d: a refused refresh set cookies: %q", i, r.header.Values("Set-Cookie"))
		}
		s.form(t, "/v1/token/revoke", "", rcCookie(g.cookie.Value), attack).wantFor(t, "cross-origin revoke by the cookie", http.StatusForbidden, "csrf")
	}
	s.wantAccessAlive(t, g.access, "after refused cross-origin revokes")
	// A body-mode grant involves no cookie: its cross-origin rule is
	// unchanged (CORS decides who reads the answer).
	tokGrantOf(t, s.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {e2ePassword}}.Encode(), e2eCrossSite("http://evil.test")), "body-mode grant from another origin")

	allowed := func(r *http.Request) {
		r.Header.Set("Origin", "http://localhost:9000")
		r.Header.Set("Sec-Fetch-Site", "same-site")
	}
	r := s.rcRefresh(t, g.cookie.Value, allowed)
	g2 := rcGrantOf(t, r, "refresh from an allowed origin", 720*time.Hour)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://localhost:9000" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q, Allow-Credentials %q", got, r.header.Get("Access-Control-Allow-Credentials"))
	}
	s.form(t, "/v1/token/revoke", "", rcCookie(g2.cookie.Value), allowed).wantFor(t, "revoke from an allowed origin", http.StatusOK)
	s.wantAccessDead(t, g2.access, "after a revoke from an allowed origin")
}

// TestRefreshCookieNoDomain: with --cookie-domain the refresh cookie still
// stays with Sesame's own host.
func TestRefreshCookieNoDomain(t *testing.T) {
	s := e2eStart(t, "--issuer", "https://auth.example.test", "--cookie-domain", "example.test", "--session-store", "memory")
	email := e2eEmail("spadomain")
	s.register(t, email, e2ePassword)
	rcGrantOf(t, s.rcPassword(t, email), "grant with --cookie-domain", 720*time.Hour)
}
