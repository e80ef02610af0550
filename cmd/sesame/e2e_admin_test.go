package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestE2EAdmin covers the admin endpoints and the data commands, run while
// the server runs on the same data directory.
func TestE2EAdmin(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	rootEmail, root := s.addAdmin(t)

	// A user with a history: a failed login, logins, a logout, a revoked
	// session and a password change.
	email := e2eEmail("audited")
	uid := s.register(t, email, e2ePassword)
	s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "wrong guess"}, e2eHeader("User-Agent", "ua-failed")).
		want(t, http.StatusUnauthorized, "invalid_credentials")
	u1 := s.login(t, email, e2ePassword, e2eHeader("User-Agent", "ua-one"))
	u2 := s.login(t, email, e2ePassword)
	s.do(t, "DELETE", "/v1/session", nil, e2eCookie(u2.cookie)).want(t, http.StatusNoContent)
	u3 := s.login(t, email, e2ePassword)
	s.do(t, "DELETE", "/v1/sessions/"+u3.sessionID, nil, e2eCookie(u1.cookie)).want(t, http.StatusNoContent)
	const newPassword = "the second passphrase"
	s.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": newPassword},
		e2eCookie(u1.cookie)).want(t, http.StatusNoContent)

	t.Run("users", func(t *testing.T) {
		r := s.do(t, "GET", "/v1/admin/users", nil, e2eCookie(root.cookie)).want(t, http.StatusOK)
		users, _ := r.json(t)["users"].([]any)
		if len(users) != 2 {
			t.Fatalf("GET /v1/admin/users: %d users, want 2: %s", len(users), r.body)
		}
		byEmail := map[string]map[string]any{}
		for _, x := range users {
			m, _ := x.(map[string]any)
			e2eKeys(t, "admin user", m, "id", "email", "roles", "created_at")
			e2eTime(t, m, "created_at")
			e, _ := m["email"].(string)
			byEmail[e] = m
		}
		rootRoles, _ := byEmail[rootEmail]["roles"].([]any)
		if !slices.Contains(rootRoles, any("admin")) || !slices.Contains(rootRoles, any("user")) {
			t.Errorf("admin's roles = %v, want user and admin", rootRoles)
		}
		if byEmail[email]["id"] != uid {
			t.Errorf("user %s listed as %v, want id %s", email, byEmail[email], uid)
		}
		if roles, _ := byEmail[email]["roles"].([]any); len(roles) != 1 || roles[0] != "user" {
			t.Errorf("user's roles = %v, want [user]", roles)
		}
		for _, leak := range []string{"argon2", "password", "hash"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("GET /v1/admin/users contains %q: %s", leak, r.body)
			}
		}
	})

	t.Run("audit", func(t *testing.T) {
		r := s.do(t, "GET", "/v1/admin/audit?user_id="+uid, nil, e2eCookie(root.cookie)).want(t, http.StatusOK)
		events, _ := r.json(t)["events"].([]any)
		types := map[string]map[string]any{}
		for _, x := range events {
			m, _ := x.(map[string]any)
			e2eKeys(t, "audit event", m, "time", "type", "user_id", "ip", "user_agent", "session_id")
			e2eTime(t, m, "time")
			if m["user_id"] != uid {
				t.Errorf("audit?user_id=%s returned an event of user %v", uid, m["user_id"])
			}
			typ, _ := m["type"].(string)
			if _, ok := types[typ]; !ok {
				types[typ] = m
			}
		}
		for _, want := range []string{"login.succeeded", "login.failed", "logout", "session.revoked", "password.changed"} {
			if types[want] == nil {
				t.Errorf("audit for the user lacks %s; got %s", want, r.body)
			}
		}
		if e := types["login.failed"]; e != nil && (e["ip"] != "127.0.0.1" || e["user_agent"] != "ua-failed") {
			t.Errorf("login.failed event %v: want ip 127.0.0.1 and user_agent ua-failed", e)
		}
		if e := types["logout"]; e != nil && e["session_id"] != u2.sessionID {
			t.Errorf("logout event %v: want session_id %s", e, u2.sessionID)
		}
		if e := types["session.revoked"]; e != nil && e["session_id"] != u3.sessionID {
			t.Errorf("session.revoked event %v: want session_id %s", e, u3.sessionID)
		}
		for _, secret := range []string{e2ePassword, newPassword, u1.cookie, u2.cookie, u3.cookie, root.cookie} {
			if strings.Contains(string(r.body), secret) {
				t.Errorf("audit log contains a password or cookie secret")
			}
		}
	})

	t.Run("not an admin", func(t *testing.T) {
		for _, ep := range []struct{ method, path string }{
			{"GET", "/v1/admin/users"},
			{"GET", "/v1/admin/audit"},
			{"GET", "/v1/admin/audit?user_id=" + root.userID},
			{"DELETE", "/v1/admin/users/" + root.userID + "/sessions"},
		} {
			s.do(t, ep.method, ep.path, nil, e2eCookie(u1.cookie)).want(t, http.StatusForbidden, "forbidden")
			s.do(t, ep.method, ep.path, nil).want(t, http.StatusUnauthorized, "unauthenticated")
			s.do(t, ep.method, ep.path, nil, e2eCookie(e2eRandomSecret())).want(t, http.StatusUnauthorized, "unauthenticated")
		}
		s.wantAlive(t, root.cookie, "the admin after a user tried to end the admin's sessions")
		s.do(t, "DELETE", "/v1/admin/users/"+uid+"/sessions", nil, e2eCookie(root.cookie), e2eHeader("Origin", "https://evil.test")).
			want(t, http.StatusForbidden, "csrf")
		s.wantAlive(t, u1.cookie, "a user after a cross-origin admin request")
	})

	t.Run("end a user's sessions", func(t *testing.T) {
		u4 := s.login(t, email, newPassword)
		s.do(t, "DELETE", "/v1/admin/users/0123456789abcdef0123456789abcdef/sessions", nil, e2eCookie(root.cookie)).
			want(t, http.StatusNotFound, "not_found")
		s.do(t, "DELETE", "/v1/admin/users/"+uid+"/sessions", nil, e2eCookie(root.cookie)).want(t, http.StatusNoContent)
		s.wantDead(t, u1.cookie, "a user's session after an admin ended them")
		s.wantDead(t, u4.cookie, "a user's session after an admin ended them")
		s.wantAlive(t, root.cookie, "the admin's own session")
	})

	t.Run("CLI", func(t *testing.T) {
		out := s.mustCLI(t, "", "user", "list")
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Errorf("user list printed %d lines, want one per user (2):\n%s", len(lines), out)
		}
		for _, e := range []string{rootEmail, email} {
			n := 0
			for _, l := range lines {
				if strings.Contains(l, e) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("user list: %s on %d lines, want 1:\n%s", e, n, out)
			}
		}

		v1 := s.login(t, email, newPassword)
		v2 := s.login(t, email, newPassword)
		out = s.mustCLI(t, "", "sessions", "list", "--email", email)
		lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != 2 || !strings.Contains(out, v1.sessionID) || !strings.Contains(out, v2.sessionID) {
			t.Errorf("sessions list --email: want two lines with %s and %s, got:\n%s", v1.sessionID, v2.sessionID, out)
		}
		if strings.Contains(out, v1.cookie) || strings.Contains(out, v2.cookie) {
			t.Errorf("sessions list prints cookie secrets:\n%s", out)
		}

		// Read by the server first, so that it holds them in memory.
		s.wantAlive(t, v1.cookie, "a session before `sessions revoke`")
		s.wantAlive(t, v2.cookie, "a session before `sessions revoke`")
		s.mustCLI(t, "", "sessions", "revoke", "--email", strings.ToUpper(email))
		// The CLI is another process: the server hears of it through its
		// revocation feed (SQLite: data_version, polled every 100 ms).
		s.wantCookieGone(t, v1.cookie, "a session after `sessions revoke`")
		s.wantCookieGone(t, v2.cookie, "a session after `sessions revoke`")
		s.wantAlive(t, root.cookie, "another user's session after `sessions revoke`")
		if out := s.mustCLI(t, "", "sessions", "list", "--email", email); strings.TrimSpace(out) != "" {
			t.Errorf("sessions list after revoke:\n%s\nwant nothing", out)
		}

		for _, args := range [][]string{
			{"sessions", "revoke", "--email", "nobody@x.test"},
			{"sessions", "list"},
			{"user", "add", "--email", email, "--password-stdin"},
			{"user", "add", "--email", e2eEmail("nopw")},
			{"user", "add", "--email", "not an email", "--password-stdin"},
		} {
			if _, err := s.cli(t, "yet another password\n", args...); err == nil {
				t.Errorf("sesame %s: no error", strings.Join(args, " "))
			}
		}
		if _, err := s.cli(t, "short\n", "user", "add", "--email", e2eEmail("short"), "--password-stdin"); err == nil {
			t.Errorf("user add with a 5-byte password: no error")
		}
		if out := s.mustCLI(t, "", "version"); !strings.Contains(out, "sesame") {
			t.Errorf("version printed %q", out)
		}
	})
}

// TestE2ERegistrationClosed covers --registration closed.
func TestE2ERegistrationClosed(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--registration", "closed")
	body := map[string]string{"email": e2eEmail("walkin"), "password": e2ePassword}
	s.do(t, "POST", "/v1/users", body).want(t, http.StatusForbidden, "registration_closed")

	plain := e2eEmail("plain")
	s.mustCLI(t, e2ePassword+"\n", "user", "add", "--email", plain, "--password-stdin")
	p := s.login(t, plain, e2ePassword)
	s.do(t, "POST", "/v1/users", body, e2eCookie(p.cookie)).want(t, http.StatusForbidden, "registration_closed")
	s.do(t, "POST", "/v1/users", body, e2eCookie(e2eRandomSecret())).want(t, http.StatusForbidden, "registration_closed")

	_, admin := s.addAdmin(t)
	s.do(t, "POST", "/v1/users", body, e2eCookie(admin.cookie), e2eHeader("Origin", "https://evil.test")).
		want(t, http.StatusForbidden, "csrf")
	r := s.do(t, "POST", "/v1/users", body, e2eCookie(admin.cookie)).want(t, http.StatusCreated)
	e2eKeys(t, "201 body", r.json(t), "id", "email", "created_at")
	s.do(t, "POST", "/v1/users", body, e2eCookie(admin.cookie)).want(t, http.StatusConflict, "conflict")
	s.login(t, body["email"], e2ePassword)
}
