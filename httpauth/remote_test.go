package httpauth_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/token"
)

const remoteAudience = "https://api.example.test"

var quiet = httpauth.WithLogger(slog.New(slog.DiscardHandler))

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// issuerServer is a Sesame stand-in: it serves a discovery document and a
// JWKS that the test replaces, and counts the fetches.
type issuerServer struct {
	*httptest.Server
	master      []byte
	clock       *clock
	jwks        atomic.Pointer[[]byte]
	status      atomic.Int32 // of the JWKS; 200 if zero
	delay       time.Duration
	fetches     atomic.Int64
	discoveries atomic.Int64
	algs        string // the discovery document's access_token_signing_alg_values_supported, as JSON
	issuerName  string // the discovery document's issuer, if not the URL
}

func newIssuerServer(t *testing.T, setup func(*issuerServer)) *issuerServer {
	t.Helper()
	s := &issuerServer{clock: &clock{t: time.Now()}, master: make([]byte, token.MasterKeySize), algs: `["EdDSA"]`}
	rand.Read(s.master)
	if setup != nil {
		setup(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		s.discoveries.Add(1)
		iss := s.issuerName
		if iss == "" {
			iss = s.URL
		}
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"access_token_signing_alg_values_supported":%s}`, iss, s.URL+"/jwks", s.algs)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		time.Sleep(s.delay)
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		w.Write(*s.jwks.Load())
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// key makes a sealed signing key for alg.
func (s *issuerServer) key(t testing.TB, alg string) sesame.SigningKey {
	t.Helper()
	priv, k, err := token.GenerateKey(alg, s.clock.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if k, err = token.SealKey(s.master, k, priv); err != nil {
		t.Fatal(err)
	}
	return k
}

// keySet builds the set of keys (the newest signs).
func (s *issuerServer) keySet(t testing.TB, alg string, keys ...sesame.SigningKey) *token.KeySet {
	t.Helper()
	ks, err := token.NewKeySet(keys, s.master, alg, s.clock.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// serve makes the JWKS the one of ks.
func (s *issuerServer) serve(ks *token.KeySet) { b := ks.JWKS(); s.jwks.Store(&b) }

func (s *issuerServer) serveRaw(b string) { bb := []byte(b); s.jwks.Store(&bb) }

// issue signs an access token with the current key of ks.
func (s *issuerServer) issue(t testing.TB, ks *token.KeySet, sid string) string {
	t.Helper()
	is := &token.Issuer{Keys: token.NewKeys(ks), Issuer: s.URL, Audience: []string{remoteAudience}, Now: s.clock.Now}
	tok, err := is.Issue(sesame.Claims{Subject: "user-1", SessionID: sid, Email: "ada@example.test", Roles: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *issuerServer) verifier(t *testing.T, opts ...httpauth.RemoteOption) *httpauth.RemoteVerifier {
	t.Helper()
	opts = append([]httpauth.RemoteOption{httpauth.WithNow(s.clock.Now), quiet}, opts...)
	rv, err := httpauth.NewRemoteVerifier(context.Background(), s.URL, remoteAudience, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func wantValid(t *testing.T, rv *httpauth.RemoteVerifier, tok, sid string) {
	t.Helper()
	c, err := rv.Verify(ctx, tok)
	if err != nil || c.SessionID != sid {
		t.Fatalf("Verify = %+v, %v; want session %s", c, err, sid)
	}
}

func wantRefused(t *testing.T, rv *httpauth.RemoteVerifier, tok string) {
	t.Helper()
	if c, err := rv.Verify(ctx, tok); !errors.Is(err, sesame.ErrInvalidToken) {
		t.Fatalf("Verify = %+v, %v; want sesame.ErrInvalidToken", c, err)
	}
}

func (s *issuerServer) wantFetches(t *testing.T, n int64, when string) {
	t.Helper()
	if got := s.fetches.Load(); got != n {
		t.Fatalf("%s: %d JWKS fetches in all, want %d", when, got, n)
	}
}

func TestRemoteVerifier(t *testing.T) {
	s := newIssuerServer(t, nil)
	k1 := s.key(t, token.EdDSA)
	ks1 := s.keySet(t, token.EdDSA, k1)
	s.serve(ks1)
	rv := s.verifier(t)
	s.wantFetches(t, 1, "after NewRemoteVerifier")
	if s.discoveries.Load() != 1 {
		t.Errorf("discovery fetched %d times, want 1", s.discoveries.Load())
	}

	old := s.issue(t, ks1, "sess-1")
	for range 100 {
		wantValid(t, rv, old, "sess-1")
	}
	s.wantFetches(t, 1, "verifying with a known kid")

	// Wrong audience, expired, tampered: refused with no fetch.
	is := &token.Issuer{Keys: token.NewKeys(ks1), Issuer: s.URL, Audience: []string{"https://other.example.test"}, Now: s.clock.Now}
	other, _ := is.Issue(sesame.Claims{Subject: "u", SessionID: "s"})
	wantRefused(t, rv, other)
	wantRefused(t, rv, old[:len(old)-4]+"AAAA")
	s.wantFetches(t, 1, "refusing tokens of known kids")

	// Rotation: the issuer signs with a new key, and its JWKS has both.
	s.clock.Advance(httpauth.DefaultRefreshInterval)
	k2 := s.key(t, token.EdDSA)
	k2.CreatedAt = k1.CreatedAt.Add(time.Second)
	ks2 := s.keySet(t, token.EdDSA, k1, k2)
	s.serve(ks2)
	fresh := s.issue(t, ks2, "sess-2")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { wantValid(t, rv, fresh, "sess-2") })
	}
	wg.Wait()
	s.wantFetches(t, 2, "after tokens of a new kid")
	wantValid(t, rv, old, "sess-1")
	wantValid(t, rv, fresh, "sess-2")
	s.wantFetches(t, 2, "after verifying both keys' tokens")
	if got := rv.KIDs(); len(got) != 2 {
		t.Errorf("KIDs = %q, want two", got)
	}
}

// TestRemoteVerifierRefetchRate: unknown kids, however many and however
// concurrent, make at most one fetch per interval, shared by all.
func TestRemoteVerifierRefetchRate(t *testing.T) {
	s := newIssuerServer(t, func(s *issuerServer) { s.delay = 20 * time.Millisecond })
	ks := s.keySet(t, token.EdDSA, s.key(t, token.EdDSA))
	s.serve(ks)
	rv := s.verifier(t)
	good := s.issue(t, ks, "sess-1")

	// Tokens under keys the issuer never published, each its own kid.
	var forged []string
	for range 30 {
		forged = append(forged, s.issue(t, s.keySet(t, token.EdDSA, s.key(t, token.EdDSA)), "x"))
	}
	flood := func() {
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() { wantRefused(t, rv, forged[i%len(forged)]) })
		}
		wg.Go(func() { wantValid(t, rv, good, "sess-1") })
		wg.Wait()
	}

	flood()
	s.wantFetches(t, 1, "a flood right after the first fetch")
	s.clock.Advance(httpauth.DefaultRefreshInterval - time.Second)
	flood()
	s.wantFetches(t, 1, "a flood within the interval")
	s.clock.Advance(time.Second)
	flood()
	s.wantFetches(t, 2, "a flood once the interval passed")
	flood()
	s.wantFetches(t, 2, "a second flood in the same interval")

	// A custom interval is honoured.
	rv2 := s.verifier(t, httpauth.WithRefreshInterval(time.Minute))
	s.wantFetches(t, 3, "a second verifier")
	s.clock.Advance(30 * time.Second)
	flood2 := func() {
		for _, f := range forged {
			wantRefused(t, rv2, f)
		}
	}
	flood2()
	s.wantFetches(t, 3, "30s into a 1m interval")
	s.clock.Advance(30 * time.Second)
	flood2()
	s.wantFetches(t, 4, "1m into a 1m interval")
}

// TestRemoteVerifierAlgorithmConfusion: keys that are not of the
// configured algorithm are never used, whatever the JWKS says.
func TestRemoteVerifierAlgorithmConfusion(t *testing.T) {
	s := newIssuerServer(t, nil)
	edKey := s.key(t, token.EdDSA)
	ks := s.keySet(t, token.EdDSA, edKey)
	s.serve(ks)
	rv := s.verifier(t)
	good := s.issue(t, ks, "sess-1")

	rsKey := s.key(t, token.RS256)
	rsSet := s.keySet(t, token.RS256, rsKey)
	rsToken := s.issue(t, rsSet, "sess-evil")
	for name, jwks := range map[string]string{
		"only an RSA key":           string(rsSet.JWKS()),
		"an RSA key labelled EdDSA": strings.Replace(string(rsSet.JWKS()), `"alg":"RS256"`, `"alg":"EdDSA"`, 1),
		"an HMAC key":               fmt.Sprintf(`{"keys":[{"kty":"oct","kid":%q,"alg":"HS256","k":"c2VjcmV0"}]}`, rsKey.ID),
	} {
		s.clock.Advance(httpauth.DefaultRefreshInterval)
		before := s.fetches.Load()
		s.serveRaw(jwks)
		wantRefused(t, rv, rsToken)
		s.wantFetches(t, before+1, name)
		wantValid(t, rv, good, "sess-1") // the cached set is still in use
	}

	// An RS256 token naming the EdDSA key's kid: refused, and no fetch,
	// since the kid is known.
	priv, k, err := token.GenerateKey(token.RS256, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.ID = edKey.ID
	if k, err = token.SealKey(s.master, k, priv); err != nil {
		t.Fatal(err)
	}
	confused := s.issue(t, s.keySet(t, token.RS256, k), "sess-evil")
	s.clock.Advance(httpauth.DefaultRefreshInterval)
	before := s.fetches.Load()
	wantRefused(t, rv, confused)
	s.wantFetches(t, before, "an RS256 token with the EdDSA key's kid")

	// A verifier configured for EdDSA does not start over a set without
	// an EdDSA key.
	s.serveRaw(string(rsSet.JWKS()))
	if _, err := httpauth.NewRemoteVerifier(ctx, s.URL, remoteAudience, quiet); !errors.Is(err, token.ErrNoSigningKey) {
		t.Errorf("NewRemoteVerifier over an RSA-only JWKS: %v, want ErrNoSigningKey", err)
	}
}

// TestRemoteVerifierMaxAge: after the maximum age the set is fetched again
// in the background, so a key the issuer dropped stops verifying.
func TestRemoteVerifierMaxAge(t *testing.T) {
	s := newIssuerServer(t, nil)
	k1, k2 := s.key(t, token.EdDSA), s.key(t, token.EdDSA)
	k2.CreatedAt = k1.CreatedAt.Add(time.Second)
	both := s.keySet(t, token.EdDSA, k1, k2)
	s.serve(both)
	rv := s.verifier(t, httpauth.WithMaxAge(time.Minute))
	tok2 := s.issue(t, both, "sess-2")
	tok1 := s.issue(t, s.keySet(t, token.EdDSA, k1), "sess-1")
	wantValid(t, rv, tok1, "sess-1")

	s.serve(s.keySet(t, token.EdDSA, k2)) // k1 is dropped
	s.clock.Advance(59 * time.Second)
	wantValid(t, rv, tok1, "sess-1")
	s.wantFetches(t, 1, "before the max age")
	s.clock.Advance(time.Second)
	wantValid(t, rv, tok2, "sess-2") // starts the background fetch, does not wait
	deadline := time.Now().Add(5 * time.Second)
	for len(rv.KIDs()) != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s.wantFetches(t, 2, "after the max age")
	wantRefused(t, rv, tok1)
	wantValid(t, rv, tok2, "sess-2")
}

// TestRemoteVerifierFailedRefresh: a failed fetch keeps the cached set,
// counts against the interval, and a later one succeeds.
func TestRemoteVerifierFailedRefresh(t *testing.T) {
	s := newIssuerServer(t, nil)
	k1 := s.key(t, token.EdDSA)
	s.serve(s.keySet(t, token.EdDSA, k1))
	rv := s.verifier(t)
	tok1 := s.issue(t, s.keySet(t, token.EdDSA, k1), "sess-1")

	k2 := s.key(t, token.EdDSA)
	k2.CreatedAt = k1.CreatedAt.Add(time.Second)
	ks2 := s.keySet(t, token.EdDSA, k1, k2)
	tok2 := s.issue(t, ks2, "sess-2")

	s.clock.Advance(httpauth.DefaultRefreshInterval)
	s.status.Store(http.StatusInternalServerError)
	wantRefused(t, rv, tok2)
	s.wantFetches(t, 2, "a failed refresh")
	wantValid(t, rv, tok1, "sess-1")

	s.status.Store(0)
	s.serve(ks2)
	wantRefused(t, rv, tok2) // within the interval of the failed try
	s.wantFetches(t, 2, "right after a failed refresh")
	s.clock.Advance(httpauth.DefaultRefreshInterval)
	wantValid(t, rv, tok2, "sess-2")
	s.wantFetches(t, 3, "the next interval")

	// Oversized and malformed documents are failures too.
	for name, body := range map[string]string{
		"oversized": `{"keys":[],"pad":"` + strings.Repeat("a", httpauth.MaxDocumentBytes) + `"}`,
		"not JSON":  `<html>`,
	} {
		k := s.key(t, token.EdDSA)
		tok := s.issue(t, s.keySet(t, token.EdDSA, k), "x")
		s.clock.Advance(httpauth.DefaultRefreshInterval)
		s.serveRaw(body)
		before := s.fetches.Load()
		wantRefused(t, rv, tok)
		s.wantFetches(t, before+1, name)
		wantValid(t, rv, tok2, "sess-2")
	}
}

// TestNewRemoteVerifier covers discovery and the options' checks.
func TestNewRemoteVerifier(t *testing.T) {
	s := newIssuerServer(t, nil)
	k := s.key(t, token.EdDSA)
	s.serve(s.keySet(t, token.EdDSA, k))

	// WithJWKSURL skips discovery.
	rv, err := httpauth.NewRemoteVerifier(ctx, "https://auth.example.test", remoteAudience, quiet, httpauth.WithJWKSURL(s.URL+"/jwks"))
	if err != nil {
		t.Fatal(err)
	}
	if s.discoveries.Load() != 0 || len(rv.KIDs()) != 1 || rv.KIDs()[0] != k.ID {
		t.Errorf("with a JWKS URL: %d discoveries, kids %q", s.discoveries.Load(), rv.KIDs())
	}

	for name, c := range map[string]struct {
		issuer string
		setup  func(*issuerServer)
		opts   []httpauth.RemoteOption
		want   string
	}{
		"issuer mismatch":            {"", func(s *issuerServer) { s.issuerName = "https://evil.example.test" }, nil, "names issuer"},
		"algorithm not advertised":   {"", func(s *issuerServer) { s.algs = `["RS256"]` }, nil, "signs with"},
		"plain HTTP to another host": {"http://auth.example.test", nil, nil, "plain HTTP"},
		"JWKS over plain HTTP":       {"https://auth.example.test", nil, []httpauth.RemoteOption{httpauth.WithJWKSURL("http://auth.example.test/jwks")}, "plain HTTP"},
		"not HTTP":                   {"file:///etc/passwd", nil, nil, "not an http(s) URL"},
		"interval too short":         {"", nil, []httpauth.RemoteOption{httpauth.WithRefreshInterval(time.Millisecond)}, "refresh interval"},
		"interval too long":          {"", nil, []httpauth.RemoteOption{httpauth.WithRefreshInterval(2 * time.Hour)}, "refresh interval"},
		"max age under interval":     {"", nil, []httpauth.RemoteOption{httpauth.WithMaxAge(time.Second)}, "max age"},
		"JWKS unreachable":           {"", func(s *issuerServer) { s.status.Store(http.StatusNotFound) }, nil, "status 404"},
		"unsupported algorithm":      {"", func(s *issuerServer) { s.algs = `["HS256"]` }, []httpauth.RemoteOption{httpauth.WithAlgorithm("HS256")}, "unsupported signing algorithm"},
	} {
		s := newIssuerServer(t, c.setup)
		s.serve(s.keySet(t, token.EdDSA, s.key(t, token.EdDSA)))
		iss := c.issuer
		if iss == "" {
			iss = s.URL
		}
		_, err := httpauth.NewRemoteVerifier(ctx, iss, remoteAudience, append([]httpauth.RemoteOption{quiet}, c.opts...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one saying %q", name, err, c.want)
		}
	}
}

// TestRemoteVerifierWithAuth: the middleware over a RemoteVerifier.
func TestRemoteVerifierWithAuth(t *testing.T) {
	s := newIssuerServer(t, nil)
	ks := s.keySet(t, token.EdDSA, s.key(t, token.EdDSA))
	s.serve(ks)
	a := httpauth.New(httpauth.Config{Tokens: s.verifier(t)})
	h := a.RequireToken(whoami)
	tok := s.issue(t, ks, "sess-1")
	check(t, "remote bearer", h, req("GET", bearer(tok)), ok("token", "ada@example.test"))
	check(t, "remote bearer in the query", h, req("GET", query("access_token", tok)), unauthenticated)
	check(t, "remote garbage", h, req("GET", bearer("a.b.c")), invalidToken)
}
