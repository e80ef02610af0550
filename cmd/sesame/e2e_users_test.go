package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestE2ERegistration covers POST /v1/users: the response, what an email
// is, password length bounds after NFKC, email equivalence and that
// passwords are verified in full.
func TestE2ERegistration(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)

	t.Run("created", func(t *testing.T) {
		before := time.Now().Add(-time.Minute)
		r := s.do(t, "POST", "/v1/users", map[string]string{"email": "New.User@Reg.test", "password": e2ePassword}).want(t, http.StatusCreated)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		m := r.json(t)
		e2eKeys(t, "201 body", m, "id", "email", "created_at")
		if id, _ := m["id"].(string); id == "" {
			t.Errorf("id = %v, want a non-empty string", m["id"])
		}
		if m["email"] != "new.user@reg.test" {
			t.Errorf("email = %v, want the normalised new.user@reg.test", m["email"])
		}
		if c := e2eTime(t, m, "created_at"); c.Before(before) || c.After(time.Now().Add(time.Minute)) {
			t.Errorf("created_at = %v, want about now", c)
		}
		for _, leak := range []string{"password", "argon2", "hash", e2ePassword} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("201 body contains %q: %s", leak, r.body)
			}
		}
	})

	t.Run("bad emails", func(t *testing.T) {
		for _, email := range []string{
			"no-at.x.test",
			"a b@x.test",
			"A <a@b.test>",
			`"A" <a@b.test>`,
			"a@b@x.test",
			"",
			"   ",
			"@x.test",
			"a@",
			"a@x.test (comment)",
			"a@x..test",
			"a@.x.test",
			"a\x00b@x.test",
			"a,b@x.test",
			strings.Repeat("a", 250) + "@x.test",
		} {
			s.do(t, "POST", "/v1/users", map[string]string{"email": email, "password": e2ePassword}).
				want(t, http.StatusBadRequest, "invalid_request")
		}
	})

	t.Run("password length", func(t *testing.T) {
		fullwidthA := strings.Repeat("ａ", 400) // 1200 bytes typed, 400 after NFKC
		ligature := "\uFDFA"                   // 3 bytes typed, 33 after NFKC
		for _, c := range []struct {
			name     string
			password string
			want     int
		}{
			{"7 bytes", "1234567", http.StatusBadRequest},
			{"8 bytes", "12345678", http.StatusCreated},
			{"1024 bytes", strings.Repeat("p", 1024), http.StatusCreated},
			{"1025 bytes", strings.Repeat("p", 1025), http.StatusBadRequest},
			{"1024 multi-byte", strings.Repeat("é", 512), http.StatusCreated},
			{"1025 multi-byte", strings.Repeat("é", 512) + "x", http.StatusBadRequest},
			{"9 bytes typed, 6 after NFKC", "e\u0301e\u0301e\u0301", http.StatusBadRequest},
			{"1200 bytes typed, 400 after NFKC", fullwidthA, http.StatusCreated},
			{"96 bytes typed, 1056 after NFKC", strings.Repeat(ligature, 32), http.StatusBadRequest},
		} {
			r := s.do(t, "POST", "/v1/users", map[string]string{"email": e2eEmail("len"), "password": c.password})
			if r.status != c.want {
				t.Errorf("%s: status %d, want %d; body %s", c.name, r.status, c.want, r.body)
			} else if c.want == http.StatusBadRequest && r.errorCode() != "invalid_request" {
				t.Errorf("%s: error %q, want invalid_request", c.name, r.errorCode())
			}
		}
	})

	t.Run("invalid UTF-8 password", func(t *testing.T) {
		// Sent raw: encoding/json would replace the bad byte with U+FFFD.
		s.do(t, "POST", "/v1/users", "{\"email\":\""+e2eEmail("utf8")+"\",\"password\":\"pass\xffword!\"}").
			want(t, http.StatusBadRequest, "invalid_request")
	})

	t.Run("NFKC password", func(t *testing.T) {
		email := e2eEmail("nfkc")
		s.register(t, email, "ｐａｓｓｗｏｒｄ１２") // typed in fullwidth
		s.login(t, email, "password12")
	})

	t.Run("email equivalence", func(t *testing.T) {
		id := s.register(t, "Admin@Eq.test", e2ePassword)
		for _, e := range []string{"admin@eq.test", " admin@eq.test ", "ａｄｍｉｎ@eq.test", "ＡＤＭＩＮ＠ＥＱ．ＴＥＳＴ", "\tADMIN@EQ.TEST\n"} {
			s.do(t, "POST", "/v1/users", map[string]string{"email": e, "password": "another password 1"}).
				want(t, http.StatusConflict, "conflict")
		}
		for _, e := range []string{"Admin@Eq.test", "admin@eq.test", " admin@eq.test ", "ａｄｍｉｎ@eq.test"} {
			if l := s.login(t, e, e2ePassword); l.userID != id {
				t.Errorf("login as %q: user %s, want %s", e, l.userID, id)
			}
		}
	})

	t.Run("no truncation", func(t *testing.T) {
		for _, prefix := range []int{72, 1023} {
			email := e2eEmail("trunc")
			common := strings.Repeat("k", prefix)
			s.register(t, email, common+"1")
			s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": common + "2"}).
				want(t, http.StatusUnauthorized, "invalid_credentials")
			s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": common}).
				want(t, http.StatusUnauthorized, "invalid_credentials")
			s.login(t, email, common+"1")
		}
	})
}

// e2eHostile is a hostile request body.
type e2eHostile struct {
	name  string
	body  string
	ctype string // "" sends no Content-Type
	want  int
}

// e2eHostileLogin are the cases POST /v1/session answers with another
// status than POST /v1/users.
var e2eHostileLogin = map[string]int{
	// null is no value: a missing password, which login refuses as wrong
	// credentials.
	"password is null": http.StatusUnauthorized,
}

// e2eHostileBodies returns hostile variants of a request that would
// otherwise carry email and password.
func e2eHostileBodies(email, password string) []e2eHostile {
	ok := fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
	inner := fmt.Sprintf(`"email":%q,"password":%q`, email, password)
	const js = "application/json"
	deep := func(n int) string {
		return fmt.Sprintf(`{"email":%q,"password":`, email) + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + "}"
	}
	return []e2eHostile{
		{"duplicate email", fmt.Sprintf(`{"email":%q,"email":%q,"password":%q}`, "other@x.test", email, password), js, 400},
		{"duplicate password", fmt.Sprintf(`{"email":%q,"password":"wrong password","password":%q}`, email, password), js, 400},
		{"100-deep nesting", deep(100), js, 400},
		{"100000-deep arrays", "{" + inner + `,"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}", js, 400},
		{"invalid UTF-8 in password", fmt.Sprintf(`{"email":%q,"password":"%s`, email, password) + "\xff\xfe\"}", js, 400},
		{"invalid UTF-8 in email", `{"email":"` + email + "\xc3" + fmt.Sprintf(`","password":%q}`, password), js, 400},
		{"invalid UTF-8 outside strings", ok[:len(ok)-1] + "\xff}", js, 400},
		{"unpaired surrogate escape in password", fmt.Sprintf(`{"email":%q,"password":"\ud800%s"}`, email, password), js, 400},
		{"unpaired surrogate escape in email", fmt.Sprintf(`{"email":"\udfff%s","password":%q}`, email, password), js, 400},
		{"truncated", ok[:len(ok)-1], js, 400},
		{"truncated in a string", ok[:len(ok)/2], js, 400},
		{"trailing garbage", ok + " x", js, 400},
		{"two objects", ok + ok, js, 400},
		{"trailing bracket", ok + "]", js, 400},
		{"top-level array", "[" + ok + "]", js, 400},
		{"top-level string", `"` + email + `"`, js, 400},
		{"top-level null", "null", js, 400},
		{"empty body", "", js, 400},
		{"byte order mark", "\ufeff" + ok, js, 400},
		{"comment", "{" + inner + "/* hi */}", js, 400},
		{"unknown field roles", "{" + inner + `,"roles":["admin"]}`, js, 400},
		{"unknown field admin", "{" + inner + `,"admin":true}`, js, 400},
		{"email is a number", fmt.Sprintf(`{"email":1,"password":%q}`, password), js, 400},
		{"email is an array", fmt.Sprintf(`{"email":[%q],"password":%q}`, email, password), js, 400},
		{"password is a number", fmt.Sprintf(`{"email":%q,"password":12345678}`, email), js, 400},
		{"password is an object", fmt.Sprintf(`{"email":%q,"password":{"p":%q}}`, email, password), js, 400},
		{"password is true", fmt.Sprintf(`{"email":%q,"password":true}`, email), js, 400},
		{"password is null", fmt.Sprintf(`{"email":%q,"password":null}`, email), js, 400},
		{"text/plain", ok, "text/plain", 400},
		{"text/plain charset", ok, "text/plain; charset=utf-8", 400},
		{"form", fmt.Sprintf("email=%s&password=%s", email, password), "application/x-www-form-urlencoded", 400},
		{"form carrying JSON", ok, "application/x-www-form-urlencoded", 400},
		{"multipart", "--XX\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n" + email +
			"\r\n--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n" + password + "\r\n--XX--\r\n",
			"multipart/form-data; boundary=XX", 400},
		{"missing Content-Type", ok, "", 400},
		{"over 1 MiB", "{" + inner + `,"pad":"` + strings.Repeat("a", 1<<20) + `"}`, js, 413},
	}
}

// TestE2EHostileBodies sends hostile bodies to POST /v1/users and
// POST /v1/session: each is a 4xx with the JSON error body, and nothing is
// written: no user is created and no session started.
func TestE2EHostileBodies(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	victim := e2eEmail("victim")
	s.register(t, victim, e2ePassword)

	var fresh []string
	t.Run("POST /v1/users", func(t *testing.T) {
		for i, c := range e2eHostileBodies("", e2ePassword) {
			email := fmt.Sprintf("hostile-%d@x.test", i)
			fresh = append(fresh, email)
			c = e2eHostileBodies(email, e2ePassword)[i]
			r := s.do(t, "POST", "/v1/users", c.body, e2eHeader("Content-Type", c.ctype))
			if r.status != c.want {
				t.Errorf("%s: status %d, want %d; body %s", c.name, r.status, c.want, r.body)
				continue
			}
			if code := r.errorCode(); code != "invalid_request" {
				t.Errorf("%s: error %q, want invalid_request", c.name, code)
			}
		}
	})
	t.Run("POST /v1/session", func(t *testing.T) {
		for _, c := range e2eHostileBodies(victim, e2ePassword) {
			r := s.do(t, "POST", "/v1/session", c.body, e2eHeader("Content-Type", c.ctype))
			want := c.want
			if w, ok := e2eHostileLogin[c.name]; ok {
				want = w
			}
			if r.status != want {
				t.Errorf("%s: status %d, want %d; body %s", c.name, r.status, want, r.body)
			}
			if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("%s: refused login set a cookie: %q", c.name, sc)
			}
		}
	})
	t.Run("nothing written", func(t *testing.T) {
		out := s.mustCLI(t, "", "user", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], victim) {
			t.Errorf("user list after hostile registrations:\n%s\nwant only %s", out, victim)
		}
		if l := strings.Split(strings.TrimSpace(s.mustCLI(t, "", "sessions", "list", "--email", victim)), "\n"); len(l) != 1 || l[0] != "" {
			t.Errorf("victim has sessions after hostile logins: %q", l)
		}
		// The addresses hostile bodies carried are still free, and the
		// well-formed body works.
		for i, c := range e2eHostileBodies("", "") {
			if i == 0 || c.name == "unknown field roles" || c.name == "over 1 MiB" {
				s.register(t, fresh[i], e2ePassword)
			}
		}
		s.login(t, victim, e2ePassword)
	})
}

// TestE2EDuplicateKeyCaseVariant sends a body whose keys differ only in
// case. encoding/json matches field names case-insensitively and keeps the
// last, so {"email":A,"EMAIL":B} is a duplicate key to the decoder that
// decides: a front end that reads "email" sees A while Sesame acts on B.
// The server refuses exact duplicate keys for this reason; a case variant
// must be refused the same way.
func TestE2EDuplicateKeyCaseVariant(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	victim := e2eEmail("casevictim")
	s.register(t, victim, e2ePassword)
	target := e2eEmail("casetarget")
	for _, body := range []string{
		fmt.Sprintf(`{"email":"decoy@x.test","EMAIL":%q,"password":%q}`, target, e2ePassword),
		fmt.Sprintf(`{"email":%q,"password":"decoy password","Password":%q}`, target, e2ePassword),
	} {
		s.do(t, "POST", "/v1/users", body).want(t, http.StatusBadRequest, "invalid_request")
	}
	for _, body := range []string{
		fmt.Sprintf(`{"email":"decoy@x.test","EMAIL":%q,"password":%q}`, victim, e2ePassword),
		fmt.Sprintf(`{"email":%q,"password":"decoy password","PASSWORD":%q}`, victim, e2ePassword),
	} {
		r := s.do(t, "POST", "/v1/session", body).want(t, http.StatusBadRequest, "invalid_request")
		if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("login with case-variant duplicate keys set a cookie")
		}
	}
}
