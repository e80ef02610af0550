package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/web"
)

// TestPagesEscapeWhatUsersSent: /account and /admin build the session
// list outside html/template; whatever a client sent as its user agent or
// address, and an email or role that got into the store, comes out as
// text, in element content and in attribute values alike.
func TestPagesEscapeWhatUsersSent(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	u, err := auth.Register(ctx, "ada@x.test", "correct horse battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	attacks := []sesame.Client{
		{IP: `"><script>alert(1)</script>`, UserAgent: `"><img src=x onerror=alert(2)> Firefox/128.0 (Windows)`},
		{IP: `1.2.3.4' onmouseover='alert(3)`, UserAgent: `Chrome/120.0 <svg onload=alert(4)>`},
		{IP: "127.0.0.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"},
	}
	var secret string
	for _, c := range attacks {
		l, err := auth.Login(ctx, sesame.LoginRequest{Email: "ada@x.test", Password: "correct horse battery", Client: c})
		if err != nil {
			t.Fatal(err)
		}
		secret = l.Secret
	}
	// Past the checks that registration and the API make, as a store
	// written by something else could hold them.
	if err := st.SetEmail(ctx, u.ID, `"><script>alert(5)</script>'&@x.test`); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRoles(ctx, u.ID, []string{sesame.RoleUser, sesame.RoleAdmin, `<b onclick=alert(6)>`}); err != nil {
		t.Fatal(err)
	}
	// A new Authenticator, so that no cached copy of the user hides the
	// store's.
	auth = sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	p := newPages(t, auth, secret)

	for _, path := range []string{"/account", "/admin?user=" + u.ID} {
		w := httptest.NewRecorder()
		h := p.Account()
		if strings.HasPrefix(path, "/admin") {
			h = p.Admin()
		}
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		body := w.Body.String()
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, w.Code, body)
		}
		for _, bad := range []string{"<script", "<img", "<svg", "<b ", `' onmouseover=`} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s shows %q unescaped:\n%s", path, bad, body)
			}
		}
		for _, want := range []string{
			"&lt;script&gt;alert(1)&lt;/script&gt;",         // an address
			"1.2.3.4&#39; onmouseover=&#39;alert(3)",        // an address
			"&#34;&gt;&lt;script&gt;alert(5)",               // the email
			"&lt;b onclick=alert(6)&gt;",                    // a role
			"Firefox 128 on Windows", "Chrome 120 on Linux", // user agents, in words only
		} {
			if path != "/account" && strings.Contains(want, "onclick") {
				continue // /admin shows roles in its users table, escaped by the template
			}
			if !strings.Contains(body, want) {
				t.Errorf("GET %s lacks %q:\n%s", path, want, body)
			}
		}
	}
}

// newPages returns pages whose every request carries secret as its session
// cookie, from the same origin.
func newPages(t *testing.T, auth *sesame.Authenticator, secret string) *web.Pages {
	t.Helper()
	rt, _ := web.NewReturnTo("http://sesame.test", "", nil)
	p, err := web.New(web.Config{
		Auth: auth, ReturnTo: rt,
		SessionSecret:      func(*http.Request) (string, bool) { return secret, true },
		SetSessionCookie:   func(w http.ResponseWriter, s string, _, _ time.Time) { w.Header().Add("Set-Cookie", "x="+s) },
		ClearSessionCookie: func(http.ResponseWriter) {},
		Client:             func(r *http.Request) sesame.Client { return sesame.Client{IP: "127.0.0.1", UserAgent: r.UserAgent()} },
		CrossOrigin:        func(r *http.Request) bool { return r.Header.Get("Origin") == "http://evil.test" },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
