package httpauth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/token"
)

const testIssuer = "https://auth.example.test"

var ctx = context.Background()

// flakySessions is the memory store with a switch that makes session
// lookups fail as a store that cannot be reached does, and a count of them.
type flakySessions struct {
	*memstore.Store
	down    atomic.Bool
	lookups atomic.Int64
}

var errStoreDown = errors.New("test: session store unreachable")

func (f *flakySessions) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	f.lookups.Add(1)
	if f.down.Load() {
		return sesame.Session{}, errStoreDown
	}
	return f.Store.Session(ctx, hash)
}

// flakyRevocations is a revocation set whose state can become unreadable.
type flakyRevocations struct {
	set  *sesame.RevocationSet
	down atomic.Bool
}

func (f *flakyRevocations) Revoked(sid string, iat time.Time) (bool, error) {
	if f.down.Load() {
		return false, fmt.Errorf("test: revocation state unknown: %w", sesame.ErrUnavailable)
	}
	return f.set.Revoked(sid, iat)
}

// fixture is a real Authenticator over the memory store with token grants,
// and two signed-in users, each with a session cookie and a token family.
type fixture struct {
	auth     *sesame.Authenticator
	grants   *sesame.Grants
	sessions *flakySessions
	revs     *flakyRevocations
	verifier *token.Verifier
	keys     *token.Keys

	user, admin account
}

// account is a signed-in user's credentials.
type account struct {
	sesame.User
	cookie  string // session secret
	session string // its public id
	access  string
	refresh string
	family  string // the token family's session id
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Now()
	master := make([]byte, token.MasterKeySize)
	rand.Read(master)
	priv, k, err := token.GenerateKey(token.EdDSA, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if k, err = token.SealKey(master, k, priv); err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeySet([]sesame.SigningKey{k}, master, token.EdDSA, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{keys: token.NewKeys(ks)}
	st := memstore.New()
	f.sessions = &flakySessions{Store: st}
	f.revs = &flakyRevocations{set: sesame.NewRevocationSet(nil, time.Hour, 0, nil)}
	f.verifier, err = token.NewVerifier(f.keys, testIssuer, testIssuer, token.WithRevocation(f.revs.Revoked))
	if err != nil {
		t.Fatal(err)
	}
	succ := make([]byte, 32)
	rand.Read(succ)
	f.auth = sesame.New(sesame.Config{
		Users: st, Sessions: f.sessions, Audit: st, Limiter: st,
		Hasher:      password.NewHasher(password.Fast),
		Revocations: f.revs.set,
	})
	f.grants, err = sesame.NewGrants(f.auth, sesame.GrantsConfig{
		Backend: f.sessions, Verifier: f.verifier, SuccessorKey: succ,
		Issuer: &token.Issuer{Keys: f.keys, Issuer: testIssuer, Audience: []string{testIssuer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		email string
		roles []string
		into  *account
	}{
		{"ada@example.test", nil, &f.user},
		{"root@example.test", []string{sesame.RoleAdmin}, &f.admin},
	} {
		const pw = "correct horse battery"
		user, err := f.auth.Register(ctx, u.email, pw, u.roles)
		if err != nil {
			t.Fatal(err)
		}
		login, err := f.auth.Login(ctx, sesame.LoginRequest{Email: u.email, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		toks, err := f.grants.Password(ctx, u.email, pw, sesame.Client{})
		if err != nil {
			t.Fatal(err)
		}
		u.into.User = user
		u.into.cookie, u.into.session = login.Secret, login.Session.ID
		u.into.access, u.into.refresh, u.into.family = toks.AccessToken, toks.RefreshToken, toks.SessionID
	}
	return f
}

// whoami answers 200 with how the request was authenticated, or
// "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := httpauth.FromContext(r.Context())
	if !ok {
		fmt.Fprint(w, "anonymous")
		return
	}
	fmt.Fprintf(w, "%s %s", p.Via, p.User.Email)
})

// req builds a request to https://app.example.test/; opts alter it.
type reqOpt func(*http.Request)

func req(method string, opts ...reqOpt) *http.Request {
	r := httptest.NewRequest(method, "https://app.example.test/", nil)
	for _, o := range opts {
		o(r)
	}
	return r
}

func cookie(secret string) reqOpt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: httpauth.DefaultCookieName, Value: secret}) }
}

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Add("Authorization", "Bearer "+tok) }
}

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Add(k, v) } }

func query(k, v string) reqOpt {
	return func(r *http.Request) { r.URL.RawQuery = url.Values{k: {v}}.Encode() }
}

func form(k, v string) reqOpt {
	return func(r *http.Request) {
		body := url.Values{k: {v}}.Encode()
		*r = *httptest.NewRequest(r.Method, r.URL.String(), strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
}

var crossSite = header("Sec-Fetch-Site", "cross-site")

// want is an expected answer: 200 with body, or an error status and code.
type want struct {
	status int
	body   string // for 200
	code   string // for errors
}

var (
	anonymous       = want{200, "anonymous", ""}
	unauthenticated = want{401, "", "unauthenticated"}
	invalidToken    = want{401, "", "invalid_token"}
	csrf            = want{403, "", "csrf"}
	forbidden       = want{403, "", "forbidden"}
	unavailable     = want{503, "", "unavailable"}
)

func ok(via, email string) want { return want{200, via + " " + email, ""} }

func check(t *testing.T, name string, h http.Handler, r *http.Request, w want) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != w.status {
		t.Errorf("%s: status %d %q, want %d", name, rec.Code, rec.Body, w.status)
		return
	}
	if w.status == 200 {
		if rec.Body.String() != w.body {
			t.Errorf("%s: body %q, want %q", name, rec.Body, w.body)
		}
		return
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != w.code || body.Description == "" {
		t.Errorf("%s: body %q (%v), want error %q", name, rec.Body, err, w.code)
	}
	if got := rec.Header().Get("WWW-Authenticate"); (w.status == 401) != (got == `Bearer error="invalid_token"`) {
		t.Errorf("%s: %d with WWW-Authenticate %q", name, w.status, got)
	}
	if w.status == 503 && rec.Header().Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", name)
	}
}

// TestMiddleware runs every kind of request through each middleware.
func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	a := httpauth.New(httpauth.Config{Sessions: f.auth, Tokens: f.verifier})
	mw := map[string]http.Handler{
		"RequireSession": a.RequireSession(whoami),
		"RequireToken":   a.RequireToken(whoami),
		"RequireAny":     a.RequireAny(whoami),
		"Optional":       a.Optional(whoami),
	}
	u := f.user
	session, tok := ok("session", u.Email), ok("token", u.Email)
	unknown, _ := sesame.NewSecret()
	for _, c := range []struct {
		name string
		r    func() *http.Request
		// what RequireSession, RequireToken, RequireAny and Optional answer
		session, token, any, optional want
	}{
		{"nothing", func() *http.Request { return req("GET") },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"cookie", func() *http.Request { return req("GET", cookie(u.cookie)) },
			session, unauthenticated, session, session},
		{"bearer", func() *http.Request { return req("GET", bearer(u.access)) },
			unauthenticated, tok, tok, tok},
		{"lower-case bearer scheme", func() *http.Request { return req("GET", header("Authorization", "bearer "+u.access)) },
			unauthenticated, tok, tok, tok},
		{"cookie and bearer", func() *http.Request { return req("GET", cookie(u.cookie), bearer(f.admin.access)) },
			session, ok("token", f.admin.Email), ok("token", f.admin.Email), ok("token", f.admin.Email)},
		{"cookie of no session", func() *http.Request { return req("GET", cookie(unknown)) },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"malformed cookie", func() *http.Request { return req("GET", cookie(u.cookie+"x")) },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"cookie of another name", func() *http.Request {
			r := req("GET")
			r.AddCookie(&http.Cookie{Name: "sesame", Value: u.cookie})
			return r
		}, unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"garbage bearer", func() *http.Request { return req("GET", bearer("not.a.token")) },
			unauthenticated, invalidToken, invalidToken, anonymous},
		{"bad bearer beside a good cookie", func() *http.Request { return req("GET", cookie(u.cookie), bearer("not.a.token")) },
			session, invalidToken, invalidToken, anonymous},
		{"Basic credentials", func() *http.Request { return req("GET", header("Authorization", "Basic YWRhOnB3")) },
			unauthenticated, invalidToken, invalidToken, anonymous},
		{"empty bearer", func() *http.Request { return req("GET", header("Authorization", "Bearer ")) },
			unauthenticated, invalidToken, invalidToken, anonymous},
		{"two Authorization headers", func() *http.Request { return req("GET", bearer(u.access), bearer(u.access)) },
			unauthenticated, invalidToken, invalidToken, anonymous},
		{"refresh token as bearer", func() *http.Request { return req("GET", bearer(u.refresh)) },
			unauthenticated, invalidToken, invalidToken, anonymous},
		{"session secret as bearer", func() *http.Request { return req("GET", bearer(u.cookie)) },
			unauthenticated, invalidToken, invalidToken, anonymous},
		{"access_token in the query", func() *http.Request { return req("GET", query("access_token", u.access)) },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"access_token in a form", func() *http.Request { return req("POST", form("access_token", u.access)) },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"session secret in the query", func() *http.Request { return req("GET", query(httpauth.DefaultCookieName, u.cookie)) },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"session secret in a form", func() *http.Request { return req("POST", form("session", u.cookie)) },
			unauthenticated, unauthenticated, unauthenticated, anonymous},
		{"session secret in the Cookie header under another name", func() *http.Request {
			return req("GET", header("Cookie", "session="+u.cookie))
		}, unauthenticated, unauthenticated, unauthenticated, anonymous},

		// Cross-origin requests: refused with the cookie when unsafe.
		{"cross-site POST with cookie", func() *http.Request { return req("POST", cookie(u.cookie), crossSite) },
			csrf, unauthenticated, csrf, csrf},
		{"cross-origin DELETE with cookie (Origin)", func() *http.Request {
			return req("DELETE", cookie(u.cookie), header("Origin", "https://evil.example"))
		}, csrf, unauthenticated, csrf, csrf},
		{"Origin null POST with cookie", func() *http.Request { return req("POST", cookie(u.cookie), header("Origin", "null")) },
			csrf, unauthenticated, csrf, csrf},
		{"cross-site GET with cookie", func() *http.Request { return req("GET", cookie(u.cookie), crossSite) },
			session, unauthenticated, session, session},
		{"same-origin POST with cookie", func() *http.Request {
			return req("POST", cookie(u.cookie), header("Sec-Fetch-Site", "same-origin"), header("Origin", "https://app.example.test"))
		}, session, unauthenticated, session, session},
		{"POST with cookie and no origin headers (curl)", func() *http.Request { return req("POST", cookie(u.cookie)) },
			session, unauthenticated, session, session},
		{"cross-site POST with bearer", func() *http.Request { return req("POST", bearer(u.access), crossSite) },
			unauthenticated, tok, tok, tok},
		{"cross-site POST with an unknown cookie", func() *http.Request { return req("POST", cookie(unknown), crossSite) },
			csrf, unauthenticated, csrf, csrf},
	} {
		for _, m := range []struct {
			name string
			want want
		}{{"RequireSession", c.session}, {"RequireToken", c.token}, {"RequireAny", c.any}, {"Optional", c.optional}} {
			check(t, m.name+": "+c.name, mw[m.name], c.r(), m.want)
		}
	}
}

// TestCrossOriginBeforeStore: a cross-origin cookie request is refused
// without the session store being asked.
func TestCrossOriginBeforeStore(t *testing.T) {
	f := newFixture(t)
	a := httpauth.New(httpauth.Config{Sessions: f.auth, Tokens: f.verifier})
	before := f.sessions.lookups.Load()
	for _, h := range []http.Handler{a.RequireSession(whoami), a.RequireAny(whoami), a.Optional(whoami)} {
		check(t, "cross-site POST", h, req("POST", cookie(f.user.cookie), crossSite), csrf)
	}
	if n := f.sessions.lookups.Load() - before; n != 0 {
		t.Errorf("the session store was asked %d times for cross-origin requests", n)
	}
}

// TestStoreDown: when the session store or the revocation state cannot be
// read, the answer is 503, never 401 (and never a success).
func TestStoreDown(t *testing.T) {
	f := newFixture(t)
	a := httpauth.New(httpauth.Config{Sessions: f.auth, Tokens: f.verifier})
	f.sessions.down.Store(true)
	for name, h := range map[string]http.Handler{"RequireSession": a.RequireSession(whoami), "RequireAny": a.RequireAny(whoami), "Optional": a.Optional(whoami)} {
		check(t, name+": cookie while the session store is down", h, req("GET", cookie(f.user.cookie)), unavailable)
	}
	check(t, "bearer while the session store is down", a.RequireAny(whoami), req("GET", bearer(f.user.access)), ok("token", f.user.Email))
	f.sessions.down.Store(false)

	f.revs.down.Store(true)
	for name, h := range map[string]http.Handler{"RequireToken": a.RequireToken(whoami), "RequireAny": a.RequireAny(whoami), "Optional": a.Optional(whoami)} {
		check(t, name+": bearer while revocations are unknown", h, req("GET", bearer(f.user.access)), unavailable)
	}
	f.revs.down.Store(false)
	check(t, "after recovery", a.RequireAny(whoami), req("GET", bearer(f.user.access)), ok("token", f.user.Email))

	// The error reaches OnError unchanged, for the app to log.
	var got error
	b := httpauth.New(httpauth.Config{Sessions: f.auth, OnError: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		httpauth.WriteError(w, r, err)
	}})
	f.sessions.down.Store(true)
	check(t, "custom OnError", b.RequireSession(whoami), req("GET", cookie(f.user.cookie)), unavailable)
	if !errors.Is(got, errStoreDown) {
		t.Errorf("OnError got %v, want the store's error", got)
	}
}

// TestEndedSessions: a logged-out cookie and the access token of a revoked
// family are refused at once.
func TestEndedSessions(t *testing.T) {
	f := newFixture(t)
	a := httpauth.New(httpauth.Config{Sessions: f.auth, Tokens: f.verifier})
	h := a.RequireAny(whoami)
	check(t, "cookie before logout", h, req("GET", cookie(f.user.cookie)), ok("session", f.user.Email))
	if err := f.auth.Logout(ctx, f.user.cookie, sesame.Client{}); err != nil {
		t.Fatal(err)
	}
	check(t, "cookie after logout", h, req("GET", cookie(f.user.cookie)), unauthenticated)

	check(t, "bearer before revocation", h, req("GET", bearer(f.user.access)), ok("token", f.user.Email))
	if err := f.grants.Revoke(ctx, f.user.refresh, sesame.Client{}); err != nil {
		t.Fatal(err)
	}
	check(t, "bearer after its family was revoked", h, req("GET", bearer(f.user.access)), invalidToken)
}

// TestRequireRole: 401 without a principal, 403 without the role.
func TestRequireRole(t *testing.T) {
	f := newFixture(t)
	a := httpauth.New(httpauth.Config{Sessions: f.auth, Tokens: f.verifier})
	admin := a.RequireAny(a.RequireRole(sesame.RoleAdmin)(whoami))
	user := a.RequireAny(a.RequireRole(sesame.RoleUser)(whoami))
	for _, c := range []struct {
		name        string
		r           *http.Request
		admin, user want
	}{
		{"anonymous", req("GET"), unauthenticated, unauthenticated},
		{"user by cookie", req("GET", cookie(f.user.cookie)), forbidden, ok("session", f.user.Email)},
		{"user by bearer", req("GET", bearer(f.user.access)), forbidden, ok("token", f.user.Email)},
		{"admin by cookie", req("GET", cookie(f.admin.cookie)), ok("session", f.admin.Email), ok("session", f.admin.Email)},
		{"admin by bearer", req("GET", bearer(f.admin.access)), ok("token", f.admin.Email), ok("token", f.admin.Email)},
		{"bad bearer", req("GET", bearer("x.y.z")), invalidToken, invalidToken},
	} {
		check(t, "admin route: "+c.name, admin, c.r.Clone(ctx), c.admin)
		check(t, "user route: "+c.name, user, c.r.Clone(ctx), c.user)
	}
	// Without a middleware before it, nobody is anybody.
	check(t, "RequireRole alone", a.RequireRole(sesame.RoleUser)(whoami), req("GET", cookie(f.admin.cookie)), unauthenticated)
	// Optional then RequireRole: anonymous is 401.
	check(t, "Optional then RequireRole", a.Optional(a.RequireRole(sesame.RoleUser)(whoami)), req("GET"), unauthenticated)
}

// TestPrincipal checks what handlers see.
func TestPrincipal(t *testing.T) {
	f := newFixture(t)
	a := httpauth.New(httpauth.Config{Sessions: f.auth, Tokens: f.verifier})
	var got httpauth.Principal
	h := a.RequireAny(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = httpauth.FromContext(r.Context())
	}))

	h.ServeHTTP(httptest.NewRecorder(), req("GET", cookie(f.admin.cookie)))
	if got.Via != httpauth.ViaSession || got.Claims != nil || got.User.ID != f.admin.ID ||
		got.Session.ID != f.admin.session || got.User.CreatedAt.IsZero() || !got.HasRole(sesame.RoleAdmin) {
		t.Errorf("cookie principal = %+v", got)
	}
	h.ServeHTTP(httptest.NewRecorder(), req("GET", bearer(f.admin.access)))
	if got.Via != httpauth.ViaToken || got.Claims == nil || got.Claims.SessionID != f.admin.family ||
		got.User.ID != f.admin.ID || got.User.Email != f.admin.Email || got.Session.ID != f.admin.family ||
		got.Session.Kind != sesame.KindToken || !got.HasRole(sesame.RoleAdmin) {
		t.Errorf("token principal = %+v (claims %+v)", got, got.Claims)
	}

	p, err := a.Authenticate(req("GET", cookie(f.user.cookie)))
	if err != nil || p.User.ID != f.user.ID {
		t.Errorf("Authenticate = %+v, %v", p, err)
	}
	if _, err := a.Authenticate(req("GET")); !errors.Is(err, httpauth.ErrNoCredentials) {
		t.Errorf("Authenticate(anonymous) = %v, want ErrNoCredentials", err)
	}
	if _, ok := httpauth.FromContext(ctx); ok {
		t.Error("FromContext found a principal in an empty context")
	}
	c := httpauth.NewContext(ctx, httpauth.Principal{Via: httpauth.ViaToken})
	if p, ok := httpauth.FromContext(c); !ok || p.Via != httpauth.ViaToken {
		t.Errorf("FromContext(NewContext(p)) = %+v, %v", p, ok)
	}
}

// TestConfig covers the configurable parts: cookie name, cross-origin
// check, error writer, and missing verifiers.
func TestConfig(t *testing.T) {
	f := newFixture(t)
	var errs []error
	a := httpauth.New(httpauth.Config{
		Sessions:    f.auth,
		Tokens:      f.verifier,
		CookieName:  "app-session",
		CrossOrigin: func(r *http.Request) bool { return r.Header.Get("X-Evil") != "" },
		OnError: func(w http.ResponseWriter, r *http.Request, err error) {
			errs = append(errs, err)
			w.WriteHeader(http.StatusTeapot)
		},
	})
	h := a.RequireAny(whoami)
	named := func(secret string) reqOpt {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "app-session", Value: secret}) }
	}
	check(t, "custom cookie name", h, req("POST", named(f.user.cookie), crossSite), ok("session", f.user.Email))
	for _, r := range []*http.Request{
		req("GET", cookie(f.user.cookie)),                       // the default name is not read
		req("GET", named(f.user.cookie), header("X-Evil", "1")), // the custom check
		req("GET", bearer("x.y.z")),
		req("GET", named(f.admin.cookie)),
	} {
		rec := httptest.NewRecorder()
		a.RequireAny(a.RequireRole("auditor")(whoami)).ServeHTTP(rec, r)
		if rec.Code != http.StatusTeapot {
			t.Errorf("custom OnError not used: %d", rec.Code)
		}
	}
	for i, target := range []error{httpauth.ErrNoCredentials, httpauth.ErrCrossOrigin, sesame.ErrInvalidToken, httpauth.ErrForbidden} {
		if i >= len(errs) || !errors.Is(errs[i], target) {
			t.Errorf("OnError got %v, want %v at %d", errs, target, i)
		}
	}

	none := httpauth.New(httpauth.Config{})
	check(t, "no token verifier", none.RequireAny(whoami), req("GET", bearer(f.user.access)), invalidToken)
	check(t, "no session authenticator", none.RequireAny(whoami), req("GET", cookie(f.user.cookie)), unauthenticated)
}
