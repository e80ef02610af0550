package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
)

// downSessions is a session store that cannot answer.
type downSessions struct{ *memstore.Store }

var errDown = errors.New("connection refused to 10.0.0.1:5432 (SELECT * FROM sessions)")

func (downSessions) Session(context.Context, [32]byte) (sesame.Session, error) {
	return sesame.Session{}, errDown
}

func (downSessions) CreateSession(context.Context, sesame.Session) error { return errDown }

func TestStoreDownIsAPage(t *testing.T) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: downSessions{st}, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	if _, err := auth.Register(context.Background(), "ada@x.test", "correct horse battery", nil); err != nil {
		t.Fatal(err)
	}
	secret, _ := sesame.NewSecret()
	p := newPages(t, auth, secret)
	for name, tc := range map[string]struct {
		h   http.Handler
		req *http.Request
	}{
		"GET /account": {p.Account(), httptest.NewRequest("GET", "/account", nil)},
		"GET /admin":   {p.Admin(), httptest.NewRequest("GET", "/admin", nil)},
		"POST /login":  {p.Login(), form("/login", "email=ada@x.test&password=correct+horse+battery")},
		"POST /logout": {p.Logout(), form("/logout", "")},
	} {
		w := httptest.NewRecorder()
		tc.h.ServeHTTP(w, tc.req)
		body := w.Body.String()
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s with the session store down: %d (Retry-After %q), want 503 with Retry-After", name, w.Code, w.Header().Get("Retry-After"))
		}
		if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" || !strings.Contains(body, "cannot reach its data store") {
			t.Errorf("%s: %q page does not say the store is down:\n%s", name, ct, body)
		}
		if strings.Contains(body, "SELECT") || strings.Contains(body, "10.0.0.1") || w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s: the page leaks the error or sets a cookie:\n%s", name, body)
		}
	}
}

func form(path, body string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}
