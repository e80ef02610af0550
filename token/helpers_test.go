package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

const (
	testIssuer   = "https://auth.example.test"
	testAudience = "https://api.example.test"
)

var (
	algs = []string{token.EdDSA, token.ES256, token.RS256}
	// t0 is when test keys are made and tokens issued.
	t0         = time.Unix(1_700_000_000, 0)
	testMaster = []byte("0123456789abcdef0123456789abcdef")
	b64        = base64.RawURLEncoding
)

// Test keys are deterministic where Go allows it (so that fuzz workers and
// the coordinator agree on them) and made once otherwise.
var (
	keysOnce             sync.Once
	ourKeys, theirKeys   map[string]crypto.Signer
	ourSeed, theirSeed   = []byte("sesame-test-ed25519-seed-0000001"), []byte("attacker-ed25519-seed-0000000001")
	ourP256D, theirP256D = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "0f56db78ca460b055c500064824bed999a25aaf48ebb519ac201537b85479813"
)

func testKeys() (ours, theirs map[string]crypto.Signer) {
	keysOnce.Do(func() {
		p256 := func(hexD string) crypto.Signer {
			d, _ := new(big.Int).SetString(hexD, 16)
			k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
			if err != nil {
				panic(err)
			}
			return k
		}
		rsaKey := func() crypto.Signer {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		ourKeys = map[string]crypto.Signer{
			token.EdDSA: ed25519.NewKeyFromSeed(ourSeed),
			token.ES256: p256(ourP256D),
			token.RS256: rsaKey(),
		}
		theirKeys = map[string]crypto.Signer{
			token.EdDSA: ed25519.NewKeyFromSeed(theirSeed),
			token.ES256: p256(theirP256D),
			token.RS256: rsaKey(),
		}
	})
	return ourKeys, theirKeys
}

// sealed returns the stored form of priv as a key for alg created at created.
func sealed(tb testing.TB, priv crypto.Signer, alg string, created time.Time) sesame.SigningKey {
	tb.Helper()
	k, err := token.KeyFor(priv, alg, created)
	if err != nil {
		tb.Fatal(err)
	}
	k, err = token.SealKey(testMaster, k, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// env is one server: its key, issuer and verifier, with a settable clock.
type env struct {
	alg     string
	priv    crypto.Signer
	key     sesame.SigningKey
	keys    *token.Keys
	issuer  *token.Issuer
	ver     *token.Verifier
	clock   *clock
	revoked *revocations
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type revocations struct {
	mu   sync.Mutex
	sids map[string]bool
	err  error
}

func (r *revocations) Revoked(sid string, _ time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sids[sid], r.err
}

func (r *revocations) Revoke(sid string) { r.mu.Lock(); r.sids[sid] = true; r.mu.Unlock() }
func (r *revocations) Fail(err error)    { r.mu.Lock(); r.err = err; r.mu.Unlock() }

// newEnv makes a server for alg with our test key, its clock at t0, a
// revocation set, and the given extra verifier options.
func newEnv(tb testing.TB, alg string, opts ...token.VerifyOption) *env {
	tb.Helper()
	ours, _ := testKeys()
	e := &env{alg: alg, priv: ours[alg], clock: &clock{t: t0}, revoked: &revocations{sids: map[string]bool{}}}
	e.key = sealed(tb, e.priv, alg, t0.Add(-time.Hour))
	ks, err := token.NewKeySet([]sesame.SigningKey{e.key}, testMaster, alg, t0, 15*time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	e.keys = token.NewKeys(ks)
	e.issuer = &token.Issuer{Keys: e.keys, Issuer: testIssuer, Audience: []string{testAudience}, TTL: 10 * time.Minute, Now: e.clock.Now}
	opts = append([]token.VerifyOption{token.WithNow(e.clock.Now), token.WithRevocation(e.revoked.Revoked)}, opts...)
	e.ver, err = token.NewVerifier(e.keys, testIssuer, testAudience, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// testClaims are the caller's part of every test token.
func testClaims() sesame.Claims {
	return sesame.Claims{Subject: "user-1", SessionID: "sess-1", Email: "ada@example.test", Roles: []string{"user", "admin"}}
}

func (e *env) issue(tb testing.TB, c sesame.Claims) string {
	tb.Helper()
	s, err := e.issuer.Issue(c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// claimsMap is the JSON claims of a valid token issued at t0, as a map to
// alter.
func claimsMap() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": testAudience,
		"exp": t0.Add(10 * time.Minute).Unix(), "iat": t0.Unix(), "nbf": t0.Unix(),
		"jti": "jti-1", "sid": "sess-1", "email": "ada@example.test", "roles": []string{"user"},
	}
}

// header is the JOSE header of a valid token of e.
func (e *env) header() map[string]any {
	return map[string]any{"alg": e.alg, "typ": "at+jwt", "kid": e.key.ID}
}

// mint encodes header and claims (maps, or strings taken as raw JSON) and
// signs them with sign, which gets the signing input.
func mint(header, claims any, sign func(input string) []byte) string {
	enc := func(v any) string {
		if s, ok := v.(string); ok {
			return b64.EncodeToString([]byte(s))
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b64.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	return input + "." + b64.EncodeToString(sign(input))
}

// signer signs with key using golang-jwt's implementation of alg.
func signer(alg string, key any) func(string) []byte {
	return func(input string) []byte {
		sig, err := jwt.GetSigningMethod(alg).Sign(input, key)
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func fixed(sig []byte) func(string) []byte { return func(string) []byte { return sig } }

// wantInvalid fails unless err wraps sesame.ErrInvalidToken.
func wantInvalid(tb testing.TB, err error) {
	tb.Helper()
	if !errors.Is(err, sesame.ErrInvalidToken) {
		tb.Fatalf("err = %v; want sesame.ErrInvalidToken", err)
	}
}
