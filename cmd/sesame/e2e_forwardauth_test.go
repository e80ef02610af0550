package main

// End-to-end tests of forward authentication (API.md "Forward
// authentication"), asked directly as a proxy would ask. The same behind a
// real nginx and Caddy is in e2e_proxies_test.go.

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesameauth/sesame/httpauth"
)

// fwdAsk asks /v1/forward-auth about method proto://host+uri, as Traefik
// or Caddy would, with the extra options (cookie, Accept, forged headers).
func (s *e2eServer) fwdAsk(t testing.TB, method, proto, host, uri string, opts ...e2eOpt) e2eResp {
	t.Helper()
	return s.do(t, "GET", "/v1/forward-auth", nil, append([]e2eOpt{
		e2eHeader("X-Forwarded-Method", method), e2eHeader("X-Forwarded-Proto", proto),
		e2eHeader("X-Forwarded-Host", host), e2eHeader("X-Forwarded-Uri", uri),
	}, opts...)...)
}

// authRequest asks /v1/auth-request about method rawURL, as nginx would.
func (s *e2eServer) authRequest(t testing.TB, method, rawURL string, opts ...e2eOpt) e2eResp {
	t.Helper()
	return s.do(t, "GET", "/v1/auth-request", nil, append([]e2eOpt{
		e2eHeader("X-Original-Method", method), e2eHeader("X-Original-URL", rawURL),
	}, opts...)...)
}

// fwdVerifier verifies minted tokens for audience as an upstream would:
// through Sesame's JWKS alone.
func fwdVerifier(t testing.TB, s *e2eServer, audience string) *httpauth.RemoteVerifier {
	t.Helper()
	v, err := httpauth.NewRemoteVerifier(context.Background(), s.issuer, audience,
		httpauth.WithJWKSURL(s.base+"/.well-known/jwks.json"), httpauth.WithAlgorithm(s.alg))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantIdentity checks the 200's identity headers and returns the minted
// token's claims, verified for audience through the JWKS.
func wantIdentity(t testing.TB, s *e2eServer, r e2eResp, l e2eLogin, email, audience string) string {
	t.Helper()
	r.want(t, http.StatusOK)
	for k, want := range map[string]string{
		"Remote-User": l.userID, "Remote-Email": email, "Remote-Groups": "user", "Remote-Session": l.sessionID,
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", r.req, k, got, want)
		}
	}
	tok, ok := strings.CutPrefix(r.header.Get("Authorization"), "Bearer ")
	if !ok {
		t.Fatalf("%s: Authorization = %q, want a bearer token", r.req, r.header.Get("Authorization"))
	}
	c, err := fwdVerifier(t, s, audience).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("%s: the minted token does not verify for %s through the JWKS: %v", r.req, audience, err)
	}
	if c.SessionID != l.sessionID || c.Subject != l.userID || c.Email != email {
		t.Errorf("minted token sid %q sub %q email %q, want %q %q %q", c.SessionID, c.Subject, c.Email, l.sessionID, l.userID, email)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt); life <= 0 || life > 60*time.Second {
		t.Errorf("minted token lives %v, want at most 60s", life)
	}
	return tok
}

func TestForwardAuthEndpoints(t *testing.T) {
	s := e2eStart(t)
	const app = "app.example.test"

	// Each endpoint reads its own set only; without it, 400.
	s.do(t, "GET", "/v1/forward-auth", nil).want(t, http.StatusBadRequest, "invalid_request")
	s.do(t, "GET", "/v1/forward-auth", nil, e2eHeader("X-Original-Method", "GET"), e2eHeader("X-Original-URL", "https://app.example.test/")).want(t, http.StatusBadRequest)
	s.do(t, "GET", "/v1/auth-request", nil).want(t, http.StatusBadRequest, "invalid_request")
	s.do(t, "GET", "/v1/auth-request", nil, e2eHeader("X-Forwarded-Method", "GET"), e2eHeader("X-Forwarded-Proto", "https"),
		e2eHeader("X-Forwarded-Host", app), e2eHeader("X-Forwarded-Uri", "/")).want(t, http.StatusBadRequest)
	s.fwdAsk(t, "GET", "https", app, "").want(t, http.StatusBadRequest)
	s.fwdAsk(t, "GET", "gopher", app, "/").want(t, http.StatusBadRequest)
	s.fwdAsk(t, "GET", "https", "evil.test@"+app, "/").want(t, http.StatusBadRequest)
	s.authRequest(t, "GET", "app.example.test/x").want(t, http.StatusBadRequest)

	// Envoy's ext_authz asks at its path_prefix + the original path: the
	// suffix is not read, even when it would not canonicalize.
	for _, p := range []string{"/v1/forward-auth/", "/v1/forward-auth/docs/a", "/v1/forward-auth/x/../admin//%2e%2e/"} {
		r := s.do(t, "GET", p, nil, e2eHeader("X-Forwarded-Method", "GET"), e2eHeader("X-Forwarded-Proto", "https"),
			e2eHeader("X-Forwarded-Host", app), e2eHeader("X-Forwarded-Uri", "/"))
		r.wantFor(t, "Envoy's path", http.StatusUnauthorized, "unauthenticated")
	}

	// Not signed in: a browser navigation is sent to the sign-in page,
	// anything else gets 401; nginx's endpoint always 401 with Location.
	orig := "https://app.example.test/docs/a?b=c&d=%2F"
	login := s.issuer + "/login?return_to=" + url.QueryEscape(orig)
	html := e2eHeader("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	r := s.fwdAsk(t, "GET", "https", app, "/docs/a?b=c&d=%2F", html).want(t, http.StatusFound)
	if got := r.header.Get("Location"); got != login {
		t.Errorf("redirect to %q, want %q", got, login)
	}
	s.fwdAsk(t, "HEAD", "https", app, "/", html).want(t, http.StatusFound)
	for _, tc := range []struct{ method, accept string }{
		{"GET", "application/json"}, {"GET", ""}, {"GET", "*/*"}, {"POST", "text/html"}, {"GET", "text/html;q=0"},
	} {
		r := s.fwdAsk(t, tc.method, "https", app, "/", e2eHeader("Accept", tc.accept))
		if r.wantFor(t, tc.method+" Accept: "+tc.accept, http.StatusUnauthorized, "unauthenticated") && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", r.req)
		}
	}
	r = s.authRequest(t, "GET", orig, html).want(t, http.StatusUnauthorized)
	if got := r.header.Get("Location"); got != login {
		t.Errorf("auth-request Location %q, want %q", got, login)
	}

	// Signed in with the cookie: 200, identity, a token for the upstream.
	email, l := s.newUser(t, "fwd")
	r = s.fwdAsk(t, "GET", "https", app, "/", e2eCookie(l.cookie), html)
	tok := wantIdentity(t, s, r, l, email, "https://app.example.test")
	if r.header.Get("Set-Cookie") != "" {
		t.Errorf("forward auth set a cookie: %q", r.header.Values("Set-Cookie"))
	}
	// The token is reused for the same session and audience ...
	r = s.authRequest(t, "POST", "https://APP.example.test:443/x", e2eCookie(l.cookie))
	if wantIdentity(t, s, r, l, email, "https://app.example.test") != tok {
		t.Error("a second decision for the same session and audience minted a new token")
	}
	// ... and not across audiences: a port is part of the origin.
	r = s.authRequest(t, "GET", "http://app.example.test:8080/", e2eCookie(l.cookie))
	other := wantIdentity(t, s, r, l, email, "http://app.example.test:8080")
	if other == tok {
		t.Error("two audiences got the same token")
	}
	// A minted token replayed to another audience, or to Sesame, is refused.
	if _, err := fwdVerifier(t, s, "https://app.example.test").Verify(context.Background(), other); err == nil {
		t.Error("a token minted for http://app.example.test:8080 verifies for https://app.example.test")
	}
	s.fwdAsk(t, "GET", "https", app, "/", e2eBearer(other)).want(t, http.StatusUnauthorized)
	s.do(t, "GET", "/v1/userinfo", nil, e2eBearer(tok)).want(t, http.StatusUnauthorized)

	// A Sesame access token on the original request signs in too.
	tr := s.form(t, "/v1/token", "grant_type=password&username="+url.QueryEscape(email)+"&password="+url.QueryEscape(e2ePassword)).want(t, http.StatusOK).json(t)
	at, _ := tr["access_token"].(string)
	r = s.fwdAsk(t, "GET", "https", app, "/", e2eBearer(at)).want(t, http.StatusOK)
	if r.header.Get("Remote-User") != l.userID || r.header.Get("Remote-Session") == l.sessionID {
		t.Errorf("bearer: Remote-User %q Remote-Session %q, want the token family's session", r.header.Get("Remote-User"), r.header.Get("Remote-Session"))
	}
	s.fwdAsk(t, "GET", "https", app, "/", e2eBearer(at+"x"), e2eCookie(l.cookie)).want(t, http.StatusUnauthorized)

	// Signed out: refused again, and the cached token goes with the session.
	s.do(t, "DELETE", "/v1/session", nil, e2eCookie(l.cookie)).want(t, http.StatusNoContent)
	s.fwdAsk(t, "GET", "https", app, "/", e2eCookie(l.cookie), html).want(t, http.StatusFound)
	s.authRequest(t, "GET", orig, e2eCookie(l.cookie)).want(t, http.StatusUnauthorized)

	// The decisions are counted by result and rule; no secret is logged.
	m := s.do(t, "GET", "/metrics", nil).want(t, http.StatusOK)
	for _, want := range []string{
		`sesame_forward_auth_decisions_total{result="allowed",rule="default"}`,
		`sesame_forward_auth_decisions_total{result="redirected",rule="default"}`,
		`sesame_forward_auth_decisions_total{result="unauthenticated",rule="default"}`,
		`sesame_forward_auth_decisions_total{result="invalid",rule="none"}`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, secret := range []string{l.cookie, tok, at, "b=c"} {
		if strings.Contains(s.log.String(), secret) {
			t.Errorf("the server log contains a secret or a query: %q", secret)
		}
	}
}

// TestForwardAuthIdleTimeout: forward auth is use of the session.
func TestForwardAuthIdleTimeout(t *testing.T) {
	// Uses a second apart keep it alive well past the idle timeout, with
	// room for a slow request on a loaded machine.
	s := e2eStart(t, "--session-idle-timeout", "6s")
	_, l := s.newUser(t, "idle")
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		s.authRequest(t, "GET", "https://app.example.test/", e2eCookie(l.cookie)).want(t, http.StatusOK)
		time.Sleep(time.Second)
	}
	s.wantAlive(t, l.cookie, "a session used only through forward auth for longer than its idle timeout")
}

const fwdRules = `default: deny
rules:
  - name: public
    host: public.example.test
    policy: bypass
  - name: admin
    host: "*.example.test"
    path: /admin/
    methods: [GET, POST]
    roles: [admin]
  - name: app
    host: app.example.test
    policy: signed_in
    audience: https://api.example.test
  - name: blocked
    host: blocked.example.test
    policy: deny
`

func writeRules(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestForwardAuthRules(t *testing.T) {
	rules := writeRules(t, fwdRules)
	s := e2eStart(t, "--access-rules", rules)
	if !strings.Contains(s.log.String(), "admin matches only GET, POST") {
		t.Errorf("no warning that other methods on /admin/ fall to the app rule; log:\n%s", s.log)
	}
	email, l := s.newUser(t, "rules")
	_, adm := s.addAdmin(t)
	me := e2eCookie(l.cookie)
	ask := func(method, host, uri string, opts ...e2eOpt) e2eResp {
		return s.fwdAsk(t, method, "https", host, uri, opts...)
	}

	// bypass: anyone, with the identity when signed in.
	r := ask("GET", "public.example.test", "/").want(t, http.StatusOK)
	for _, k := range []string{"Remote-User", "Remote-Email", "Remote-Groups", "Remote-Session", "Authorization"} {
		// Present and empty, so that a proxy copying it overwrites the client's.
		if v, ok := r.header[k]; !ok || len(v) != 1 || v[0] != "" {
			t.Errorf("bypass without a session: %s = %q, want present and empty", k, v)
		}
	}
	wantIdentity(t, s, ask("GET", "Public.Example.Test.", "/", me), l, email, "https://public.example.test")

	// deny: 403 signed in or not; so is the default.
	ask("GET", "blocked.example.test", "/").want(t, http.StatusForbidden, "forbidden")
	ask("GET", "blocked.example.test", "/", me).want(t, http.StatusForbidden, "forbidden")
	ask("GET", "nowhere.test", "/", me).want(t, http.StatusForbidden, "forbidden")
	ask("GET", "example.test", "/admin/", e2eCookie(adm.cookie)).want(t, http.StatusForbidden) // *.example.test is not example.test

	// roles: not signed in is a sign-in; without the role, 403.
	ask("GET", "app.example.test", "/admin/", e2eHeader("Accept", "text/html")).want(t, http.StatusFound)
	ask("GET", "app.example.test", "/admin/", me).want(t, http.StatusForbidden, "forbidden")
	ask("POST", "wiki.example.test", "/admin/users", me).want(t, http.StatusForbidden)
	ask("GET", "wiki.example.test", "/admin/", e2eCookie(adm.cookie)).want(t, http.StatusOK)
	// Another method goes on to the next rule, as the warning said.
	ask("DELETE", "app.example.test", "/admin/x", me).want(t, http.StatusOK)
	ask("get", "app.example.test", "/admin/", me).want(t, http.StatusForbidden) // methods compare in upper case

	// The rule's audience is the minted token's.
	wantIdentity(t, s, ask("GET", "app.example.test", "/", me), l, email, "https://api.example.test")

	// Path tricks: the rules see the canonical path, or the answer is 400.
	for _, uri := range []string{"/x/../admin/", "//admin/", "/admin", "/./admin/x", "/%61dmin/", "/admin//x", "/admin/?x=/../"} {
		ask("GET", "app.example.test", uri, me).wantFor(t, uri, http.StatusForbidden, "forbidden")
	}
	ask("GET", "app.example.test", "/admin/../x", me).wantFor(t, "/admin/../x is /x", http.StatusOK)
	ask("GET", "app.example.test", "/Admin/", me).wantFor(t, "paths are case-sensitive", http.StatusOK)
	for _, uri := range []string{"/%2e%2e/admin/", "/x/%2E%2E/admin/", "/.%2e/admin/", "/%2e/admin/", "/admin%2Fx", "/x%2f..%2fadmin/", "/a%zz", "/a%", "/%ff", "/a%00", "/public/..;/admin/x", "/admin;x/y", "/public/..%5cadmin/x", "/public/..\\admin/x"} {
		ask("GET", "app.example.test", uri, me).wantFor(t, uri, http.StatusBadRequest, "invalid_request")
		s.authRequest(t, "GET", "https://app.example.test"+uri, me).wantFor(t, uri, http.StatusBadRequest, "invalid_request")
	}

	// Forged headers of the other convention are not read.
	s.authRequest(t, "GET", "https://app.example.test/admin/", me,
		e2eHeader("X-Forwarded-Host", "public.example.test"), e2eHeader("X-Forwarded-Uri", "/"), e2eHeader("X-Forwarded-Method", "GET"), e2eHeader("X-Forwarded-Proto", "https"),
	).want(t, http.StatusForbidden)
	ask("GET", "app.example.test", "/admin/", me, e2eHeader("X-Original-URL", "https://public.example.test/")).want(t, http.StatusForbidden)
	// A header sent twice (a proxy appending to the client's) is not believed.
	s.do(t, "GET", "/v1/forward-auth", nil, me, e2eHeader("X-Forwarded-Method", "GET"), e2eHeader("X-Forwarded-Proto", "https"),
		e2eHeader("X-Forwarded-Uri", "/"), func(r *http.Request) {
			r.Header.Add("X-Forwarded-Host", "public.example.test")
			r.Header.Add("X-Forwarded-Host", "blocked.example.test")
		}).want(t, http.StatusBadRequest)

	m := string(s.do(t, "GET", "/metrics", nil).want(t, http.StatusOK).body)
	for _, want := range []string{`result="forbidden",rule="admin"`, `result="forbidden",rule="blocked"`, `result="forbidden",rule="default"`, `result="allowed",rule="public"`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks a decision counter with %s", want)
		}
	}

	// SIGHUP reloads; a bad file is refused with a log line and the rules
	// in force stay.
	hup := func(body, wantLog string) {
		t.Helper()
		if err := os.WriteFile(rules, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(s.log.String(), wantLog)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(s.log.String(), wantLog) == n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log within 10s of SIGHUP:\n%s", wantLog, s.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hup("default: deny\nrules:\n  - host: blocked.example.test\n    polcy: bypass\n", "access rules not reloaded")
	if !strings.Contains(s.log.String(), "rules.yaml:4: unknown key polcy") {
		t.Errorf("the refusal does not name the file, line and reason:\n%s", s.log)
	}
	ask("GET", "blocked.example.test", "/", me).want(t, http.StatusForbidden)
	hup("default: deny\nrules:\n  - host: blocked.example.test\n    policy: bypass\n", "access rules loaded")
	ask("GET", "blocked.example.test", "/").want(t, http.StatusOK)
	ask("GET", "public.example.test", "/").want(t, http.StatusForbidden)
}

func TestForwardAuthBadRulesStopServe(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"default: deny\nrules:\n  - host: a.test\n    policy: bypass\n    roles: [admin]\n", "rules.yaml:5: rule 1: has both policy and roles"},
		{"rules:\n  - host: a.test\n    policy: allow\n", `rules.yaml:3: rule 1: unknown policy "allow"`},
		{"rules:\n  - host: a.test\n    role: [admin]\n", "rules.yaml:3: unknown key role"},
		{"rules:\n  - host: a.test\n", "rules.yaml:2: rule 1: has neither policy nor roles"},
		{"rules: [\n", "rules.yaml:1:"},
	} {
		p := writeRules(t, tc.body)
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--access-rules", p}, e2eNoEnv, strings.NewReader(""), nil, &e2eLog{})
		if err == nil || !strings.Contains(err.Error(), "--access-rules") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve with %q: %v; want an error with %q", tc.body, err, tc.want)
		}
	}
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--access-rules", filepath.Join(t.TempDir(), "missing.yaml")}, e2eNoEnv, strings.NewReader(""), nil, &e2eLog{})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("serve with a missing rule file: %v", err)
	}
}

func TestCookieDomain(t *testing.T) {
	for _, tc := range []struct{ domain, issuer, want string }{
		{"com", "https://auth.example.com", "public suffix"},
		{"co.uk", "https://auth.example.co.uk", "public suffix"},
		{"github.io", "https://me.github.io", "public suffix"},
		{"test", "https://auth.example.test", "public suffix"},
		{"other.test", "https://auth.example.test", "does not lie under"},
		{"ample.test", "https://auth.example.test", "does not lie under"},
		{"127.0.0.1", "https://127.0.0.1", "not a domain name"},
	} {
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--cookie-domain", tc.domain, "--issuer", tc.issuer}, e2eNoEnv, strings.NewReader(""), nil, &e2eLog{})
		if err == nil || !strings.Contains(err.Error(), "--cookie-domain") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--cookie-domain %s --issuer %s: %v; want an error with %q", tc.domain, tc.issuer, err, tc.want)
		}
	}

	s := e2eStart(t, "--cookie-domain", "Example.test", "--issuer", "https://auth.example.test")
	email := e2eEmail("sso")
	s.register(t, email, e2ePassword)
	r := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword}).want(t, http.StatusCreated)
	var cookie *http.Cookie
	for _, c := range r.cookies() {
		switch c.Name {
		case "__Secure-sesame":
			cookie = c
		case e2eCookieName:
			t.Errorf("with --cookie-domain the login set %s", e2eCookieName)
		}
	}
	if cookie == nil || cookie.Domain != "example.test" || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("Set-Cookie %q, want __Secure-sesame; Domain=example.test; Secure; HttpOnly; SameSite=Lax; Path=/", r.header.Values("Set-Cookie"))
	}
	sso := func(r *http.Request) { r.Header.Add("Cookie", "__Secure-sesame="+cookie.Value) }
	s.do(t, "GET", "/v1/session", nil, sso).want(t, http.StatusOK)
	s.fwdAsk(t, "GET", "https", "wiki.example.test", "/", sso).want(t, http.StatusOK)
	// A stray __Host-sesame, even of a live session, is ignored.
	s.do(t, "GET", "/v1/session", nil, e2eCookie(cookie.Value)).want(t, http.StatusUnauthorized)
	s.authRequest(t, "GET", "https://wiki.example.test/", e2eCookie(cookie.Value)).want(t, http.StatusUnauthorized)
	// Signing out clears the domain cookie.
	r = s.do(t, "DELETE", "/v1/session", nil, sso).want(t, http.StatusNoContent)
	if v := strings.Join(r.header.Values("Set-Cookie"), "\n"); !strings.Contains(v, "__Secure-sesame=;") || !strings.Contains(v, "Domain=example.test") {
		t.Errorf("logout Set-Cookie %q, want __Secure-sesame cleared for Domain=example.test", v)
	}
	s.fwdAsk(t, "GET", "https", "wiki.example.test", "/", sso).want(t, http.StatusUnauthorized)
}
