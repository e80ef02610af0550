package main

// End-to-end tests of hostile characters in what users choose (emails,
// user agents) and of how the command line prints them.

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/sqlitestore"
)

// e2eInvisibleEmails hold a control, format or unassigned character: each
// registered before issue 7 item 8.
var e2eInvisibleEmails = map[string]string{
	"NEL":                    "adm\u0085in@x.test",
	"CSI":                    "adm\u009b2Jin@x.test",
	"zero width space":       "adm\u200bin@x.test",
	"BOM":                    "\ufeffadmin@x.test",
	"right-to-left override": "admin\u202e@x.test",
	"soft hyphen":            "ad\u00admin@x.test",
	"unassigned":             "adm\u0378in@x.test",
}

// TestE2EEmailInvisibles: an email with a control, format or unassigned
// character is 400 at registration and refused by "sesame user add"; a
// login with one is the 401 of an unknown account; and what the CLI prints
// of a stored address (such as one registered before the rule) is escaped.
func TestE2EEmailInvisibles(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	for name, e := range e2eInvisibleEmails {
		s.do(t, "POST", "/v1/users", map[string]string{"email": e, "password": e2ePassword}).
			wantFor(t, "register with "+name, http.StatusBadRequest, "invalid_request")
		s.do(t, "POST", "/v1/session", map[string]string{"email": e, "password": e2ePassword}).
			wantFor(t, "login with "+name, http.StatusUnauthorized, "invalid_credentials")
		if _, err := s.cli(t, e2ePassword+"\n", "user", "add", "--email", e, "--password-stdin"); err == nil {
			t.Errorf("sesame user add --email with %s: accepted", name)
		} else if strings.ContainsAny(err.Error(), "\u0085\u009b\u200b\ufeff\u202e\u00ad") {
			t.Errorf("sesame user add --email with %s: the error prints the character raw: %q", name, err)
		}
	}
	if _, err := s.cli(t, e2ePassword+"\n", "user", "add", "--email", e2eEmail("role"), "--role", "ad\u202emin", "--password-stdin"); err == nil {
		t.Errorf("sesame user add --role with a right-to-left override: accepted")
	}
	s.do(t, "GET", "/v1/admin/users", nil).want(t, http.StatusUnauthorized) // nothing half-written to look at

	// An address stored before the rule, written past the API.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := sqlitestore.Open(ctx, filepath.Join(s.dataDir, "sesame.db"))
	if err != nil {
		t.Fatal(err)
	}
	legacy := "evil\u009b2J\x1b]0;pwned\x07\u202e@x.test"
	err = st.CreateUser(ctx, sesame.User{ID: sesame.NewID(), Email: legacy, Roles: []string{"user"}, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := s.mustCLI(t, "", "user", "list")
	if strings.ContainsAny(out, "\u009b\x1b\x07\u202e") {
		t.Errorf("sesame user list prints control or format characters raw:\n%q", out)
	}
	if !strings.Contains(out, `evil\x9b2J\x1b]0;pwned\x07\u202e@x.test`) {
		t.Errorf("sesame user list: want the stored address escaped as evil\\x9b2J\\x1b]0;pwned\\x07\\u202e@x.test, got:\n%s", out)
	}
}

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"admin@x.test":          "admin@x.test",
		"zoë 用户":                "zoë 用户",
		"a\u0085b":              `a\x85b`,
		"a\x1b[31mb":            `a\x1b[31mb`,
		"a\u202eb\u200bc\ufeff": `a\u202eb\u200bc\ufeff`,
		"tab\there\nnl":         `tab\x09here\x0anl`,
		`back\slash`:            `back\\slash`,
		"bad\xffutf8":           `bad\xffutf8`,
		"tag\U000e0041":         `tag\U000e0041`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%+q) = %q, want %q", in, got, want)
		}
	}
}
