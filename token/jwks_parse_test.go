package token_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// jwksOf returns the JWKS that a server with key set of e would serve.
func jwksOf(e *env) []byte { return e.keys.Load().JWKS() }

// TestParseJWKSRoundTrip: a set parsed from a server's JWKS verifies that
// server's tokens, renders the same JWKS, and cannot sign.
func TestParseJWKSRoundTrip(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			ks, err := token.ParseJWKS(jwksOf(e), alg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ks.JWKS(), jwksOf(e)) {
				t.Errorf("JWKS re-rendered as\n%s\nwant\n%s", ks.JWKS(), jwksOf(e))
			}
			if got := ks.KIDs(); len(got) != 1 || got[0] != e.key.ID {
				t.Errorf("KIDs = %q, want [%q]", got, e.key.ID)
			}
			keys := token.NewKeys(ks)
			v, err := token.NewVerifier(keys, testIssuer, testAudience, token.WithNow(e.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(ctx, e.issue(t, testClaims()))
			if err != nil || c.Subject != "user-1" {
				t.Fatalf("Verify = %+v, %v", c, err)
			}
			iss := &token.Issuer{Keys: keys, Issuer: testIssuer, Audience: []string{testAudience}}
			if tok, err := iss.Issue(testClaims()); err == nil {
				t.Fatalf("a public-only set signed %q", tok)
			}
		})
	}
}

// TestParseJWKSOnlyTheConfiguredAlgorithm: keys that are not for the
// configured algorithm are skipped, never used; a set with none left is
// refused.
func TestParseJWKSOnlyTheConfiguredAlgorithm(t *testing.T) {
	ed, es, rs := newEnv(t, token.EdDSA), newEnv(t, token.ES256), newEnv(t, token.RS256)
	keysOf := func(e *env) []map[string]any {
		var doc struct{ Keys []map[string]any }
		if err := json.Unmarshal(jwksOf(e), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Keys
	}
	edKey, esKey, rsKey := keysOf(ed)[0], keysOf(es)[0], keysOf(rs)[0]
	with := func(k map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for n, v := range k {
			out[n] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	doc := func(keys ...map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}

	// Mixed sets: each algorithm takes only its own key.
	mixed := doc(rsKey, esKey, edKey, map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"})
	for _, e := range []*env{ed, es, rs} {
		ks, err := token.ParseJWKS(mixed, e.alg)
		if err != nil {
			t.Fatalf("%s: %v", e.alg, err)
		}
		if got := ks.KIDs(); len(got) != 1 || got[0] != e.key.ID {
			t.Errorf("%s: KIDs = %q, want only %q", e.alg, got, e.key.ID)
		}
	}

	// Nothing usable for EdDSA: refused with ErrNoSigningKey.
	for name, b := range map[string][]byte{
		"RSA key":                       doc(rsKey),
		"RSA key labelled EdDSA":        doc(with(rsKey, "alg", "EdDSA")),
		"EC key labelled EdDSA":         doc(with(esKey, "alg", "EdDSA")),
		"Ed25519 key labelled RS256":    doc(with(edKey, "alg", "RS256")),
		"Ed25519 key for encryption":    doc(with(edKey, "use", "enc")),
		"Ed25519 key without verify op": doc(with(edKey, "key_ops", []string{"encrypt"})),
		"Ed25519 key without kid":       doc(with(edKey, "kid", nil)),
		"X25519 key":                    doc(with(edKey, "crv", "X25519")),
		"HMAC key":                      doc(map[string]any{"kty": "oct", "kid": edKey["kid"], "alg": "HS256", "k": edKey["x"]}),
		"empty set":                     []byte(`{"keys":[]}`),
	} {
		_, err := token.ParseJWKS(b, token.EdDSA)
		if !errors.Is(err, token.ErrNoSigningKey) {
			t.Errorf("%s: err = %v, want ErrNoSigningKey", name, err)
		}
	}

	// Present but unusable keys of our type, or hostile documents: refused.
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	b64n := func(n *big.Int) string { return b64.EncodeToString(n.Bytes()) }
	many := make([]map[string]any, token.MaxJWKSKeys+1)
	for i := range many {
		many[i] = with(edKey, "kid", fmt.Sprint(i))
	}
	for name, c := range map[string]struct {
		alg string
		b   []byte
	}{
		"private key member":   {token.EdDSA, doc(with(edKey, "d", "AAAA"))},
		"private on other key": {token.EdDSA, doc(edKey, with(rsKey, "d", "AAAA"))},
		"duplicate kid":        {token.EdDSA, doc(edKey, edKey)},
		"short Ed25519":        {token.EdDSA, doc(with(edKey, "x", "AAAA"))},
		"padded x":             {token.EdDSA, doc(with(edKey, "x", edKey["x"].(string)+"="))},
		"line break in x":      {token.EdDSA, doc(with(edKey, "x", edKey["x"].(string)[:10]+"\n"+edKey["x"].(string)[10:]))},
		"standard base64 x":    {token.EdDSA, doc(with(edKey, "x", "+"+edKey["x"].(string)[1:]))},
		"non-zero trailing":    {token.EdDSA, doc(with(edKey, "x", edKey["x"].(string)[:42]+"B"))},
		"EC point off curve":   {token.ES256, doc(with(esKey, "y", edKey["x"]))},
		"EC short coordinate":  {token.ES256, doc(with(esKey, "x", "AAAA"))},
		"RSA 1024 bits":        {token.RS256, doc(with(rsKey, "n", b64n(smallRSA.N)))},
		"RSA leading zero":     {token.RS256, doc(with(rsKey, "n", b64.EncodeToString(append([]byte{0}, mustB64(t, rsKey["n"].(string))...))))},
		"RSA even exponent":    {token.RS256, doc(with(rsKey, "e", "AQAA"))},
		"RSA exponent 1":       {token.RS256, doc(with(rsKey, "e", "AQ"))},
		"RSA huge exponent":    {token.RS256, doc(with(rsKey, "e", "AQAAAAAB"))},
		"RSA huge modulus":     {token.RS256, doc(with(rsKey, "n", b64.EncodeToString(bytes.Repeat([]byte{0xff}, token.MaxRSABits/8+1))))},
		"too many keys":        {token.EdDSA, doc(many...)},
		"no keys member":       {token.EdDSA, []byte(`{"kyes":[]}`)},
		"not an object":        {token.EdDSA, []byte(`[]`)},
		"not JSON":             {token.EdDSA, []byte(`{"keys":[`)},
		"unsupported alg":      {"HS256", doc(edKey)},
		"alg none":             {"none", doc(edKey)},
	} {
		if ks, err := token.ParseJWKS(c.b, c.alg); err == nil {
			t.Errorf("%s: accepted, KIDs %q", name, ks.KIDs())
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseJWKSRotation: a set of two keys verifies tokens of both.
func TestParseJWKSRotation(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	old := e.issue(t, testClaims())
	_, theirs := testKeys()
	next := sealed(t, theirs[token.EdDSA], token.EdDSA, t0)
	prev := e.key
	prev.RetiredAt = t0
	ks, err := token.NewKeySet([]sesame.SigningKey{prev, next}, testMaster, token.EdDSA, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.keys.Store(ks)
	fresh := e.issue(t, testClaims())

	parsed, err := token.ParseJWKS(ks.JWKS(), token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.NewKeys(parsed), testIssuer, testAudience, token.WithNow(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if kid, ok := token.KeyID(fresh); !ok || kid != next.ID {
		t.Errorf("KeyID(fresh) = %q, %v; want %q", kid, ok, next.ID)
	}
}

func TestKeyID(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	tok := e.issue(t, testClaims())
	if kid, ok := token.KeyID(tok); !ok || kid != e.key.ID {
		t.Errorf("KeyID = %q, %v; want %q, true", kid, ok, e.key.ID)
	}
	h := e.header()
	delete(h, "kid")
	for name, tok := range map[string]string{
		"no kid":       mint(h, claimsMap(), fixed([]byte("sig"))),
		"kid a number": mint(`{"alg":"EdDSA","kid":7}`, claimsMap(), fixed([]byte("sig"))),
		"not JSON":     mint(`{"kid":`, claimsMap(), fixed([]byte("sig"))),
		"two segments": b64.EncodeToString([]byte(`{"kid":"a"}`)) + ".e30",
		"padded":       b64.EncodeToString([]byte(`{"kid":"a"}`)) + "=.e30.e30",
		"empty":        "",
	} {
		if kid, ok := token.KeyID(tok); ok {
			t.Errorf("%s: KeyID = %q, true", name, kid)
		}
	}
}

// FuzzParseJWKS: ParseJWKS must never panic, and whatever it accepts it
// renders as a JWKS that parses back to the same set, holding only keys of
// the requested algorithm.
func FuzzParseJWKS(f *testing.F) {
	for _, alg := range algs {
		e := newEnv(f, alg)
		f.Add(jwksOf(e), alg)
	}
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`), token.EdDSA)
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","alg":"EdDSA","n":"AQAB","e":"AQAB"}]}`), token.EdDSA)
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AAAA","y":"AAAA","d":"AA"}]}`), token.ES256)
	f.Add([]byte(`{"keys":null}`), token.RS256)
	f.Fuzz(func(t *testing.T, b []byte, alg string) {
		ks, err := token.ParseJWKS(b, alg)
		if err != nil {
			return
		}
		if ks.Alg() != alg || len(ks.KIDs()) == 0 {
			t.Fatalf("accepted a set for %q with kids %q", ks.Alg(), ks.KIDs())
		}
		again, err := token.ParseJWKS(ks.JWKS(), alg)
		if err != nil {
			t.Fatalf("the rendering of an accepted set is refused: %v\n%s", err, ks.JWKS())
		}
		if !bytes.Equal(again.JWKS(), ks.JWKS()) {
			t.Fatalf("rendering is not stable:\n%s\n%s", ks.JWKS(), again.JWKS())
		}
		var doc struct {
			Keys []struct{ Kty, Alg string }
		}
		json.Unmarshal(ks.JWKS(), &doc)
		for _, k := range doc.Keys {
			if k.Alg != alg {
				t.Fatalf("set for %s holds a %s key", alg, k.Alg)
			}
		}
	})
}

// FuzzKeyID: KeyID reads attacker-chosen tokens. It must never panic, and
// reports a kid only for a three-segment token whose header holds it.
func FuzzKeyID(f *testing.F) {
	e := newEnv(f, token.EdDSA)
	f.Add(e.issue(f, testClaims()))
	f.Add(mint(`{"kid":"\u0000"}`, claimsMap(), fixed(nil)))
	f.Add(mint(`{"kid":["a"]}`, claimsMap(), fixed(nil)))
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		kid, ok := token.KeyID(tok)
		if ok && (kid == "" || strings.Count(tok, ".") != 2 || len(tok) > token.MaxTokenBytes) {
			t.Fatalf("KeyID(%q) = %q, true", tok, kid)
		}
		if !ok && kid != "" {
			t.Fatalf("KeyID(%q) refused but returned %q", tok, kid)
		}
	})
}
