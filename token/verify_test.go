package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

var ctx = context.Background()

func TestIssueVerify(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			c := testClaims()
			tok := e.issue(t, c)
			got, err := e.ver.Verify(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if got.Issuer != testIssuer || !slices.Equal(got.Audience, []string{testAudience}) ||
				got.Subject != c.Subject || got.SessionID != c.SessionID || got.Email != c.Email ||
				!slices.Equal(got.Roles, c.Roles) || len(got.ID) != 22 ||
				!got.IssuedAt.Equal(t0) || !got.NotBefore.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
				t.Errorf("claims = %+v", got)
			}
			// The wire form the contract fixes.
			seg := strings.Split(tok, ".")
			h, _ := b64.DecodeString(seg[0])
			if want := `{"alg":"` + alg + `","kid":"` + e.key.ID + `","typ":"at+jwt"}`; string(h) != want {
				t.Errorf("header = %s; want %s", h, want)
			}
			p, _ := b64.DecodeString(seg[1])
			for _, member := range []string{`"iss":"` + testIssuer + `"`, `"aud":"` + testAudience + `"`, `"sub":"user-1"`,
				`"sid":"sess-1"`, `"email":"ada@example.test"`, `"roles":["user","admin"]`, `"jti":"`,
				`"exp":1700000600`, `"iat":1700000000`, `"nbf":1700000000`} {
				if !strings.Contains(string(p), member) {
					t.Errorf("claims %s lack %s", p, member)
				}
			}
		})
	}
}

func TestIssueClaims(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	// Several audiences are an array; a chosen jti and times are kept.
	c := testClaims()
	c.Audience = []string{"https://other.example.test", testAudience}
	c.ID = "my-jti"
	c.Roles = nil
	c.IssuedAt = t0.Add(-time.Minute)
	c.ExpiresAt = t0.Add(time.Minute)
	tok := e.issue(t, c)
	p, _ := b64.DecodeString(strings.Split(tok, ".")[1])
	for _, member := range []string{`"aud":["https://other.example.test","https://api.example.test"]`, `"jti":"my-jti"`, `"roles":[]`, `"nbf":1699999940`, `"exp":1700000060`} {
		if !strings.Contains(string(p), member) {
			t.Errorf("claims %s lack %s", p, member)
		}
	}
	got, err := e.ver.Verify(ctx, tok)
	if err != nil || got.ID != "my-jti" || len(got.Audience) != 2 {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	// Two tokens never share a jti.
	a, b := e.issue(t, testClaims()), e.issue(t, testClaims())
	ca, _ := e.ver.Verify(ctx, a)
	cb, _ := e.ver.Verify(ctx, b)
	if ca.ID == cb.ID {
		t.Error("two tokens with the same jti")
	}

	for name, c := range map[string]sesame.Claims{
		"no subject":     {SessionID: "s"},
		"no session":     {Subject: "u"},
		"empty audience": {Subject: "u", SessionID: "s", Audience: []string{""}},
		"expiry first":   {Subject: "u", SessionID: "s", IssuedAt: t0, ExpiresAt: t0},
	} {
		if _, err := e.issuer.Issue(c); err == nil {
			t.Errorf("Issue(%s) succeeded", name)
		}
	}
	huge := testClaims()
	huge.Roles = []string{strings.Repeat("r", token.MaxTokenBytes)}
	if _, err := e.issuer.Issue(huge); err == nil {
		t.Error("Issue made a token longer than MaxTokenBytes")
	}
	noIss := &token.Issuer{Keys: e.keys, Audience: []string{testAudience}}
	if _, err := noIss.Issue(testClaims()); err == nil {
		t.Error("Issue with no issuer succeeded")
	}
}

func TestAttacks(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			var fetched atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetched.Add(1)
				http.Error(w, "no", http.StatusTeapot)
			}))
			defer srv.Close()

			e := newEnv(t, alg)
			for _, a := range attacks(t, e, srv.URL+"/jwks.json") {
				t.Run(a.name, func(t *testing.T) {
					got, err := e.ver.Verify(ctx, a.token)
					if !errors.Is(err, sesame.ErrInvalidToken) {
						t.Fatalf("Verify = %+v, %v; want sesame.ErrInvalidToken", got, err)
					}
				})
			}
			if n := fetched.Load(); n != 0 {
				t.Errorf("the key URL in jku/x5u was fetched %d times", n)
			}
		})
	}
}

// TestAccepted lists the variations that are valid: the leeway, and the
// spellings RFC 9068 allows for typ.
func TestAccepted(t *testing.T) {
	now := t0.Unix()
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			me := signer(alg, e.priv)
			hdr := func(typ string) map[string]any { h := e.header(); h["typ"] = typ; return h }
			cl := func(k string, v any) map[string]any { c := claimsMap(); c[k] = v; return c }
			for name, tok := range map[string]string{
				"typ application/at+jwt":    mint(hdr("application/at+jwt"), claimsMap(), me),
				"typ AT+JWT":                mint(hdr("AT+JWT"), claimsMap(), me),
				"expired within leeway":     mint(e.header(), cl("exp", now-4), me),
				"nbf within leeway":         mint(e.header(), cl("nbf", now+5), me),
				"iat within leeway":         mint(e.header(), cl("iat", now+5), me),
				"aud array containing ours": mint(e.header(), cl("aud", []string{"x", testAudience}), me),
				"no email or roles":         mint(e.header(), func() map[string]any { c := claimsMap(); delete(c, "email"); delete(c, "roles"); return c }(), me),
			} {
				if _, err := e.ver.Verify(ctx, tok); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	e := newEnv(t, token.EdDSA, token.WithLeeway(0))
	tok := e.issue(t, testClaims())
	e.clock.Set(t0.Add(10*time.Minute - time.Second))
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatalf("just before exp: %v", err)
	}
	e.clock.Set(t0.Add(10 * time.Minute))
	_, err := e.ver.Verify(ctx, tok)
	wantInvalid(t, err)

	e = newEnv(t, token.EdDSA, token.WithLeeway(time.Minute))
	tok = e.issue(t, testClaims())
	e.clock.Set(t0.Add(11*time.Minute - time.Second))
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatalf("within a minute's leeway: %v", err)
	}
	e.clock.Set(t0.Add(-time.Minute))
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatalf("a minute early: %v", err)
	}
	e.clock.Set(t0.Add(-time.Minute - time.Second))
	_, err = e.ver.Verify(ctx, tok)
	wantInvalid(t, err)
}

func TestNewVerifierOptions(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	for name, opts := range map[string][]token.VerifyOption{
		"leeway above max": {token.WithLeeway(61 * time.Second)},
		"negative leeway":  {token.WithLeeway(-time.Second)},
		"nil clock":        {token.WithNow(nil)},
		"negative cache":   {token.WithCache(-1)},
	} {
		if _, err := token.NewVerifier(e.keys, testIssuer, testAudience, opts...); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
	if _, err := token.NewVerifier(e.keys, "", testAudience); err == nil {
		t.Error("empty issuer accepted")
	}
	if _, err := token.NewVerifier(e.keys, testIssuer, ""); err == nil {
		t.Error("empty audience accepted")
	}
	if _, err := token.NewVerifier(nil, testIssuer, testAudience); err == nil {
		t.Error("nil keys accepted")
	}
	if _, err := token.NewVerifier(e.keys, testIssuer, testAudience, token.WithLeeway(token.MaxLeeway)); err != nil {
		t.Errorf("MaxLeeway refused: %v", err)
	}
}

func TestRevocation(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		var opts []token.VerifyOption
		if cached {
			name, opts = "cached", []token.VerifyOption{token.WithCache(16)}
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, token.EdDSA, opts...)
			tok := e.issue(t, testClaims())
			if _, err := e.ver.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			// The store is down: not an invalid token, but unavailable.
			down := errors.New("revocation feed stale")
			e.revoked.Fail(down)
			_, err := e.ver.Verify(ctx, tok)
			if err == nil || errors.Is(err, sesame.ErrInvalidToken) || !errors.Is(err, sesame.ErrUnavailable) || !errors.Is(err, down) {
				t.Fatalf("revocation error: err = %v; want ErrUnavailable wrapping the cause, not ErrInvalidToken", err)
			}
			e.revoked.Fail(nil)
			e.revoked.Revoke("sess-1")
			_, err = e.ver.Verify(ctx, tok)
			wantInvalid(t, err)
			// Another session's token is unaffected.
			other := testClaims()
			other.SessionID = "sess-2"
			if _, err := e.ver.Verify(ctx, e.issue(t, other)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t, token.EdDSA, token.WithCache(2))
	tok := e.issue(t, testClaims())
	first, err := e.ver.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// A hit returns its own copy of the claims.
	first.Roles[0] = "changed"
	again, err := e.ver.Verify(ctx, tok)
	if err != nil || again.Roles[0] != "user" {
		t.Fatalf("cached Verify = %+v, %v", again, err)
	}
	// Only the exact token hits: another spelling of it (which the base64
	// decoder would read as the same bytes) is checked for its form and
	// refused, though the token itself is cached.
	for _, other := range []string{tok[:20] + "\n" + tok[20:], tok[:len(tok)-4] + "\r\n" + tok[len(tok)-4:], tok + "=", " " + tok} {
		_, err := e.ver.Verify(ctx, other)
		wantInvalid(t, err)
	}
	// An expired cached token is refused, at exactly the same instant as
	// an uncached one.
	e.clock.Set(t0.Add(10*time.Minute + token.DefaultLeeway - time.Nanosecond))
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatalf("just before exp+leeway: %v", err)
	}
	e.clock.Set(t0.Add(10*time.Minute + token.DefaultLeeway))
	_, err = e.ver.Verify(ctx, tok)
	wantInvalid(t, err)
	// A cached token is not accepted before its nbf - leeway either.
	e.clock.Set(t0)
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0.Add(-token.DefaultLeeway - time.Second))
	_, err = e.ver.Verify(ctx, tok)
	wantInvalid(t, err)
	e.clock.Set(t0)

	// Revocation is checked on every hit.
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.revoked.Revoke("sess-1")
	_, err = e.ver.Verify(ctx, tok)
	wantInvalid(t, err)

	// A full cache keeps working: entries are evicted, not refused.
	for i := 0; i < 10; i++ {
		c := testClaims()
		c.SessionID = "sess-other"
		if _, err := e.ver.Verify(ctx, e.issue(t, c)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCacheKeyRemoved: a cached token whose key has left the KeySet is
// refused like an uncached one.
func TestCacheKeyRemoved(t *testing.T) {
	e := newEnv(t, token.EdDSA, token.WithCache(16))
	tok := e.issue(t, testClaims())
	if _, err := e.ver.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, theirs := testKeys()
	ks, err := token.NewKeySet([]sesame.SigningKey{sealed(t, theirs[token.EdDSA], token.EdDSA, t0)}, testMaster, token.EdDSA, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.keys.Store(ks)
	_, err = e.ver.Verify(ctx, tok)
	wantInvalid(t, err)
}

func TestRotation(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			_, theirs := testKeys()
			e := newEnv(t, alg)
			oldTok := e.issue(t, testClaims())

			// Rotate at t0 + 1m: the old key retires, a new one signs.
			rotated := t0.Add(time.Minute)
			old := e.key
			old.RetiredAt = rotated
			next := sealed(t, theirs[alg], alg, rotated)
			stored := []sesame.SigningKey{next, old}
			retain := 10*time.Minute + token.DefaultLeeway
			ks, err := token.NewKeySet(stored, testMaster, alg, rotated, retain)
			if err != nil {
				t.Fatal(err)
			}
			if ks.Current().ID != next.ID || !slices.Equal(ks.KIDs(), []string{next.ID, old.ID}) {
				t.Fatalf("current %s, kids %v", ks.Current().ID, ks.KIDs())
			}
			e.keys.Store(ks)
			e.clock.Set(rotated)
			newTok := e.issue(t, testClaims())
			if kidOf(t, newTok) != next.ID {
				t.Fatalf("new token signed by %s; want %s", kidOf(t, newTok), next.ID)
			}
			for _, tok := range []string{oldTok, newTok} {
				if _, err := e.ver.Verify(ctx, tok); err != nil {
					t.Fatalf("after rotation: %v", err)
				}
			}

			// Once the retention has passed the old key is pruned: a token
			// it signed is refused even if its claims were still valid.
			pruneAt := rotated.Add(retain + time.Second)
			ks, err = token.NewKeySet(stored, testMaster, alg, pruneAt, retain)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ks.KIDs(), []string{next.ID}) || strings.Contains(string(ks.JWKS()), old.ID) {
				t.Fatalf("old key still in the set: %v %s", ks.KIDs(), ks.JWKS())
			}
			e.keys.Store(ks)
			e.clock.Set(t0) // as if the clock allowed the old token
			_, err = e.ver.Verify(ctx, oldTok)
			wantInvalid(t, err)
		})
	}
}

func kidOf(tb testing.TB, tok string) string {
	tb.Helper()
	h, _ := b64.DecodeString(strings.Split(tok, ".")[0])
	i := strings.Index(string(h), `"kid":"`)
	if i < 0 {
		tb.Fatalf("no kid in %s", h)
	}
	rest := string(h[i+7:])
	return rest[:strings.IndexByte(rest, '"')]
}

// TestConcurrent issues and verifies from several goroutines, through a
// small cache that keeps evicting, while another goroutine keeps
// installing key sets; run with -race.
func TestConcurrent(t *testing.T) {
	e := newEnv(t, token.EdDSA, token.WithCache(8))
	ks := e.keys.Load()
	stop := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				e.keys.Store(ks)
			}
		}
	})
	shared := e.issue(t, testClaims())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				own, err := e.issuer.Issue(testClaims())
				if err != nil {
					t.Error(err)
					return
				}
				for _, tok := range []string{shared, own} {
					if _, err := e.ver.Verify(ctx, tok); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	swapper.Wait()
}

// IssueAccessToken is the issuer owning iss, aud and lifetime: a caller's
// iss is overridden, its deadline only ever shortens the TTL, and its
// audience replaces the default.
func TestIssueAccessTokenOwnsIssuerAndTTL(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	for _, tc := range []struct {
		name    string
		mod     func(*sesame.Claims)
		wantExp time.Time
		wantAud string
	}{
		{"defaults", func(*sesame.Claims) {}, t0.Add(10 * time.Minute), testAudience},
		{"later deadline is capped at the TTL", func(c *sesame.Claims) { c.ExpiresAt = t0.Add(time.Hour) }, t0.Add(10 * time.Minute), testAudience},
		{"earlier deadline wins", func(c *sesame.Claims) { c.ExpiresAt = t0.Add(time.Minute) }, t0.Add(time.Minute), testAudience},
		{"a caller's iss is ignored", func(c *sesame.Claims) { c.Issuer = "https://evil.example.test" }, t0.Add(10 * time.Minute), testAudience},
		{"audience override", func(c *sesame.Claims) { c.Audience = []string{"https://app.example.test"} }, t0.Add(10 * time.Minute), "https://app.example.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testClaims()
			tc.mod(&c)
			tok, got, err := e.issuer.IssueAccessToken(c)
			if err != nil {
				t.Fatal(err)
			}
			if got.Issuer != testIssuer || !got.ExpiresAt.Equal(tc.wantExp) || !got.IssuedAt.Equal(t0) ||
				!slices.Equal(got.Audience, []string{tc.wantAud}) || got.ID == "" {
				t.Fatalf("returned claims = %+v", got)
			}
			v, err := token.NewVerifier(e.keys, testIssuer, tc.wantAud, token.WithNow(e.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			wire, err := v.Verify(ctx, tok)
			if err != nil || wire.Issuer != testIssuer || !wire.ExpiresAt.Equal(tc.wantExp) || wire.ID != got.ID {
				t.Fatalf("token carries %+v, %v; returned %+v", wire, err, got)
			}
		})
	}
}
