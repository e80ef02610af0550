package main

// Helpers for the end-to-end tests: each test starts the real server
// through run (exactly what main does, minus the process) on 127.0.0.1:0
// with its own data directory, and talks HTTP to it as a browser, a script
// or an attacker would. These are the one set of server, request and
// account helpers of every e2e test of package main; what only the token
// tests need (grants, JWTs, keys) is in e2e_tokens_test.go, what only the
// multi-node tests need (PostgreSQL, Redis) in e2e_multinode_test.go.
// Every identifier here starts with e2e so that it cannot collide with
// other tests of package main.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	e2eCookieName = "__Host-sesame"
	e2eAgent      = "sesame-e2e" // the User-Agent of every request
	e2eJSONCT     = "application/json"
	e2eFormCT     = "application/x-www-form-urlencoded"
)

// e2ePassword is every test user's password.
const e2ePassword = "correct horse battery staple"

// e2eLog is a thread-safe writer for the server's stderr.
type e2eLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *e2eLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *e2eLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// e2eNoEnv is the environment of the commands the tests run unless they
// give one: empty, so that no SESAME_ variable of the machine running the
// tests leaks in.
func e2eNoEnv(string) string { return "" }

// e2eEnv returns a getenv over m.
func e2eEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var e2eLogField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// e2eListening returns the fields of the "sesame listening" log line, or
// nil if it has not been written yet.
func e2eListening(log string) map[string]string {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="sesame listening"`) {
			continue
		}
		f := map[string]string{}
		for _, m := range e2eLogField.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if u, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
				v = u
			}
			f[m[1]] = v
		}
		return f
	}
	return nil
}

// e2eServer is a running "sesame serve".
type e2eServer struct {
	name    string // "A" for node A of a test that runs several; "" for a lone server
	host    string // 127.0.0.1:PORT
	base    string // http://127.0.0.1:PORT
	issuer  string // as logged
	kid     string // the signing key at start, as logged
	alg     string // as logged
	dataDir string
	log     *e2eLog
	client  *http.Client
	done    chan error // run's result, once it has returned
}

// label is what messages about s start with: "node A: ", or nothing for a
// lone server.
func (s *e2eServer) label() string {
	if s.name == "" {
		return ""
	}
	return "node " + s.name + ": "
}

// e2eStart starts "sesame serve" on a free port with a fresh data directory,
// an empty environment and the extra flags.
func e2eStart(t testing.TB, extra ...string) *e2eServer {
	t.Helper()
	return e2eStartNode(t, "", "", e2eNoEnv, extra...)
}

// e2eStartNode starts "sesame serve" on a free port as the named node ("" for
// a lone server), with the data directory (a fresh one if empty), getenv and
// the extra flags.
func e2eStartNode(t testing.TB, name, dataDir string, getenv func(string) string, extra ...string) *e2eServer {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	return e2eStartWith(t, name, dataDir, args, getenv)
}

// e2eStartWith runs run(args) with getenv and waits until the server logs
// that it listens. At cleanup it stops the server and fails the test unless
// run then returns nil (a graceful shutdown).
func e2eStartWith(t testing.TB, name, dataDir string, args []string, getenv func(string) string) *e2eServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &e2eServer{name: name, dataDir: dataDir, log: &e2eLog{}, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, args, getenv, strings.NewReader(""), io.Discard, s.log) }()

	var f map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if f = e2eListening(s.log.String()); f != nil {
			break
		}
		select {
		case err := <-s.done:
			cancel()
			t.Fatalf("%srun(%q) returned before listening: %v\nstderr:\n%s", s.label(), args, err, s.log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%srun(%q) did not log its address within 30s\nstderr:\n%s", s.label(), args, s.log)
		}
	}
	s.host, s.issuer, s.kid, s.alg = f["addr"], f["issuer"], f["kid"], f["signing_alg"]
	s.base = "http://" + s.host
	if s.host == "" || s.issuer == "" || s.kid == "" {
		cancel()
		t.Fatalf("%slistening line lacks addr, issuer or kid: %v", s.label(), f)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	s.client = &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("%srun returned %v after its context ended; want nil (graceful shutdown)", s.label(), err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%srun did not return within 30s of its context ending", s.label())
		}
		if out := s.log.String(); strings.Contains(out, "panic") {
			t.Errorf("%sserver log mentions a panic:\n%s", s.label(), out)
		}
		if t.Failed() && s.name != "" {
			t.Logf("node %s log:\n%s", s.name, s.log)
		}
	})
	return s
}

// exited reports whether run has returned (the process would have ended).
func (s *e2eServer) exited() (bool, error) {
	select {
	case err := <-s.done:
		s.done <- err // keep it for cleanup
		return true, err
	default:
		return false, nil
	}
}

// e2eResp is a response, read in full.
type e2eResp struct {
	req    string // "METHOD /path", for messages
	status int
	header http.Header
	body   []byte
}

// e2eOpt changes a request before it is sent.
type e2eOpt func(*http.Request)

// e2eCookie sends the session cookie with value v.
func e2eCookie(v string) e2eOpt {
	return func(r *http.Request) { r.Header.Add("Cookie", e2eCookieName+"="+v) }
}

// e2eBearer sends the access token in the Authorization header.
func e2eBearer(at string) e2eOpt { return e2eHeader("Authorization", "Bearer "+at) }

// e2eHeader sets a header; an empty value deletes it.
func e2eHeader(k, v string) e2eOpt {
	return func(r *http.Request) {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
}

// e2eForbiddenInErrors are what no error body may contain: SQL, the store's
// name, or a stack trace.
var e2eForbiddenInErrors = []string{"sql", "SQL", "Sql", "sqlite", "goroutine", "panic", "runtime/", ".go:"}

// do sends a request and checks what every response must satisfy: an error
// response carries the contract's JSON error body and leaks nothing, and no
// response allows every origin.
//
// body may be nil (no body), a string or []byte (sent as is, declared
// application/json unless an option says otherwise), or anything else
// (marshalled to JSON).
func (s *e2eServer) do(t testing.TB, method, path string, body any, opts ...e2eOpt) e2eResp {
	t.Helper()
	r, err := s.send(t, method, path, body, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// form is do for a POST of an application/x-www-form-urlencoded body.
func (s *e2eServer) form(t testing.TB, path, body string, opts ...e2eOpt) e2eResp {
	t.Helper()
	return s.do(t, "POST", path, body, append([]e2eOpt{e2eHeader("Content-Type", e2eFormCT)}, opts...)...)
}

// send is do for goroutines other than the test's: it returns an error
// instead of ending the test.
func (s *e2eServer) send(t testing.TB, method, path string, body any, opts ...e2eOpt) (e2eResp, error) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return e2eResp{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return e2eResp{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", e2eJSONCT)
	}
	req.Header.Set("User-Agent", e2eAgent)
	for _, o := range opts {
		o(req)
	}
	what := s.label() + method + " " + path
	res, err := s.client.Do(req)
	if err != nil {
		return e2eResp{}, fmt.Errorf("%s: %w", what, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return e2eResp{}, fmt.Errorf("%s: reading the body: %w", what, err)
	}
	r := e2eResp{req: what, status: res.StatusCode, header: res.Header, body: b}
	r.checkInvariants(t)
	return r, nil
}

func (r e2eResp) checkInvariants(t testing.TB) {
	t.Helper()
	for _, v := range r.header.Values("Access-Control-Allow-Origin") {
		if v == "*" {
			t.Errorf("%s: Access-Control-Allow-Origin: * (must never be a wildcard)", r.req)
		}
	}
	if e2ePortalPath(r.req) {
		e2eCheckPage(t, r)
		return
	}
	if r.status < 400 {
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error %d has Content-Type %q, want application/json; body %q", r.req, r.status, ct, r.body)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: error %d body is not a JSON object: %v; body %q", r.req, r.status, err, r.body)
		return
	}
	for _, k := range []string{"error", "error_description"} {
		if v, ok := e[k].(string); !ok || v == "" {
			t.Errorf("%s: error %d body lacks a non-empty string %q: %s", r.req, r.status, k, r.body)
		}
	}
	for _, bad := range e2eForbiddenInErrors {
		if bytes.Contains(r.body, []byte(bad)) {
			t.Errorf("%s: error %d body contains %q: %s", r.req, r.status, bad, r.body)
		}
	}
}

// want fails the test unless the response has the status (and, for an
// error, the error code). It returns r, for chaining.
func (r e2eResp) want(t testing.TB, status int, code ...string) e2eResp {
	t.Helper()
	r.wantFor(t, "", status, code...)
	return r
}

// wantFor is want for a request described as what in the message; it
// reports whether r passed.
func (r e2eResp) wantFor(t testing.TB, what string, status int, code ...string) bool {
	t.Helper()
	if what != "" {
		what += ": "
	}
	if r.status != status {
		t.Errorf("%s%s: status %d, want %d; body %s", what, r.req, r.status, status, r.body)
		return false
	}
	if len(code) > 0 {
		if got := r.errorCode(); got != code[0] {
			t.Errorf("%s%s: error %q, want %q; body %s", what, r.req, got, code[0], r.body)
			return false
		}
	}
	return true
}

// errorCode returns the "error" of the body.
func (r e2eResp) errorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(r.body, &e)
	return e.Error
}

// json decodes the body as an object.
func (r e2eResp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v; body %q", r.req, err, r.body)
	}
	return m
}

// cookies returns every cookie the response sets, parsed.
func (r e2eResp) cookies() []*http.Cookie {
	return (&http.Response{Header: r.header}).Cookies()
}

// setCookies returns the response's session cookies, parsed.
func (r e2eResp) setCookies() []*http.Cookie {
	var out []*http.Cookie
	for _, c := range r.cookies() {
		if c.Name == e2eCookieName {
			out = append(out, c)
		}
	}
	return out
}

// rawSetCookie returns the raw Set-Cookie header of the session cookie.
func (r e2eResp) rawSetCookie(t testing.TB) string {
	t.Helper()
	var found []string
	for _, v := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(v, e2eCookieName+"=") {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want exactly one Set-Cookie for %s, got %q", r.req, e2eCookieName, r.header.Values("Set-Cookie"))
	}
	return found[0]
}

var e2eSeq atomic.Int64

// e2eEmail returns a fresh address.
func e2eEmail(prefix string) string {
	return fmt.Sprintf("%s-%d@x.test", prefix, e2eSeq.Add(1))
}

// register creates a user through the API and returns its id.
func (s *e2eServer) register(t testing.TB, email, password string) string {
	t.Helper()
	r := s.do(t, "POST", "/v1/users", map[string]string{"email": email, "password": password})
	if !r.wantFor(t, "register "+email, http.StatusCreated) {
		t.FailNow()
	}
	id, _ := r.json(t)["id"].(string)
	if id == "" {
		t.Fatalf("register %s: no id in %s", email, r.body)
	}
	return id
}

// e2eLogin is a successful login.
type e2eLogin struct {
	cookie    string // the cookie's value: the session secret
	userID    string
	sessionID string // the public handle
	body      map[string]any
}

// login signs in and returns the session cookie and the ids.
func (s *e2eServer) login(t testing.TB, email, password string, opts ...e2eOpt) e2eLogin {
	t.Helper()
	r := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": password}, opts...)
	if r.status != http.StatusCreated {
		t.Fatalf("%slogin %s: status %d, want 201; body %s", s.label(), email, r.status, r.body)
	}
	cs := r.setCookies()
	if len(cs) != 1 || cs[0].Value == "" {
		t.Fatalf("%slogin %s: want one non-empty %s cookie, got %q", s.label(), email, e2eCookieName, r.header.Values("Set-Cookie"))
	}
	m := r.json(t)
	u, _ := m["user"].(map[string]any)
	ss, _ := m["session"].(map[string]any)
	l := e2eLogin{cookie: cs[0].Value, body: m}
	l.userID, _ = u["id"].(string)
	l.sessionID, _ = ss["id"].(string)
	if l.userID == "" || l.sessionID == "" {
		t.Fatalf("%slogin %s: no user.id or session.id in %s", s.label(), email, r.body)
	}
	return l
}

// newUser registers a fresh user and signs in once.
func (s *e2eServer) newUser(t testing.TB, prefix string) (email string, l e2eLogin) {
	t.Helper()
	email = e2eEmail(prefix)
	s.register(t, email, e2ePassword)
	return email, s.login(t, email, e2ePassword)
}

// getSession is GET /v1/session with the session cookie.
func (s *e2eServer) getSession(t testing.TB, cookie string) e2eResp {
	t.Helper()
	return s.do(t, "GET", "/v1/session", nil, e2eCookie(cookie))
}

// alive reports whether the cookie authenticates GET /v1/session: 200 is
// true, 401 is false, anything else fails the test.
func (s *e2eServer) alive(t testing.TB, cookie string) bool {
	t.Helper()
	r := s.getSession(t, cookie)
	switch r.status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		if r.errorCode() != "unauthenticated" {
			t.Errorf("%s: 401 with error %q, want unauthenticated", r.req, r.errorCode())
		}
		return false
	}
	t.Fatalf("%s: status %d, want 200 or 401; body %s", r.req, r.status, r.body)
	return false
}

// wantAlive fails the test unless the session cookie authenticates.
func (s *e2eServer) wantAlive(t testing.TB, cookie, what string) {
	t.Helper()
	if !s.alive(t, cookie) {
		t.Errorf("%s: session is 401, want it alive (200)", what)
	}
}

// wantDead fails the test unless the session cookie is refused.
func (s *e2eServer) wantDead(t testing.TB, cookie, what string) {
	t.Helper()
	if s.alive(t, cookie) {
		t.Errorf("%s: session still authenticates (200), want 401", what)
	}
}

// e2eCLI runs a sesame command other than serve with getenv and stdin, and
// returns what it wrote to stdout; an error carries its stderr.
func e2eCLI(getenv func(string) string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, args, getenv, strings.NewReader(stdin), &out, &errOut)
	if err != nil {
		err = fmt.Errorf("%w (stderr %q)", err, errOut.String())
	}
	return out.String(), err
}

// e2eMustCLI is e2eCLI that fails the test on error.
func e2eMustCLI(t testing.TB, getenv func(string) string, stdin string, args ...string) string {
	t.Helper()
	out, err := e2eCLI(getenv, stdin, args...)
	if err != nil {
		t.Fatalf("sesame %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// cli runs a data command against the server's data directory.
func (s *e2eServer) cli(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	return e2eCLI(e2eNoEnv, stdin, append(slices.Clone(args), "--data-dir", s.dataDir)...)
}

// mustCLI is cli that fails the test on error.
func (s *e2eServer) mustCLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	return e2eMustCLI(t, e2eNoEnv, stdin, append(slices.Clone(args), "--data-dir", s.dataDir)...)
}

// createAdmin creates an admin with the CLI (while the server runs) and
// returns its email; its password is e2ePassword.
func (s *e2eServer) createAdmin(t testing.TB) string {
	t.Helper()
	email := e2eEmail("root")
	s.mustCLI(t, e2ePassword+"\n", "user", "add", "--email", email, "--role", "admin", "--password-stdin")
	return email
}

// addAdmin creates an admin and signs in as it.
func (s *e2eServer) addAdmin(t testing.TB) (email string, l e2eLogin) {
	t.Helper()
	email = s.createAdmin(t)
	return email, s.login(t, email, e2ePassword)
}

// e2eTime parses an RFC 3339 time field of m.
func e2eTime(t testing.TB, m map[string]any, key string) time.Time {
	t.Helper()
	v, ok := m[key].(string)
	if !ok {
		t.Errorf("field %q is %v (%T), want an RFC 3339 string", key, m[key], m[key])
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Errorf("field %q = %q is not RFC 3339: %v", key, v, err)
	}
	return tm
}

// e2eKeys fails unless m has every key.
func e2eKeys(t testing.TB, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no field %q in %v", what, k, m)
		}
	}
}

// e2eRetryAfter checks a 429's Retry-After: a whole number of seconds.
func e2eRetryAfter(t testing.TB, r e2eResp) {
	t.Helper()
	v := r.header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 24*3600 {
		t.Errorf("%s: %d with Retry-After %q, want a positive whole number of seconds", r.req, r.status, v)
	}
}

// e2eRandomSecret returns a well-formed but unknown secret: a session
// secret or a refresh token.
func e2eRandomSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// e2eVary reports whether the response varies by the header name.
func e2eVary(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), name) {
				return true
			}
		}
	}
	return false
}
