package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame/token"
)

// The verification benchmarks check the same token again and again:
// without the cache that is a full verification every time (framing,
// base64, both JSON documents, header and kid, signature, claims, and the
// revocation check as a map lookup); with it, every call after the first
// is a hit. Compare BenchmarkVerify/EdDSA with BenchmarkEd25519VerifyRaw,
// the signature check alone, to see what everything else costs.

func benchEnv(b *testing.B, alg string, opts ...token.VerifyOption) (*env, string) {
	revoked := map[string]bool{"sess-revoked": true}
	opts = append(opts, token.WithRevocation(func(sid string, _ time.Time) (bool, error) { return revoked[sid], nil }))
	e := newEnv(b, alg, opts...)
	return e, e.issue(b, testClaims())
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range algs {
		for _, cached := range []bool{false, true} {
			name := alg + "/nocache"
			var opts []token.VerifyOption
			if cached {
				name, opts = alg+"/cache", []token.VerifyOption{token.WithCache(1024)}
			}
			b.Run(name, func(b *testing.B) {
				e, tok := benchEnv(b, alg, opts...)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := e.ver.Verify(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// signingInput returns the signing input and raw signature of tok.
func signingInput(tok string) ([]byte, []byte) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		panic(err)
	}
	return []byte(tok[:i]), sig
}

func BenchmarkEd25519VerifyRaw(b *testing.B) {
	e, tok := benchEnv(b, token.EdDSA)
	msg, sig := signingInput(tok)
	pub := e.priv.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkES256VerifyRaw(b *testing.B) {
	e, tok := benchEnv(b, token.ES256)
	msg, sig := signingInput(tok)
	pub := e.priv.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(msg)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkRS256VerifyRaw(b *testing.B) {
	e, tok := benchEnv(b, token.RS256)
	msg, sig := signingInput(tok)
	pub := e.priv.Public().(*rsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			e, _ := benchEnv(b, alg)
			c := testClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.issuer.Issue(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
