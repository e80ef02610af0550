package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
	"github.com/sesameauth/sesame/token"
)

const routesIssuer = "https://sesame.example.test"

// downSessions is the memory store whose session lookups can fail.
type downSessions struct {
	*memstore.Store
	down atomic.Bool
}

func (d *downSessions) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	if d.down.Load() {
		return sesame.Session{}, errors.New("test: session store unreachable")
	}
	return d.Store.Session(ctx, hash)
}

type routesAccount struct {
	cookie, access, refresh string
}

// newRoutesServer is the API over the memory store with token grants, a
// user and an admin (each signed in by cookie and by token), and
// registration closed.
func newRoutesServer(t *testing.T) (http.Handler, *downSessions, routesAccount, routesAccount) {
	t.Helper()
	return newRoutesServerRevs(t, nil)
}

// newRoutesServerRevs is newRoutesServer with the revocation set that
// revs makes on the store's revocation log (nil: a set fed only by the
// server's own revocations).
func newRoutesServerRevs(t *testing.T, revs func(sesame.RevocationLog) *sesame.RevocationSet) (http.Handler, *downSessions, routesAccount, routesAccount) {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	sessions := &downSessions{Store: st}
	master := make([]byte, token.MasterKeySize)
	rand.Read(master)
	priv, k, err := token.GenerateKey(token.EdDSA, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if k, err = token.SealKey(master, k, priv); err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeySet([]sesame.SigningKey{k}, master, token.EdDSA, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keys := token.NewKeys(ks)
	if revs == nil {
		revs = func(sesame.RevocationLog) *sesame.RevocationSet {
			return sesame.NewRevocationSet(nil, time.Hour, 0, nil)
		}
	}
	set := revs(st)
	ver, err := token.NewVerifier(keys, routesIssuer, routesIssuer, token.WithRevocation(set.Revoked))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	hasher := password.NewHasher(password.Fast)
	succ := make([]byte, 32)
	rand.Read(succ)
	auth := sesame.New(sesame.Config{
		Users: st, Sessions: sessions, Audit: st, Limiter: st, Hasher: hasher,
		Revocations: set, Logger: log,
	})
	grants, err := sesame.NewGrants(auth, sesame.GrantsConfig{
		Backend: sessions, Verifier: ver, SuccessorKey: succ,
		Issuer: &token.Issuer{Keys: keys, Issuer: routesIssuer, Audience: []string{routesIssuer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.NewServer(server.Deps{
		Auth: auth, Grants: grants, LiveSessions: sessions, Ready: []sesame.Pinger{st}, Hasher: hasher, Logger: log,
		Registration: "closed", Verifier: ver, JWKS: func() []byte { return keys.Load().JWKS() },
		Issuer: routesIssuer, SigningAlg: token.EdDSA,
	})
	if err != nil {
		t.Fatal(err)
	}
	var accounts [2]routesAccount
	for i, roles := range [][]string{nil, {sesame.RoleAdmin}} {
		email := []string{"ada@example.test", "root@example.test"}[i]
		const pw = "correct horse battery"
		if _, err := auth.Register(ctx, email, pw, roles); err != nil {
			t.Fatal(err)
		}
		login, err := auth.Login(ctx, sesame.LoginRequest{Email: email, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		toks, err := grants.Password(ctx, email, pw, sesame.Client{})
		if err != nil {
			t.Fatal(err)
		}
		accounts[i] = routesAccount{login.Secret, toks.AccessToken, toks.RefreshToken}
	}
	return h, sessions, accounts[0], accounts[1]
}

type routeReq struct {
	method, path, body string
	cookie, bearer     string
	headers            []string // name, value, ...
}

type routeResp struct {
	status int
	code   string
	hdr    http.Header
	body   string
}

func (rr routeReq) do(h http.Handler) routeResp {
	var body io.Reader
	if rr.body != "" {
		body = strings.NewReader(rr.body)
	}
	r := httptest.NewRequest(rr.method, "http://sesame.example.test"+rr.path, body)
	if rr.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if rr.cookie != "" {
		r.AddCookie(&http.Cookie{Name: server.CookieName, Value: rr.cookie})
	}
	if rr.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+rr.bearer)
	}
	for i := 0; i < len(rr.headers); i += 2 {
		r.Header.Add(rr.headers[i], rr.headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	return routeResp{w.Code, e.Error, w.Header(), w.Body.String()}
}

// TestRoutesAuthentication pins which credentials each authenticated
// route accepts and how it refuses the rest, now that the routes go
// through httpauth.
func TestRoutesAuthentication(t *testing.T) {
	h, sessions, user, admin := newRoutesServer(t)
	crossSite := []string{"Sec-Fetch-Site", "cross-site"}
	const wwwAuth = `Bearer error="invalid_token"`
	for _, c := range []struct {
		name   string
		req    routeReq
		status int
		code   string
		body   string // a substring of a 2xx body
	}{
		{"session: nothing", routeReq{method: "GET", path: "/v1/session"}, 401, "unauthenticated", ""},
		{"session: cookie", routeReq{method: "GET", path: "/v1/session", cookie: user.cookie}, 200, "", `"email":"ada@example.test"`},
		{"session: bearer is not accepted", routeReq{method: "GET", path: "/v1/session", bearer: user.access}, 401, "unauthenticated", ""},
		{"session: unknown cookie", routeReq{method: "GET", path: "/v1/session", cookie: strings.Repeat("A", 43)}, 401, "unauthenticated", ""},

		{"userinfo: bearer", routeReq{method: "GET", path: "/v1/userinfo", bearer: user.access}, 200, "", `"auth":"token"`},
		{"userinfo: cookie", routeReq{method: "GET", path: "/v1/userinfo", cookie: user.cookie}, 200, "", `"auth":"session"`},
		{"userinfo: bad bearer", routeReq{method: "GET", path: "/v1/userinfo", bearer: "x.y.z"}, 401, "invalid_token", ""},
		{"userinfo: Basic", routeReq{method: "GET", path: "/v1/userinfo", headers: []string{"Authorization", "Basic eDp5"}}, 401, "invalid_token", ""},
		{"userinfo: bad bearer with good cookie", routeReq{method: "GET", path: "/v1/userinfo", bearer: "x.y.z", cookie: user.cookie}, 401, "invalid_token", ""},
		{"userinfo: refresh token as bearer", routeReq{method: "GET", path: "/v1/userinfo", bearer: user.refresh}, 401, "invalid_token", ""},
		{"userinfo: access_token query", routeReq{method: "GET", path: "/v1/userinfo?access_token=" + user.access}, 401, "unauthenticated", ""},

		{"sessions: cookie", routeReq{method: "GET", path: "/v1/sessions", cookie: user.cookie}, 200, "", `"current":true`},
		{"sessions: bearer", routeReq{method: "GET", path: "/v1/sessions", bearer: user.access}, 200, "", `"kind":"token"`},
		{"revoke others: cross-site cookie", routeReq{method: "DELETE", path: "/v1/sessions", cookie: user.cookie, headers: crossSite}, 403, "csrf", ""},
		{"revoke one: cross-origin cookie", routeReq{method: "DELETE", path: "/v1/sessions/x", cookie: user.cookie, headers: []string{"Origin", "https://evil.example"}}, 403, "csrf", ""},
		{"revoke one: unknown id", routeReq{method: "DELETE", path: "/v1/sessions/x", bearer: user.access, headers: crossSite}, 404, "not_found", ""},
		{"password: cross-site cookie", routeReq{method: "POST", path: "/v1/password", cookie: user.cookie, headers: crossSite, body: `{}`}, 403, "csrf", ""},
		{"password: nothing", routeReq{method: "POST", path: "/v1/password", body: `{}`}, 401, "unauthenticated", ""},

		{"admin: nothing", routeReq{method: "GET", path: "/v1/admin/users"}, 401, "unauthenticated", ""},
		{"admin: user cookie", routeReq{method: "GET", path: "/v1/admin/users", cookie: user.cookie}, 403, "forbidden", ""},
		{"admin: user bearer", routeReq{method: "GET", path: "/v1/admin/users", bearer: user.access}, 403, "forbidden", ""},
		{"admin: admin bearer", routeReq{method: "GET", path: "/v1/admin/users", bearer: admin.access}, 200, "", `"users"`},
		{"admin: admin cookie", routeReq{method: "GET", path: "/v1/admin/audit", cookie: admin.cookie}, 200, "", `"events"`},
		{"admin: cross-site admin cookie", routeReq{method: "DELETE", path: "/v1/admin/users/x/sessions", cookie: admin.cookie, headers: crossSite}, 403, "csrf", ""},
		{"admin: bad bearer", routeReq{method: "GET", path: "/v1/admin/users", bearer: "x.y.z"}, 401, "invalid_token", ""},

		{"register closed: anonymous", routeReq{method: "POST", path: "/v1/users", body: `{"email":"new@example.test","password":"correct horse battery"}`}, 403, "registration_closed", ""},
		{"register closed: user", routeReq{method: "POST", path: "/v1/users", bearer: user.access, body: `{"email":"new@example.test","password":"correct horse battery"}`}, 403, "registration_closed", ""},
		{"register closed: bad bearer", routeReq{method: "POST", path: "/v1/users", bearer: "x.y.z", body: `{"email":"new@example.test","password":"correct horse battery"}`}, 401, "invalid_token", ""},
		{"register closed: admin", routeReq{method: "POST", path: "/v1/users", bearer: admin.access, body: `{"email":"new@example.test","password":"correct horse battery"}`}, 201, "", `"email":"new@example.test"`},

		{"logout: nothing", routeReq{method: "DELETE", path: "/v1/session", bearer: user.access}, 401, "unauthenticated", ""},
		{"logout: cross-site", routeReq{method: "DELETE", path: "/v1/session", cookie: user.cookie, headers: crossSite}, 403, "csrf", ""},
	} {
		r := c.req.do(h)
		if r.status != c.status || r.code != c.code || !strings.Contains(r.body, c.body) {
			t.Errorf("%s: %d %s, want %d %q containing %q", c.name, r.status, r.body, c.status, c.code, c.body)
		}
		if got := r.hdr.Get("WWW-Authenticate"); (c.status == 401) != (got == wwwAuth) {
			t.Errorf("%s: %d with WWW-Authenticate %q", c.name, r.status, got)
		}
	}

	// The store down: 503, not 401.
	sessions.down.Store(true)
	for _, path := range []string{"/v1/session", "/v1/sessions", "/v1/userinfo", "/v1/admin/users"} {
		if r := (routeReq{method: "GET", path: path, cookie: admin.cookie}).do(h); r.status != 503 || r.code != "unavailable" || r.hdr.Get("Retry-After") == "" {
			t.Errorf("%s with the session store down: %d %s", path, r.status, r.body)
		}
	}
	sessions.down.Store(false)

	// Logout ends the session and clears the cookie, even when repeated.
	for i, want := range []int{204, 401} {
		r := routeReq{method: "DELETE", path: "/v1/session", cookie: user.cookie}.do(h)
		sc := r.hdr.Get("Set-Cookie")
		if r.status != want || !strings.HasPrefix(sc, server.CookieName+"=;") || !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("logout #%d: %d, Set-Cookie %q; want %d and the cookie cleared", i+1, r.status, sc, want)
		}
	}
	if r := (routeReq{method: "GET", path: "/v1/session", cookie: user.cookie}).do(h); r.status != 401 {
		t.Errorf("session after logout: %d", r.status)
	}
}

// TestRoutesRevocationsBehind: a node whose revocation set is past its
// bound (here: one that has never read the log) answers every cookie and
// bearer request 503 in words of its own, which tell it from a store that
// fails (the soak counts these 503s apart by them, lab/soakcheck.go).
func TestRoutesRevocationsBehind(t *testing.T) {
	h, _, user, _ := newRoutesServerRevs(t, func(log sesame.RevocationLog) *sesame.RevocationSet {
		return sesame.NewRevocationSet(log, time.Hour, time.Second, nil)
	})
	for _, rr := range []routeReq{
		{method: "GET", path: "/v1/session", cookie: user.cookie},
		{method: "GET", path: "/v1/userinfo", bearer: user.access},
		{method: "GET", path: "/v1/sessions", cookie: user.cookie},
	} {
		r := rr.do(h)
		if r.status != 503 || r.code != "unavailable" || !strings.Contains(r.body, "this node is behind on revocations") || r.hdr.Get("Retry-After") == "" {
			t.Errorf("%s %s with the revocation set behind: %d %s (Retry-After %q)", rr.method, rr.path, r.status, r.body, r.hdr.Get("Retry-After"))
		}
	}
}
