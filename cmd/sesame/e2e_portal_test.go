package main

// End-to-end tests of the sign-in portal over HTTP (API.md "Pages for
// people"): every rule of every page, as a browser, a script and an
// attacker would meet it. The same flows in a real browser are in
// e2e_browser_test.go.

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// e2ePortalPath reports whether a request ("METHOD /path?query", maybe
// after a node label) is for a page of the portal rather than the API.
func e2ePortalPath(req string) bool {
	f := strings.Fields(req)
	if len(f) == 0 {
		return false
	}
	p, _, _ := strings.Cut(f[len(f)-1], "?")
	switch p {
	case "/login", "/register", "/account", "/logout", "/admin":
		return true
	}
	return strings.HasPrefix(p, "/account/") || strings.HasPrefix(p, "/admin/")
}

// e2eCheckPage checks what every page response must satisfy: a redirect
// has a Location and the pages' Referrer-Policy (the browser follows it
// under that policy); anything else is HTML sent with a CSP that allows no
// script and no framing, with nosniff, and carries no script and nothing
// of an internal error.
func e2eCheckPage(t testing.TB, r e2eResp) {
	t.Helper()
	if r.status == http.StatusSeeOther {
		if r.header.Get("Location") == "" {
			t.Errorf("%s: 303 without Location", r.req)
		}
		if v := r.header.Get("Referrer-Policy"); v != "same-origin" {
			t.Errorf("%s: 303 with Referrer-Policy %q, want same-origin", r.req, v)
		}
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("%s: %d has Content-Type %q, want text/html; charset=utf-8", r.req, r.status, ct)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %s", r.req, csp, want)
		}
	}
	for _, bad := range []string{"script-src", "unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("%s: CSP %q contains %s", r.req, csp, bad)
		}
	}
	if v := r.header.Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", r.req, v)
	}
	low := bytes.ToLower(r.body)
	if bytes.Contains(low, []byte("<script")) || bytes.Contains(low, []byte(" on")) && regexp.MustCompile(`<[^>]+\son[a-z]+=`).Match(low) {
		t.Errorf("%s: the page has script in it:\n%s", r.req, r.body)
	}
	for _, bad := range e2eForbiddenInErrors {
		if r.status >= 400 && bytes.Contains(r.body, []byte(bad)) {
			t.Errorf("%s: error page %d contains %q", r.req, r.status, bad)
		}
	}
}

// e2eCrossSite makes a request look like a form post from another site.
func e2eCrossSite(origin string) e2eOpt {
	return func(r *http.Request) {
		r.Header.Set("Origin", origin)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	}
}

// e2eSameOrigin makes a request look like a form post from the server's
// own pages, as a browser sends it.
func e2eSameOrigin(s *e2eServer) e2eOpt {
	return func(r *http.Request) {
		r.Header.Set("Origin", s.base)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
}

// pageLogin signs in through POST /login and returns the response.
func (s *e2eServer) pageLogin(t testing.TB, email, password, returnTo string, opts ...e2eOpt) e2eResp {
	t.Helper()
	v := url.Values{"email": {email}, "password": {password}}
	if returnTo != "" {
		v.Set("return_to", returnTo)
	}
	return s.form(t, "/login", v.Encode(), append([]e2eOpt{e2eSameOrigin(s)}, opts...)...)
}

func (r e2eResp) location() string { return r.header.Get("Location") }

func (r e2eResp) wantPage(t testing.TB, status int, contains ...string) e2eResp {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body:\n%s", r.req, r.status, status, r.body)
	}
	for _, c := range contains {
		if !bytes.Contains(r.body, []byte(c)) {
			t.Errorf("%s: page lacks %q:\n%s", r.req, c, r.body)
		}
	}
	return r
}

func (r e2eResp) wantRedirect(t testing.TB, loc string) e2eResp {
	t.Helper()
	if r.status != http.StatusSeeOther || r.location() != loc {
		t.Errorf("%s: %d to %q, want 303 to %q; body %s", r.req, r.status, r.location(), loc, r.body)
	}
	return r
}

func TestPortalLogin(t *testing.T) {
	s := e2eStart(t, "--allowed-origins", "http://localhost:9000", "--session-store", "memory")
	email := e2eEmail("portal")
	s.register(t, email, e2ePassword)

	s.do(t, "GET", "/login", nil).wantPage(t, 200, `action="/login"`, `name="email"`, `name="password"`, `type="password"`)
	s.do(t, "GET", "/", nil).wantRedirect(t, "/account")

	// One message for a wrong password and an unknown email.
	wrong := s.pageLogin(t, email, "not the password", "").wantPage(t, http.StatusUnauthorized, `action="/login"`)
	unknown := s.pageLogin(t, e2eEmail("nobody"), "not the password", "").wantPage(t, http.StatusUnauthorized, `action="/login"`)
	msg := regexp.MustCompile(`role="alert">([^<]*)<`)
	mw, mu := msg.FindSubmatch(wrong.body), msg.FindSubmatch(unknown.body)
	if mw == nil || mu == nil || !bytes.Equal(mw[1], mu[1]) {
		t.Errorf("the message for a wrong password (%q) and an unknown email (%q) differ, or one is missing", mw, mu)
	}
	if len(wrong.setCookies()) != 0 || len(unknown.setCookies()) != 0 {
		t.Error("a failed sign-in set the session cookie")
	}

	r := s.pageLogin(t, email, e2ePassword, "").wantRedirect(t, "/account")
	raw := r.rawSetCookie(t)
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(raw, attr) {
			t.Errorf("Set-Cookie %q lacks %s", raw, attr)
		}
	}
	cookie := r.setCookies()[0].Value
	s.wantAlive(t, cookie, "the page sign-in's cookie")
	s.do(t, "GET", "/account", nil, e2eCookie(cookie)).wantPage(t, 200, email, "Where you are signed in")

	// Signing in again ends the session the browser had.
	again := s.pageLogin(t, email, e2ePassword, "/account", e2eCookie(cookie)).wantRedirect(t, "/account")
	s.wantDead(t, cookie, "the session a new sign-in replaced")
	s.wantAlive(t, again.setCookies()[0].Value, "the new sign-in")
}

func TestPortalReturnTo(t *testing.T) {
	s := e2eStart(t, "--allowed-origins", "http://localhost:9000", "--session-store", "memory")
	email := e2eEmail("rt")
	s.register(t, email, e2ePassword)
	for _, tc := range []struct{ returnTo, want string }{
		{"/admin?x=1", "/admin?x=1"},
		{s.issuer + "/account#top", s.issuer + "/account#top"},
		{"http://localhost:9000/cb?a=b", "http://localhost:9000/cb?a=b"},
		{"", "/account"},
		{"//evil.test/", "/account"},
		{"/\\evil.test/", "/account"},
		{"\\\\evil.test", "/account"},
		{"/\t/evil.test", "/account"},
		{" /account", "/account"},
		{"https://evil.test/", "/account"},
		{"http://localhost:9000@evil.test/", "/account"},
		{"http://user@localhost:9000/", "/account"},
		{"http://localhost:9001/", "/account"},
		{"https://localhost:9000/", "/account"},
		{"javascript:alert(document.cookie)", "/account"},
		{"data:text/html,<script>alert(1)</script>", "/account"},
		{"http:evil.test", "/account"},
		{"https:/evil.test", "/account"},
		{"/%0d%0aSet-Cookie:x=y", "/%0d%0aSet-Cookie:x=y"}, // a path here, escapes and all: no header split
		{"/a\r\nSet-Cookie: x=y", "/account"},
		{"account", "/account"},
	} {
		r := s.pageLogin(t, email, e2ePassword, tc.returnTo)
		if r.status != http.StatusSeeOther || r.location() != tc.want {
			t.Errorf("POST /login return_to=%q: %d to %q, want 303 to %q", tc.returnTo, r.status, r.location(), tc.want)
		}
		if len(r.header.Values("Set-Cookie")) != 1 {
			t.Errorf("return_to=%q: Set-Cookie %q, want the session cookie alone", tc.returnTo, r.header.Values("Set-Cookie"))
		}
		cookie := r.setCookies()[0].Value

		// The sign-in page carries only an allowed return_to on.
		page := s.do(t, "GET", "/login?return_to="+url.QueryEscape(tc.returnTo), nil).wantPage(t, 200)
		hidden := regexp.MustCompile(`name="return_to" value="([^"]*)"`).FindSubmatch(page.body)
		if hidden == nil {
			t.Fatalf("GET /login has no return_to field:\n%s", page.body)
		}
		if tc.want == "/account" && tc.returnTo != "/account" && len(hidden[1]) != 0 {
			t.Errorf("GET /login?return_to=%q carries %q on", tc.returnTo, hidden[1])
		}

		// Sign-out follows the same rule, falling back to /login.
		wantOut := tc.want
		if wantOut == "/account" && tc.returnTo != "/account" {
			wantOut = "/login"
		}
		out := s.form(t, "/logout", url.Values{"return_to": {tc.returnTo}}.Encode(), e2eCookie(cookie), e2eSameOrigin(s))
		if out.status != http.StatusSeeOther || out.location() != wantOut {
			t.Errorf("POST /logout return_to=%q: %d to %q, want 303 to %q", tc.returnTo, out.status, out.location(), wantOut)
		}
	}
}

func TestPortalThrottled(t *testing.T) {
	s := e2eStart(t, "--login-account-limit", "2", "--session-store", "memory")
	email := e2eEmail("throttle")
	s.register(t, email, e2ePassword)
	var r e2eResp
	for i := 0; i < 4; i++ {
		if r = s.pageLogin(t, email, "wrong password!", ""); r.status == http.StatusTooManyRequests {
			break
		}
	}
	r.wantPage(t, http.StatusTooManyRequests, "Too many attempts")
	e2eRetryAfter(t, r)
	if !strings.Contains(string(r.body), "try again in "+r.header.Get("Retry-After")+" second") {
		t.Errorf("the 429 page does not say when to retry (Retry-After %s):\n%s", r.header.Get("Retry-After"), r.body)
	}
}

func TestPortalRegister(t *testing.T) {
	t.Run("open", func(t *testing.T) {
		s := e2eStart(t, "--session-store", "memory")
		s.do(t, "GET", "/register", nil).wantPage(t, 200, `action="/register"`)
		email := e2eEmail("reg")
		r := s.form(t, "/register", url.Values{"email": {email}, "password": {e2ePassword}, "password_again": {e2ePassword}}.Encode(), e2eSameOrigin(s)).wantRedirect(t, "/account")
		s.wantAlive(t, r.setCookies()[0].Value, "the new account's first session")
		s.form(t, "/register", url.Values{"email": {strings.ToUpper(email)}, "password": {e2ePassword}}.Encode(), e2eSameOrigin(s)).wantPage(t, http.StatusConflict)
		s.form(t, "/register", url.Values{"email": {"not an email"}, "password": {e2ePassword}}.Encode(), e2eSameOrigin(s)).wantPage(t, http.StatusBadRequest)
		s.form(t, "/register", url.Values{"email": {e2eEmail("short")}, "password": {"short"}}.Encode(), e2eSameOrigin(s)).wantPage(t, http.StatusBadRequest)
		s.form(t, "/register", url.Values{"email": {e2eEmail("x")}, "password": {e2ePassword}}.Encode(), e2eCrossSite("http://evil.test")).wantPage(t, http.StatusForbidden)
	})
	t.Run("closed", func(t *testing.T) {
		s := e2eStart(t, "--registration", "closed", "--session-store", "memory")
		s.do(t, "GET", "/register", nil).wantPage(t, http.StatusForbidden)
		s.form(t, "/register", url.Values{"email": {e2eEmail("c")}, "password": {e2ePassword}}.Encode(), e2eSameOrigin(s)).wantPage(t, http.StatusForbidden)
		if got := s.do(t, "GET", "/login", nil).body; bytes.Contains(got, []byte(`href="/register"`)) {
			t.Error("the sign-in page links to registration while it is closed")
		}
	})
}

func TestPortalAccount(t *testing.T) {
	s := e2eStart(t, "--session-store", "memory")
	s.do(t, "GET", "/account", nil).wantRedirect(t, "/login?return_to=/account")
	s.do(t, "GET", "/account", nil, e2eCookie(e2eRandomSecret())).wantRedirect(t, "/login?return_to=/account")

	email := e2eEmail("acct")
	s.register(t, email, e2ePassword)
	xss := `<script>alert(1)</script><img src=x onerror=alert(2)> Mozilla/5.0 (Windows NT 10.0) Firefox/128.0`
	a := s.login(t, email, e2ePassword)
	b := s.login(t, email, e2ePassword, e2eHeader("User-Agent", xss))
	c := s.login(t, email, e2ePassword, e2eHeader("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Version/17.1 Mobile/15E148 Safari/604.1"))

	page := s.do(t, "GET", "/account", nil, e2eCookie(a.cookie)).wantPage(t, 200, email, "this device", "Firefox 128 on Windows", "Safari 17 on iPhone", "Sign out everywhere else", `action="/account/password"`)
	for _, secret := range []string{a.cookie, b.cookie, c.cookie} {
		if bytes.Contains(page.body, []byte(secret)) {
			t.Fatal("/account shows a session secret")
		}
	}
	if bytes.Contains(page.body, []byte("<img")) || bytes.Contains(page.body, []byte("alert(")) {
		t.Errorf("/account shows what the user agent sent:\n%s", page.body)
	}

	// End one other session; then every other; the caller's stays.
	s.form(t, "/account/sessions/end", "id="+b.sessionID, e2eCookie(a.cookie), e2eSameOrigin(s)).wantRedirect(t, "/account?done=ended")
	s.wantDead(t, b.cookie, "the session ended from /account")
	s.wantAlive(t, c.cookie, "a session not ended")
	s.form(t, "/account/sessions/end", "id="+b.sessionID, e2eCookie(a.cookie), e2eSameOrigin(s)).wantPage(t, http.StatusNotFound)
	s.form(t, "/account/sessions/end-others", "", e2eCookie(a.cookie), e2eSameOrigin(s)).wantRedirect(t, "/account?done=others")
	s.wantDead(t, c.cookie, "a session after sign out everywhere else")
	s.wantAlive(t, a.cookie, "the caller's session after sign out everywhere else")

	// Another user's session id ends nothing.
	_, other := s.newUser(t, "other")
	s.form(t, "/account/sessions/end", "id="+other.sessionID, e2eCookie(a.cookie), e2eSameOrigin(s)).wantPage(t, http.StatusNotFound)
	s.wantAlive(t, other.cookie, "another user's session named in /account's form")

	// Password change: the wrong current password changes nothing.
	d := s.login(t, email, e2ePassword)
	s.form(t, "/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"a new long password"}}.Encode(), e2eCookie(a.cookie), e2eSameOrigin(s)).wantPage(t, http.StatusBadRequest)
	s.wantAlive(t, d.cookie, "a session after a refused password change")
	s.form(t, "/account/password", url.Values{"current_password": {e2ePassword}, "new_password": {"a new long password"}}.Encode(), e2eCookie(a.cookie), e2eSameOrigin(s)).wantRedirect(t, "/account?done=password")
	s.wantDead(t, d.cookie, "another session after a password change")
	s.wantAlive(t, a.cookie, "the caller's session after a password change")
	s.login(t, email, "a new long password")

	// Ending this very session signs out.
	r := s.form(t, "/account/sessions/end", "id="+a.sessionID, e2eCookie(a.cookie), e2eSameOrigin(s)).wantRedirect(t, "/login")
	if cs := r.setCookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("ending this session did not clear the cookie: %q", r.header.Values("Set-Cookie"))
	}
	s.wantDead(t, a.cookie, "the session that ended itself from /account")
	s.form(t, "/account/sessions/end-others", "", e2eCookie(a.cookie), e2eSameOrigin(s)).wantRedirect(t, "/login?return_to=/account")
}

func TestPortalLogout(t *testing.T) {
	s := e2eStart(t, "--session-store", "memory")
	email, l := s.newUser(t, "out")
	page := s.do(t, "GET", "/logout?return_to=/account", nil, e2eCookie(l.cookie)).wantPage(t, 200, email, `method="post" action="/logout"`, `value="/account"`)
	_ = page
	s.do(t, "GET", "/logout", nil).wantPage(t, 200, "not signed in")
	s.wantAlive(t, l.cookie, "a session whose sign-out page was only looked at")
	r := s.form(t, "/logout", "", e2eCookie(l.cookie), e2eSameOrigin(s)).wantRedirect(t, "/login")
	if cs := r.setCookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("POST /logout did not clear the cookie: %q", r.header.Values("Set-Cookie"))
	}
	s.wantDead(t, l.cookie, "a session after POST /logout")
	// Without a session, or with an ended one, sign-out still lands.
	s.form(t, "/logout", "", e2eSameOrigin(s)).wantRedirect(t, "/login")
	s.form(t, "/logout", "", e2eCookie(l.cookie), e2eSameOrigin(s)).wantRedirect(t, "/login")
}

// TestPortalCrossOrigin posts every form of the portal from another
// origin: each is a 403 page, and nothing changes.
func TestPortalCrossOrigin(t *testing.T) {
	s := e2eStart(t, "--allowed-origins", "http://localhost:9000", "--session-store", "memory")
	email, l := s.newUser(t, "csrf")
	victimEmail, victim := s.newUser(t, "victim")
	_, al := s.addAdmin(t)
	attacks := []e2eOpt{
		e2eCrossSite("http://evil.test"),
		func(r *http.Request) {
			r.Header.Set("Origin", "http://127.0.0.1:1")
			r.Header.Set("Sec-Fetch-Site", "same-site")
		},
		e2eHeader("Origin", "null"),
		e2eHeader("Origin", "http://evil.test"), // no Sec-Fetch-Site: an older browser
		func(r *http.Request) {
			r.Header.Set("Origin", "http://evil.test")
			r.Header.Set("Sec-Fetch-Site", "same-origin")
		},
		e2eHeader("Sec-Fetch-Site", "cross-site"),
	}
	for i, attack := range attacks {
		for _, f := range []struct{ path, body, cookie string }{
			{"/login", url.Values{"email": {email}, "password": {e2ePassword}}.Encode(), ""},
			{"/register", url.Values{"email": {e2eEmail("planted")}, "password": {e2ePassword}}.Encode(), ""},
			{"/logout", "", l.cookie},
			{"/account/sessions/end", "id=" + l.sessionID, l.cookie},
			{"/account/sessions/end-others", "", l.cookie},
			{"/account/password", url.Values{"current_password": {e2ePassword}, "new_password": {"hijacked password"}}.Encode(), l.cookie},
			{"/admin/sessions/end", "user_id=" + victim.userID, al.cookie},
			{"/admin/users/disabled", "disabled=true&user_id=" + victim.userID, al.cookie},
			{"/admin/users/admin-role", "admin=true&user_id=" + victim.userID, al.cookie},
			{"/admin/users/delete", "confirm=yes&user_id=" + victim.userID, al.cookie},
			{"/admin/users/admin-role", "admin=false&user_id=" + al.userID, al.cookie},
		} {
			var opts []e2eOpt
			if f.cookie != "" {
				opts = append(opts, e2eCookie(f.cookie))
			}
			r := s.form(t, f.path, f.body, append(opts, attack)...)
			if r.status != http.StatusForbidden || len(r.header.Values("Set-Cookie")) != 0 {
				t.Errorf("attack %d: POST %s: %d with Set-Cookie %q, want a 403 page and no cookie", i, f.path, r.status, r.header.Values("Set-Cookie"))
			}
		}
	}
	s.wantAlive(t, l.cookie, "a session after cross-origin sign-out and ending attempts")
	s.wantAlive(t, victim.cookie, "a session after a cross-origin admin end-all, disable, role change and delete")
	s.login(t, victimEmail, e2ePassword) // neither disabled nor deleted
	s.do(t, "GET", "/admin", nil, e2eCookie(victim.cookie)).wantPage(t, http.StatusForbidden)
	s.wantAlive(t, al.cookie, "the admin's session after a cross-origin removal of the admin's role")
	s.do(t, "GET", "/admin", nil, e2eCookie(al.cookie)).wantPage(t, http.StatusOK)
	s.login(t, email, e2ePassword) // the password is unchanged
	// An allowed origin may post (as API.md's csrf rule says).
	s.form(t, "/logout", "", e2eCookie(l.cookie), e2eHeader("Origin", "http://localhost:9000"), e2eHeader("Sec-Fetch-Site", "same-site")).wantRedirect(t, "/login")
	s.wantDead(t, l.cookie, "a sign-out posted from an allowed origin")
}

func TestPortalAdmin(t *testing.T) {
	s := e2eStart(t, "--session-store", "memory")
	s.do(t, "GET", "/admin", nil).wantRedirect(t, "/login")
	userEmail, ul := s.newUser(t, "plain")
	s.do(t, "GET", "/admin", nil, e2eCookie(ul.cookie)).wantPage(t, http.StatusForbidden, "administrators")
	s.form(t, "/admin/sessions/end", "user_id="+ul.userID, e2eCookie(ul.cookie), e2eSameOrigin(s)).wantPage(t, http.StatusForbidden)
	s.wantAlive(t, ul.cookie, "a session a non-admin tried to end from /admin")

	_, al := s.addAdmin(t)
	s.pageLogin(t, userEmail, "a wrong password", "")
	page := s.do(t, "GET", "/admin", nil, e2eCookie(al.cookie)).wantPage(t, 200, userEmail, "login.failed", "login.succeeded")
	_ = page
	s.do(t, "GET", "/admin?q="+url.QueryEscape("PLAIN"), nil, e2eCookie(al.cookie)).wantPage(t, 200, userEmail)
	s.do(t, "GET", "/admin?q=nobody-matches", nil, e2eCookie(al.cookie)).wantPage(t, 200, "No user matches")
	xss := s.do(t, "GET", "/admin?q="+url.QueryEscape(`"><script>alert(1)</script>`), nil, e2eCookie(al.cookie)).wantPage(t, 200, "&lt;script&gt;")
	_ = xss

	sel := s.do(t, "GET", "/admin?user="+ul.userID+"&type=login.failed", nil, e2eCookie(al.cookie)).wantPage(t, 200, "Sessions of "+userEmail, "End all sessions", "login.failed")
	if bytes.Contains(sel.body, []byte("<td>login.succeeded</td>")) {
		t.Error("/admin?type=login.failed lists other event types")
	}
	s.form(t, "/admin/sessions/end", "user_id="+ul.userID, e2eCookie(al.cookie), e2eSameOrigin(s)).wantRedirect(t, "/admin?done=ended&user="+ul.userID)
	s.wantDead(t, ul.cookie, "a session an admin ended from /admin")
	s.wantAlive(t, al.cookie, "the admin's own session")
	s.form(t, "/admin/sessions/end", "user_id=nobody", e2eCookie(al.cookie), e2eSameOrigin(s)).wantPage(t, http.StatusNotFound)

	testPortalAdminUserControls(t, s, al, userEmail)

	// Pages of the audit log: 50 a page, newest first.
	for i := 0; i < 60; i++ {
		s.do(t, "POST", "/v1/session", map[string]string{"email": e2eEmail("ghost"), "password": "nothing at all"})
	}
	p1 := s.do(t, "GET", "/admin?type=login.failed", nil, e2eCookie(al.cookie)).wantPage(t, 200, "Older")
	p2 := s.do(t, "GET", "/admin?type=login.failed&page=2", nil, e2eCookie(al.cookie)).wantPage(t, 200, "Newer", "page 2")
	if n := bytes.Count(p1.body, []byte("<td>login.failed</td>")); n != 50 {
		t.Errorf("page 1 of the audit log has %d events, want 50", n)
	}
	if n := bytes.Count(p2.body, []byte("<td>login.failed</td>")); n < 1 || n > 50 {
		t.Errorf("page 2 of the audit log has %d events", n)
	}
	_ = time.Now
}

// TestPortalReturnToCookieDomain: with --cookie-domain, a sign-in may go on
// to any host under it (forward auth sends people back that way), and to
// nothing merely ending in its name.
func TestPortalReturnToCookieDomain(t *testing.T) {
	s := e2eStart(t, "--issuer", "https://auth.example.test", "--cookie-domain", "example.test", "--session-store", "memory")
	email := e2eEmail("sso")
	s.register(t, email, e2ePassword)
	for returnTo, want := range map[string]string{
		"https://app.example.test/x?y=1":      "https://app.example.test/x?y=1",
		"http://example.test/":                "http://example.test/",
		"https://auth.example.test/":          "https://auth.example.test/",
		"https://evilexample.test/":           "/account",
		"https://example.test.evil.test/":     "/account",
		"https://app.example.test@evil.test/": "/account",
	} {
		r := s.pageLogin(t, email, e2ePassword, returnTo)
		if r.status != http.StatusSeeOther || r.location() != want {
			t.Errorf("return_to=%q: %d to %q, want 303 to %q", returnTo, r.status, r.location(), want)
		}
	}
}

// testPortalAdminUserControls drives /admin's forms that disable, enable,
// promote, demote and delete a user, as PATCH and DELETE
// /v1/admin/users/{id} do, each audited with the admin as actor.
func testPortalAdminUserControls(t *testing.T, s *e2eServer, al e2eLogin, email string) {
	admin := func(path, body string) e2eResp {
		t.Helper()
		return s.form(t, path, body, e2eCookie(al.cookie), e2eSameOrigin(s))
	}
	u := s.login(t, email, e2ePassword)
	page := s.do(t, "GET", "/admin?user="+u.userID, nil, e2eCookie(al.cookie)).wantPage(t, 200,
		"Manage "+email, `action="/admin/users/disabled"`, `action="/admin/users/admin-role"`, `action="/admin/users/delete"`, `name="confirm"`)
	if !bytes.Contains(page.body, []byte(`type="checkbox" id="confirm-delete" name="confirm" value="yes" required`)) {
		t.Errorf("/admin's delete form has no required confirmation box:\n%s", page.body)
	}

	// A user who is not an admin can use none of them.
	for _, f := range []string{"/admin/users/disabled", "/admin/users/admin-role", "/admin/users/delete"} {
		s.form(t, f, "disabled=true&admin=true&confirm=yes&user_id="+u.userID, e2eCookie(u.cookie), e2eSameOrigin(s)).wantPage(t, http.StatusForbidden)
	}
	s.wantAlive(t, u.cookie, "a user's session after they tried /admin's forms on themselves")

	// Disable: the session ends and no sign-in passes; enable: it does.
	admin("/admin/users/disabled", "user_id="+u.userID+"&disabled=true").wantRedirect(t, "/admin?done=disabled&user="+u.userID)
	s.wantDead(t, u.cookie, "a session of a user disabled from /admin")
	s.pageLogin(t, email, e2ePassword, "").wantPage(t, http.StatusUnauthorized)
	s.do(t, "GET", "/admin?done=disabled&user="+u.userID, nil, e2eCookie(al.cookie)).wantPage(t, 200, "That user is disabled", "disabled: cannot sign in", "Enable "+email)
	admin("/admin/users/disabled", "user_id="+u.userID+"&disabled=maybe").wantPage(t, http.StatusBadRequest)
	admin("/admin/users/disabled", "user_id="+u.userID+"&disabled=false").wantRedirect(t, "/admin?done=enabled&user="+u.userID)
	u = s.login(t, email, e2ePassword)

	// Grant the admin role, then remove it (which ends the sessions).
	admin("/admin/users/admin-role", "user_id="+u.userID+"&admin=true").wantRedirect(t, "/admin?done=granted&user="+u.userID)
	s.do(t, "GET", "/admin", nil, e2eCookie(u.cookie)).wantPage(t, 200, "Administration")
	s.do(t, "GET", "/admin?user="+u.userID, nil, e2eCookie(al.cookie)).wantPage(t, 200, "user, admin", "Remove the admin role")
	admin("/admin/users/admin-role", "user_id="+u.userID+"&admin=false").wantRedirect(t, "/admin?done=removed&user="+u.userID)
	s.wantDead(t, u.cookie, "a session of a user whose admin role was removed")
	u = s.login(t, email, e2ePassword)
	s.do(t, "GET", "/admin", nil, e2eCookie(u.cookie)).wantPage(t, http.StatusForbidden)

	// /admin's audit table says who did it: the admin, by email.
	adminEmail, _ := al.body["user"].(map[string]any)["email"].(string)
	s.do(t, "GET", "/admin?type=user.disabled&user="+u.userID, nil, e2eCookie(al.cookie)).wantPage(t, http.StatusOK,
		`<th scope="col">By</th>`, "<td>"+adminEmail+"</td></tr>")

	// Delete: not without the confirmation box; then the user is gone.
	admin("/admin/users/delete", "user_id="+u.userID).wantPage(t, http.StatusBadRequest, "tick the box")
	admin("/admin/users/delete", "user_id="+u.userID+"&confirm=on").wantPage(t, http.StatusBadRequest)
	s.wantAlive(t, u.cookie, "a session of a user whose deletion was not confirmed")
	admin("/admin/users/delete", "user_id="+u.userID+"&confirm=yes").wantRedirect(t, "/admin?done=deleted")
	s.wantDead(t, u.cookie, "a session of a user deleted from /admin")
	s.pageLogin(t, email, e2ePassword, "").wantPage(t, http.StatusUnauthorized)
	for _, f := range []string{"/admin/users/disabled", "/admin/users/admin-role", "/admin/users/delete"} {
		admin(f, "disabled=true&admin=true&confirm=yes&user_id="+u.userID).wantPage(t, http.StatusNotFound)
	}

	// Every change is in the audit log with the admin as its actor.
	r := s.do(t, "GET", "/v1/admin/audit?user_id="+u.userID, nil, e2eCookie(al.cookie)).want(t, http.StatusOK)
	events, _ := r.json(t)["events"].([]any)
	actors := map[string]int{}
	for _, x := range events {
		m, _ := x.(map[string]any)
		typ, _ := m["type"].(string)
		if strings.HasPrefix(typ, "user.") && typ != "user.created" {
			if m["actor"] != al.userID {
				t.Errorf("audit event %s has actor %v, want the admin %s", typ, m["actor"], al.userID)
			}
			actors[typ]++
		}
	}
	for typ, n := range map[string]int{"user.disabled": 1, "user.enabled": 1, "user.roles_changed": 2, "user.deleted": 1} {
		if actors[typ] != n {
			t.Errorf("audit log has %d %s events, want %d (all: %v)", actors[typ], typ, n, actors)
		}
	}
}
