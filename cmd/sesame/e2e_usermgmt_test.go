package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// umAuditTypes returns the user's audit events by type (the newest of
// each), read with the admin's cookie.
func (s *e2eServer) umAudit(t testing.TB, adminCookie, userID string) map[string]map[string]any {
	t.Helper()
	r := s.do(t, "GET", "/v1/admin/audit?user_id="+userID, nil, e2eCookie(adminCookie)).want(t, http.StatusOK)
	events, _ := r.json(t)["events"].([]any)
	out := map[string]map[string]any{}
	for _, x := range events {
		m, _ := x.(map[string]any)
		typ, _ := m["type"].(string)
		if _, ok := out[typ]; !ok {
			out[typ] = m
		}
	}
	return out
}

// umWantActor fails unless the user's newest event of type typ names actor.
func umWantActor(t testing.TB, events map[string]map[string]any, typ, actor string) {
	t.Helper()
	e := events[typ]
	if e == nil {
		t.Errorf("no %s event in the audit log; have %v", typ, slices.Sorted(func(yield func(string) bool) {
			for k := range events {
				if !yield(k) {
					return
				}
			}
		}))
		return
	}
	if e["actor"] != actor {
		t.Errorf("%s event %v: actor %v, want %q", typ, e, e["actor"], actor)
	}
}

// umSignInRefused checks that a correct password is refused exactly as a
// wrong one: the same status and body, for a cookie login and for the
// password grant.
func (s *e2eServer) umSignInRefused(t testing.TB, email, password, what string) {
	t.Helper()
	right := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": password})
	wrong := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "not the password at all"})
	right.wantFor(t, what+": login with the right password", http.StatusUnauthorized, "invalid_credentials")
	if string(right.body) != string(wrong.body) || len(right.setCookies()) != 0 {
		t.Errorf("%s: login answers %s (cookies %q), a wrong password %s: want the same", what, right.body, right.header.Values("Set-Cookie"), wrong.body)
	}
	form := "grant_type=password&username=" + email + "&password="
	rightTok := s.form(t, "/v1/token", form+strings.ReplaceAll(password, " ", "+"))
	wrongTok := s.form(t, "/v1/token", form+"not+the+password+at+all")
	rightTok.wantFor(t, what+": password grant with the right password", http.StatusBadRequest, "invalid_grant")
	if string(rightTok.body) != string(wrongTok.body) {
		t.Errorf("%s: password grant answers %s, a wrong password %s: want the same", what, rightTok.body, wrongTok.body)
	}
}

// TestE2EAdminUserManagement covers PATCH and DELETE /v1/admin/users/{id}:
// disabling, roles, email and deletion end what they must at once, and are
// audited with the admin as the actor.
func TestE2EAdminUserManagement(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	_, root := s.addAdmin(t)
	admin := e2eCookie(root.cookie)
	email, l := s.newUser(t, "managed")
	uid := l.userID
	patch := func(body any) e2eResp {
		t.Helper()
		return s.do(t, "PATCH", "/v1/admin/users/"+uid, body, admin)
	}

	t.Run("disable", func(t *testing.T) {
		tok := s.grant(t, email, e2ePassword)
		c := s.login(t, email, e2ePassword)
		r := patch(map[string]any{"disabled": true}).want(t, http.StatusOK)
		m := r.json(t)
		e2eKeys(t, "PATCH answer", m, "id", "email", "roles", "created_at", "disabled")
		if m["disabled"] != true || m["id"] != uid {
			t.Errorf("PATCH disabled:true answered %s", r.body)
		}
		// On the very next request.
		s.wantDead(t, c.cookie, "a disabled user's cookie")
		s.wantDead(t, l.cookie, "a disabled user's older cookie")
		s.wantAccessDead(t, tok.access, "a disabled user's access token")
		s.wantRefreshDead(t, tok.refresh, "a disabled user's refresh token")
		s.umSignInRefused(t, email, e2ePassword, "disabled user")
		users := s.do(t, "GET", "/v1/admin/users", nil, admin).want(t, http.StatusOK)
		if !strings.Contains(string(users.body), `"disabled":true`) {
			t.Errorf("GET /v1/admin/users does not show the user disabled: %s", users.body)
		}

		r = patch(map[string]any{"disabled": false}).want(t, http.StatusOK)
		if r.json(t)["disabled"] != false {
			t.Errorf("PATCH disabled:false answered %s", r.body)
		}
		l = s.login(t, email, e2ePassword)
		s.grant(t, email, e2ePassword)
		ev := s.umAudit(t, root.cookie, uid)
		umWantActor(t, ev, "user.disabled", root.userID)
		umWantActor(t, ev, "user.enabled", root.userID)
		umWantActor(t, ev, "session.revoked", root.userID)
	})

	t.Run("roles", func(t *testing.T) {
		tok := s.grant(t, email, e2ePassword)
		r := patch(map[string]any{"roles": []string{"auditor"}}).want(t, http.StatusOK)
		roles, _ := r.json(t)["roles"].([]any)
		if !slices.Contains(roles, any("user")) || !slices.Contains(roles, any("auditor")) || len(roles) != 2 {
			t.Errorf("roles after PATCH [auditor] = %v, want user and auditor", roles)
		}
		// Adding a role ends nothing.
		s.wantAlive(t, l.cookie, "a session after a role was added")
		s.wantAccessAlive(t, tok.access, "a token after a role was added")

		tok = s.grant(t, email, e2ePassword)
		if roles, _ := tokParse(t, tok.access).claims["roles"].([]any); !slices.Contains(roles, any("auditor")) {
			t.Fatalf("a new token's roles = %v, want auditor among them", roles)
		}
		r = patch(map[string]any{"roles": []string{}}).want(t, http.StatusOK)
		if roles, _ := r.json(t)["roles"].([]any); len(roles) != 1 || roles[0] != "user" {
			t.Errorf("roles after PATCH [] = %v, want [user]: user is always kept", roles)
		}
		s.wantDead(t, l.cookie, "a session after a role was removed")
		s.wantAccessDead(t, tok.access, "an access token carrying a removed role")
		s.wantRefreshDead(t, tok.refresh, "a refresh token of a family carrying a removed role")
		umWantActor(t, s.umAudit(t, root.cookie, uid), "user.roles_changed", root.userID)
		l = s.login(t, email, e2ePassword)
	})

	t.Run("email", func(t *testing.T) {
		other := e2eEmail("other")
		s.register(t, other, e2ePassword)
		patch(map[string]any{"email": strings.ToUpper(other)}).want(t, http.StatusConflict, "conflict")
		patch(map[string]any{"email": "not an email"}).want(t, http.StatusBadRequest, "invalid_request")
		s.wantAlive(t, l.cookie, "a session after a refused email change")
		fresh := e2eEmail("renamed")
		r := patch(map[string]any{"email": "  " + strings.ToUpper(fresh) + " "}).want(t, http.StatusOK)
		if r.json(t)["email"] != fresh {
			t.Errorf("email after PATCH = %v, want it normalised to %s", r.json(t)["email"], fresh)
		}
		s.login(t, fresh, e2ePassword)
		s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword}).
			want(t, http.StatusUnauthorized, "invalid_credentials")
		umWantActor(t, s.umAudit(t, root.cookie, uid), "user.email_changed", root.userID)
		email = fresh
	})

	t.Run("bad requests", func(t *testing.T) {
		patch(map[string]any{}).want(t, http.StatusBadRequest, "invalid_request")
		patch(map[string]any{"roles": []string{"a role"}}).want(t, http.StatusBadRequest, "invalid_request")
		patch(map[string]any{"roles": []string{"admin", "x,y"}}).want(t, http.StatusBadRequest, "invalid_request")
		patch(map[string]any{"disabled": "yes"}).want(t, http.StatusBadRequest, "invalid_request")
		patch(map[string]any{"password_hash": "x"}).want(t, http.StatusBadRequest, "invalid_request")
		r := s.do(t, "GET", "/v1/admin/users", nil, admin).want(t, http.StatusOK)
		if strings.Contains(string(r.body), `"a role"`) || strings.Contains(string(r.body), "x,y") {
			t.Errorf("a refused PATCH changed roles: %s", r.body)
		}
		unknown := "/v1/admin/users/0123456789abcdef0123456789abcdef"
		s.do(t, "PATCH", unknown, map[string]any{"disabled": true}, admin).want(t, http.StatusNotFound, "not_found")
		s.do(t, "DELETE", unknown, nil, admin).want(t, http.StatusNotFound, "not_found")
		for _, m := range []string{"PATCH", "DELETE"} {
			s.do(t, m, "/v1/admin/users/"+root.userID, map[string]any{"disabled": true}, e2eCookie(l.cookie)).want(t, http.StatusForbidden, "forbidden")
			s.do(t, m, "/v1/admin/users/"+root.userID, map[string]any{"disabled": true}).want(t, http.StatusUnauthorized, "unauthenticated")
			s.do(t, m, "/v1/admin/users/"+uid, map[string]any{"disabled": true}, admin, e2eHeader("Origin", "https://evil.test")).
				want(t, http.StatusForbidden, "csrf")
		}
		s.wantAlive(t, root.cookie, "the admin after a user tried to disable it")
		s.wantAlive(t, l.cookie, "the user after cross-origin admin requests")
	})

	t.Run("delete", func(t *testing.T) {
		tok := s.grant(t, email, e2ePassword)
		s.do(t, "DELETE", "/v1/admin/users/"+uid, nil, admin).want(t, http.StatusNoContent)
		s.wantDead(t, l.cookie, "a deleted user's cookie")
		s.wantAccessDead(t, tok.access, "a deleted user's access token")
		s.wantRefreshDead(t, tok.refresh, "a deleted user's refresh token")
		s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword}).
			want(t, http.StatusUnauthorized, "invalid_credentials")
		r := s.do(t, "GET", "/v1/admin/users", nil, admin).want(t, http.StatusOK)
		if strings.Contains(string(r.body), uid) {
			t.Errorf("GET /v1/admin/users still lists the deleted user: %s", r.body)
		}
		s.do(t, "DELETE", "/v1/admin/users/"+uid, nil, admin).want(t, http.StatusNotFound, "not_found")
		umWantActor(t, s.umAudit(t, root.cookie, uid), "user.deleted", root.userID)
		// The email is free again.
		s.register(t, email, e2ePassword)
	})
}

// TestE2ECLIUserManagement covers user disable, enable, set-roles,
// set-email and delete, run while the server runs: the server refuses the
// user's cookie and access token on the next request, and the audit log
// names the CLI.
func TestE2ECLIUserManagement(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	_, root := s.addAdmin(t)
	email, l := s.newUser(t, "cli-managed")
	uid := l.userID
	tok := s.grant(t, email, e2ePassword)

	var u userJSON
	if err := json.Unmarshal([]byte(s.mustCLI(t, "", "user", "disable", "--email", strings.ToUpper(email), "--json")), &u); err != nil || !u.Disabled || u.ID != uid {
		t.Fatalf("user disable --json printed %+v (%v), want the user, disabled", u, err)
	}
	// The CLI is another process: the server hears of its revocations
	// through its feed, within a second (API.md).
	s.wantCookieGone(t, l.cookie, "a cookie after `user disable`")
	s.wantAccessGone(t, tok.access, "an access token after `user disable`")
	s.wantRefreshDead(t, tok.refresh, "a refresh token right after `user disable`")
	s.umSignInRefused(t, email, e2ePassword, "user disabled by the CLI")
	if out := s.mustCLI(t, "", "user", "list"); !strings.Contains(out, "disabled") {
		t.Errorf("user list does not show the user disabled:\n%s", out)
	}
	s.mustCLI(t, "", "user", "enable", "--email", email)
	l = s.login(t, email, e2ePassword)

	s.mustCLI(t, "", "user", "set-roles", "--email", email, "--role", "admin", "--role", "ops")
	s.wantAlive(t, l.cookie, "a session after roles were added")
	tok = s.grant(t, email, e2ePassword)
	s.do(t, "GET", "/v1/admin/users", nil, e2eBearer(tok.access)).want(t, http.StatusOK)
	out := s.mustCLI(t, "", "user", "set-roles", "--email", email, "--role", "ops")
	if !strings.Contains(out, "user,ops") && !strings.Contains(out, "ops,user") {
		t.Errorf("set-roles printed %q, want the roles user and ops", out)
	}
	s.wantCookieGone(t, l.cookie, "a session after `user set-roles` removed admin")
	s.wantAccessGone(t, tok.access, "an access token carrying admin after `user set-roles` removed it")
	l = s.login(t, email, e2ePassword)
	s.do(t, "GET", "/v1/admin/users", nil, e2eCookie(l.cookie)).want(t, http.StatusForbidden, "forbidden")

	fresh := e2eEmail("cli-renamed")
	if _, err := s.cli(t, "", "user", "set-email", "--email", email, "--new-email", root.body["user"].(map[string]any)["email"].(string)); err == nil {
		t.Errorf("set-email to the admin's email: no error")
	}
	s.mustCLI(t, "", "user", "set-email", "--email", email, "--new-email", strings.ToUpper(fresh))
	s.login(t, fresh, e2ePassword)

	for _, args := range [][]string{
		{"user", "disable"},
		{"user", "disable", "--email", "nobody@x.test"},
		{"user", "set-roles", "--email", fresh, "--role", "bad role"},
		{"user", "set-email", "--email", fresh},
		{"user", "set-email", "--email", fresh, "--new-email", "not an email"},
		{"user", "delete", "--email", "nobody@x.test"},
		{"user", "frobnicate"},
	} {
		if _, err := s.cli(t, "", args...); err == nil {
			t.Errorf("sesame %s: no error", strings.Join(args, " "))
		}
	}

	tok = s.grant(t, fresh, e2ePassword)
	s.mustCLI(t, "", "user", "delete", "--email", fresh)
	s.wantCookieGone(t, l.cookie, "a cookie after `user delete`")
	s.wantAccessGone(t, tok.access, "an access token after `user delete`")
	if out := s.mustCLI(t, "", "user", "list"); strings.Contains(out, uid) {
		t.Errorf("user list after delete still has the user:\n%s", out)
	}

	ev := s.umAudit(t, root.cookie, uid)
	for _, typ := range []string{"user.disabled", "user.enabled", "user.roles_changed", "user.email_changed", "user.deleted", "session.revoked"} {
		umWantActor(t, ev, typ, "cli")
	}
	if e := s.umAudit(t, root.cookie, root.userID)["user.created"]; e == nil || e["actor"] != "cli" {
		t.Errorf("user.created by `user add`: %v, want actor cli", e)
	}
	if e := ev["login.succeeded"]; e != nil && e["actor"] != nil {
		t.Errorf("a user's own login carries an actor: %v", e)
	}
}
