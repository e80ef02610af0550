package main

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestE2ELogin covers POST /v1/session: the cookie's attributes and
// strength, the response, indistinguishable failures, and that every login
// gets a new identifier and ends the session it arrived with.
func TestE2ELogin(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	email := e2eEmail("login")
	userID := s.register(t, email, e2ePassword)

	t.Run("cookie and response", func(t *testing.T) {
		r := s.do(t, "POST", "/v1/session", map[string]string{"email": strings.ToUpper(email), "password": e2ePassword}).
			want(t, http.StatusCreated)
		raw := r.rawSetCookie(t)
		parts := strings.Split(raw, ";")
		value := strings.TrimPrefix(strings.TrimSpace(parts[0]), e2eCookieName+"=")
		attrs := map[string]string{}
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			attrs[strings.ToLower(k)] = v
		}
		for k, v := range map[string]string{"httponly": "", "secure": "", "samesite": "Lax", "path": "/"} {
			if got, ok := attrs[k]; !ok || got != v {
				t.Errorf("Set-Cookie %q: attribute %s is %q (present %v), want %q", raw, k, got, ok, v)
			}
		}
		for k := range attrs {
			switch k {
			case "httponly", "secure", "samesite", "path", "max-age", "expires":
			default:
				t.Errorf("Set-Cookie %q: unexpected attribute %q (no Domain or anything else allowed)", raw, k)
			}
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(value) {
			t.Errorf("cookie value %q is not base64url without padding", value)
		} else if b, err := base64.RawURLEncoding.DecodeString(value); err != nil || len(b) < 32 {
			t.Errorf("cookie value %q decodes to %d bytes (%v), want at least 32 (256 bits)", value, len(b), err)
		}

		m := r.json(t)
		u, _ := m["user"].(map[string]any)
		ss, _ := m["session"].(map[string]any)
		if u == nil || ss == nil {
			t.Fatalf("201 body %s: want objects user and session", r.body)
		}
		e2eKeys(t, "user", u, "id", "email", "roles", "created_at")
		e2eKeys(t, "session", ss, "id", "created_at", "expires_at")
		if u["id"] != userID || u["email"] != email {
			t.Errorf("user = %v, want id %s email %s", u, userID, email)
		}
		if roles, _ := u["roles"].([]any); !slices.Contains(roles, any("user")) || slices.Contains(roles, any("admin")) {
			t.Errorf("roles = %v, want [user]", u["roles"])
		}
		e2eTime(t, u, "created_at")
		created, expires := e2eTime(t, ss, "created_at"), e2eTime(t, ss, "expires_at")
		if !expires.After(created) {
			t.Errorf("session expires_at %v is not after created_at %v", expires, created)
		}
		sid, _ := ss["id"].(string)
		if sid == "" || sid == value || strings.Contains(value, sid) || strings.Contains(sid, value) {
			t.Errorf("session id %q vs cookie %q: the public id must be neither the secret nor part of it", sid, value)
		}
		if bytes.Contains(r.body, []byte(value)) {
			t.Errorf("201 body contains the cookie's secret: %s", r.body)
		}
		for _, leak := range []string{"argon2", "password", e2ePassword} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("201 body contains %q: %s", leak, r.body)
			}
		}

		g := s.do(t, "GET", "/v1/session", nil, e2eCookie(value)).want(t, http.StatusOK).json(t)
		gu, _ := g["user"].(map[string]any)
		gs, _ := g["session"].(map[string]any)
		if gu["id"] != userID || gs["id"] != sid {
			t.Errorf("GET /v1/session = %v, want user %s session %s", g, userID, sid)
		}
		e2eKeys(t, "GET user", gu, "id", "email", "roles", "created_at")
		e2eKeys(t, "GET session", gs, "id", "created_at", "expires_at")
	})

	t.Run("failures are indistinguishable", func(t *testing.T) {
		wrong := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "not the password"}).
			want(t, http.StatusUnauthorized, "invalid_credentials")
		unknown := s.do(t, "POST", "/v1/session", map[string]string{"email": e2eEmail("nobody"), "password": "not the password"}).
			want(t, http.StatusUnauthorized, "invalid_credentials")
		invalid := s.do(t, "POST", "/v1/session", map[string]string{"email": "not an email", "password": "not the password"}).
			want(t, http.StatusUnauthorized, "invalid_credentials")
		for _, r := range []e2eResp{unknown, invalid} {
			if !bytes.Equal(r.body, wrong.body) {
				t.Errorf("bodies differ:\nwrong password: %s\nunknown email:  %s", wrong.body, r.body)
			}
			for _, h := range []string{"Content-Type", "Content-Length", "WWW-Authenticate", "Set-Cookie", "Retry-After"} {
				if a, b := wrong.header.Values(h), r.header.Values(h); !slices.Equal(a, b) {
					t.Errorf("header %s differs: wrong password %q, unknown email %q", h, a, b)
				}
			}
			if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("failed login set a cookie: %q", sc)
			}
		}
	})

	t.Run("new identifier every login; old session ends", func(t *testing.T) {
		l1 := s.login(t, email, e2ePassword)
		l2 := s.login(t, email, e2ePassword, e2eCookie(l1.cookie))
		if l2.cookie == l1.cookie || l2.sessionID == l1.sessionID {
			t.Errorf("a login with a live cookie reused its identifier")
		}
		s.wantDead(t, l1.cookie, "the session a new login arrived with")
		s.wantAlive(t, l2.cookie, "the new session")

		// Session fixation: a cookie planted by an attacker (here: a live
		// session of the attacker's own account) is replaced, not adopted,
		// and the planted session ends.
		attacker := e2eEmail("attacker")
		s.register(t, attacker, e2ePassword)
		planted := s.login(t, attacker, e2ePassword)
		l3 := s.login(t, email, e2ePassword, e2eCookie(planted.cookie))
		if l3.cookie == planted.cookie {
			t.Errorf("login adopted the planted cookie")
		}
		s.wantDead(t, planted.cookie, "the planted session after the victim logged in with it")
		if l3.userID == planted.userID {
			t.Errorf("login with a planted cookie signed in as the planter")
		}

		// A well-formed but unknown cookie is not adopted either.
		forged := e2eRandomSecret()
		l4 := s.login(t, email, e2ePassword, e2eCookie(forged))
		if l4.cookie == forged {
			t.Errorf("login adopted a cookie value the client chose")
		}
		seen := map[string]bool{}
		for _, l := range []e2eLogin{l1, l2, l3, l4, planted} {
			if seen[l.cookie] || seen[l.sessionID] {
				t.Errorf("identifier reused across logins")
			}
			seen[l.cookie], seen[l.sessionID] = true, true
		}
	})
}

// TestE2EForgedCookies checks that only the cookie authenticates, and only
// a live one: never a made-up value, a query parameter, a body field, an
// Authorization header or a path segment, and never after logout.
func TestE2EForgedCookies(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	_, l := s.newUser(t, "forge")
	c := l.cookie
	flip := []byte(c)
	flip[0] ^= 1 // still base64url, another secret

	for _, tc := range []struct {
		name string
		opts []e2eOpt
		path string
	}{
		{"random well-formed secret", []e2eOpt{e2eCookie(e2eRandomSecret())}, "/v1/session"},
		{"one bit changed", []e2eOpt{e2eCookie(string(flip))}, "/v1/session"},
		{"too short", []e2eOpt{e2eCookie(c[:42])}, "/v1/session"},
		{"too long", []e2eOpt{e2eCookie(c + "A")}, "/v1/session"},
		{"padded", []e2eOpt{e2eCookie(c + "=")}, "/v1/session"},
		{"standard base64 alphabet", []e2eOpt{e2eCookie("+" + c[1:])}, "/v1/session"},
		{"malformed", []e2eOpt{e2eCookie("abc")}, "/v1/session"},
		{"empty", []e2eOpt{e2eCookie("")}, "/v1/session"},
		{"other cookie name", []e2eOpt{e2eHeader("Cookie", "sesame="+c)}, "/v1/session"},
		{"name in lower case", []e2eOpt{e2eHeader("Cookie", "__host-sesame="+c)}, "/v1/session"},
		{"query string", nil, "/v1/session?" + e2eCookieName + "=" + c},
		{"query string session", nil, "/v1/session?session=" + c + "&sid=" + c + "&token=" + c},
		{"Authorization Bearer", []e2eOpt{e2eHeader("Authorization", "Bearer "+c)}, "/v1/session"},
		{"Authorization bare", []e2eOpt{e2eHeader("Authorization", c)}, "/v1/session"},
		{"Authorization cookie", []e2eOpt{e2eHeader("Authorization", e2eCookieName+"="+c)}, "/v1/session"},
		{"list with Bearer secret", []e2eOpt{e2eHeader("Authorization", "Bearer "+c)}, "/v1/sessions"},
	} {
		// A bearer token that is not one may be named invalid_token.
		r := s.do(t, "GET", tc.path, nil, tc.opts...).want(t, http.StatusUnauthorized)
		if code := r.errorCode(); code != "unauthenticated" && code != "invalid_token" {
			t.Errorf("%s: GET %s: error %q, want unauthenticated (or invalid_token)", tc.name, tc.path, code)
		}
	}

	// The secret in a body or a path is not a cookie.
	body := map[string]string{e2eCookieName: c, "session": c, "cookie": c}
	s.do(t, "DELETE", "/v1/session", body).want(t, http.StatusUnauthorized)
	s.do(t, "DELETE", "/v1/sessions", body).want(t, http.StatusUnauthorized)
	s.do(t, "DELETE", "/v1/sessions/"+c, nil).want(t, http.StatusUnauthorized)
	s.do(t, "DELETE", "/v1/session?"+e2eCookieName+"="+c, nil).want(t, http.StatusUnauthorized)
	s.do(t, "POST", "/v1/password", map[string]string{
		"current_password": e2ePassword, "new_password": "hijacked password", e2eCookieName: c,
	}).want(t, http.StatusUnauthorized)
	s.wantAlive(t, c, "after requests that carried the secret outside the cookie")

	t.Run("logout", func(t *testing.T) {
		r := s.do(t, "DELETE", "/v1/session", nil, e2eCookie(c)).want(t, http.StatusNoContent)
		raw := r.rawSetCookie(t)
		cs := r.setCookies()
		if len(cs) != 1 || cs[0].Value != "" {
			t.Errorf("logout Set-Cookie %q: want the value emptied", raw)
		} else if cs[0].MaxAge >= 0 && (cs[0].Expires.IsZero() || cs[0].Expires.After(time.Now())) {
			t.Errorf("logout Set-Cookie %q: want Max-Age=0 or an expiry in the past", raw)
		}
		// A browser ignores a __Host- cookie without Secure and Path=/,
		// clearing included.
		if low := strings.ToLower(raw); !strings.Contains(low, "secure") || !strings.Contains(low, "path=/") || strings.Contains(low, "domain") {
			t.Errorf("logout Set-Cookie %q: a __Host- cookie is only cleared with Secure, Path=/ and no Domain", raw)
		}
		s.wantDead(t, c, "the cookie replayed after logout")
		s.do(t, "DELETE", "/v1/session", nil, e2eCookie(c)).want(t, http.StatusUnauthorized)
		s.do(t, "GET", "/v1/sessions", nil, e2eCookie(c)).want(t, http.StatusUnauthorized, "unauthenticated")
		s.do(t, "DELETE", "/v1/sessions", nil, e2eCookie(c)).want(t, http.StatusUnauthorized)
		s.do(t, "DELETE", "/v1/session", nil).want(t, http.StatusUnauthorized)
	})
}

// TestE2ESessions covers listing and ending sessions.
func TestE2ESessions(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	emailA := e2eEmail("alice")
	s.register(t, emailA, e2ePassword)
	a1 := s.login(t, emailA, e2ePassword, e2eHeader("User-Agent", "agent-one"))
	a2 := s.login(t, emailA, e2ePassword, e2eHeader("User-Agent", "agent-two"))
	_, b1 := s.newUser(t, "bob")

	t.Run("list", func(t *testing.T) {
		r := s.do(t, "GET", "/v1/sessions", nil, e2eCookie(a1.cookie)).want(t, http.StatusOK)
		list, _ := r.json(t)["sessions"].([]any)
		if len(list) != 2 {
			t.Fatalf("GET /v1/sessions: %d sessions, want 2: %s", len(list), r.body)
		}
		current, agents := 0, map[string]string{}
		for _, x := range list {
			m, _ := x.(map[string]any)
			e2eKeys(t, "session", m, "id", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "current")
			e2eTime(t, m, "created_at")
			e2eTime(t, m, "last_seen_at")
			e2eTime(t, m, "expires_at")
			id, _ := m["id"].(string)
			ua, _ := m["user_agent"].(string)
			agents[id] = ua
			if m["ip"] != "127.0.0.1" {
				t.Errorf("session ip = %v, want 127.0.0.1", m["ip"])
			}
			switch m["current"] {
			case true:
				current++
				if id != a1.sessionID {
					t.Errorf("current session is %s, want the caller's %s", id, a1.sessionID)
				}
			case false:
			default:
				t.Errorf("current = %v, want a boolean", m["current"])
			}
		}
		if current != 1 {
			t.Errorf("%d sessions marked current, want exactly 1", current)
		}
		if agents[a1.sessionID] != "agent-one" || agents[a2.sessionID] != "agent-two" {
			t.Errorf("sessions by id → user agent: %v, want %s→agent-one %s→agent-two", agents, a1.sessionID, a2.sessionID)
		}
		for _, secret := range []string{a1.cookie, a2.cookie} {
			if bytes.Contains(r.body, []byte(secret)) {
				t.Errorf("session listing contains a cookie secret: %s", r.body)
			}
		}
	})

	t.Run("revoke one", func(t *testing.T) {
		s.do(t, "DELETE", "/v1/sessions/"+b1.sessionID, nil, e2eCookie(a1.cookie)).want(t, http.StatusNotFound, "not_found")
		s.wantAlive(t, b1.cookie, "another user's session after a DELETE of its id")
		s.do(t, "DELETE", "/v1/sessions/0123456789abcdef0123456789abcdef", nil, e2eCookie(a1.cookie)).want(t, http.StatusNotFound, "not_found")
		s.do(t, "DELETE", "/v1/sessions/"+a2.cookie, nil, e2eCookie(a1.cookie)).want(t, http.StatusNotFound, "not_found")
		s.wantAlive(t, a2.cookie, "a session whose secret was used as a path id")

		s.do(t, "DELETE", "/v1/sessions/"+a2.sessionID, nil, e2eCookie(a1.cookie)).want(t, http.StatusNoContent)
		s.wantDead(t, a2.cookie, "a revoked session")
		s.wantAlive(t, a1.cookie, "the revoker's session")
		s.do(t, "DELETE", "/v1/sessions/"+a2.sessionID, nil, e2eCookie(a1.cookie)).want(t, http.StatusNotFound, "not_found")
		list, _ := s.do(t, "GET", "/v1/sessions", nil, e2eCookie(a1.cookie)).want(t, http.StatusOK).json(t)["sessions"].([]any)
		if len(list) != 1 {
			t.Errorf("%d sessions listed after revoking one of two, want 1", len(list))
		}
	})

	t.Run("revoke others", func(t *testing.T) {
		a3 := s.login(t, emailA, e2ePassword)
		a4 := s.login(t, emailA, e2ePassword)
		// Paths that clean to DELETE /v1/sessions are refused, not
		// redirected there, and end nothing.
		for _, p := range []string{"/v1/sessions/x/..", "/v1/sessions/./", "//v1/sessions", "/v1/sessions/../sessions", "/v1//sessions"} {
			r := s.do(t, "DELETE", p, nil, e2eCookie(a1.cookie))
			r.want(t, http.StatusBadRequest, "invalid_request")
			if loc := r.header.Get("Location"); loc != "" {
				t.Errorf("DELETE %s: Location %q, want no redirect", p, loc)
			}
		}
		s.wantAlive(t, a3.cookie, "another session after DELETE requests on unclean paths")
		s.do(t, "DELETE", "/v1/sessions", nil, e2eCookie(a1.cookie)).want(t, http.StatusNoContent)
		s.wantAlive(t, a1.cookie, "the caller's own session after DELETE /v1/sessions")
		s.wantDead(t, a3.cookie, "another session after DELETE /v1/sessions")
		s.wantDead(t, a4.cookie, "another session after DELETE /v1/sessions")
		s.wantAlive(t, b1.cookie, "another user's session after DELETE /v1/sessions")
		list, _ := s.do(t, "GET", "/v1/sessions", nil, e2eCookie(a1.cookie)).want(t, http.StatusOK).json(t)["sessions"].([]any)
		if len(list) != 1 {
			t.Errorf("%d sessions listed after DELETE /v1/sessions, want 1", len(list))
		}
	})

	t.Run("revoke own by id", func(t *testing.T) {
		s.do(t, "DELETE", "/v1/sessions/"+a1.sessionID, nil, e2eCookie(a1.cookie)).want(t, http.StatusNoContent)
		s.wantDead(t, a1.cookie, "a session that revoked itself")
	})
}

// TestE2ETimeouts covers the idle and absolute session timeouts on a
// server with short ones. The server runs on real time, so this sleeps.
func TestE2ETimeouts(t *testing.T) {
	t.Parallel()

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		s := e2eStart(t, "--session-idle-timeout", "2s")
		// The session left alone is made first, so that the clock of the
		// used one starts at its own login, however long a login queues.
		email, left := s.newUser(t, "idle")
		used := s.login(t, email, e2ePassword)
		if d := e2eTime(t, used.body["session"].(map[string]any), "expires_at").
			Sub(e2eTime(t, used.body["session"].(map[string]any), "created_at")); d != 2*time.Second {
			t.Errorf("login: expires_at - created_at = %v, want the idle timeout 2s", d)
		}
		start := time.Now()
		// Used at least every second. (Exactly every second is racy on this
		// server: see "idle counts from the last use".)
		tick := time.NewTicker(700 * time.Millisecond)
		defer tick.Stop()
		checkedLeft := false
		for time.Since(start) < 4500*time.Millisecond {
			<-tick.C
			if !s.alive(t, used.cookie) {
				t.Fatalf("a session used about every second ended %v after login (idle timeout 2s)", time.Since(start).Round(time.Millisecond))
			}
			if !checkedLeft && time.Since(start) >= 3*time.Second {
				checkedLeft = true
				s.wantDead(t, left.cookie, "a session left alone for 3s (idle timeout 2s)")
			}
		}
	})

	// The idle timeout counts from the last use, whatever the server's
	// write-saving granularity: a session used 1.4s ago must be alive
	// under a 2s idle timeout.
	t.Run("idle counts from the last use", func(t *testing.T) {
		t.Parallel()
		s := e2eStart(t, "--session-idle-timeout", "2s")
		_, l := s.newUser(t, "lastuse")
		login := time.Now()
		time.Sleep(time.Until(login.Add(1200 * time.Millisecond)))
		s.wantAlive(t, l.cookie, "use at 1.2s")
		time.Sleep(800 * time.Millisecond)
		s.wantAlive(t, l.cookie, "use at 2.0s")
		lastUse := time.Now()
		time.Sleep(1400 * time.Millisecond)
		if !s.alive(t, l.cookie) {
			t.Errorf("session unused for only %v ended under --session-idle-timeout 2s (the server counted the idle time from an earlier use)",
				time.Since(lastUse).Round(10*time.Millisecond))
		}
	})

	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		s := e2eStart(t, "--session-absolute-timeout", "3s")
		_, l := s.newUser(t, "abs")
		start := time.Now()
		ss := l.body["session"].(map[string]any)
		if d := e2eTime(t, ss, "expires_at").Sub(e2eTime(t, ss, "created_at")); d != 3*time.Second {
			t.Errorf("login: expires_at - created_at = %v, want the absolute timeout 3s", d)
		}
		for time.Since(start) < 2500*time.Millisecond {
			if !s.alive(t, l.cookie) {
				t.Fatalf("session ended %v after login, before its absolute timeout of 3s", time.Since(start).Round(time.Millisecond))
			}
			time.Sleep(250 * time.Millisecond)
		}
		for time.Since(start) < 3500*time.Millisecond {
			s.alive(t, l.cookie)
			time.Sleep(250 * time.Millisecond)
		}
		s.wantDead(t, l.cookie, "a session used constantly, 3.5s after login (absolute timeout 3s)")
	})
}

// TestE2EPasswordChange covers POST /v1/password.
func TestE2EPasswordChange(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	email, c1 := s.newUser(t, "pwchange")
	c2 := s.login(t, email, e2ePassword)
	c3 := s.login(t, email, e2ePassword)
	const newPassword = "a brand new passphrase"

	s.do(t, "POST", "/v1/password", map[string]string{"current_password": "not the password", "new_password": newPassword},
		e2eCookie(c1.cookie)).want(t, http.StatusUnauthorized)
	s.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": "short"},
		e2eCookie(c1.cookie)).want(t, http.StatusBadRequest, "invalid_request")
	s.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": strings.Repeat("x", 1025)},
		e2eCookie(c1.cookie)).want(t, http.StatusBadRequest, "invalid_request")
	s.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": newPassword, "roles": "admin"},
		e2eCookie(c1.cookie)).want(t, http.StatusBadRequest, "invalid_request")
	s.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": newPassword}).
		want(t, http.StatusUnauthorized, "unauthenticated")
	for _, c := range []e2eLogin{c1, c2, c3} {
		s.wantAlive(t, c.cookie, "a session after refused password changes")
	}

	s.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": newPassword},
		e2eCookie(c1.cookie)).want(t, http.StatusNoContent)
	s.wantAlive(t, c1.cookie, "the session that changed the password")
	s.wantDead(t, c2.cookie, "another session after a password change")
	s.wantDead(t, c3.cookie, "another session after a password change")
	s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword}).
		want(t, http.StatusUnauthorized, "invalid_credentials")
	s.login(t, email, newPassword)

	_, admin := s.addAdmin(t)
	r := s.do(t, "GET", "/v1/admin/audit?user_id="+c1.userID, nil, e2eCookie(admin.cookie)).want(t, http.StatusOK)
	found := false
	events, _ := r.json(t)["events"].([]any)
	for _, e := range events {
		if m, _ := e.(map[string]any); m["type"] == "password.changed" {
			found = true
			if m["user_id"] != c1.userID {
				t.Errorf("password.changed event for user %v, want %s", m["user_id"], c1.userID)
			}
		}
	}
	if !found {
		t.Errorf("audit has no password.changed event: %s", r.body)
	}
}
