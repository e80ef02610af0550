package token_test

import (
	"crypto/elliptic"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/sesameauth/sesame/token"
)

// TestES256HighS pins the documented decision: the malleated signature
// (r, n-s) is accepted, as crypto/ecdsa and every standard ES256 verifier
// accept it, and yields the very same claims.
func TestES256HighS(t *testing.T) {
	e := newEnv(t, token.ES256)
	tok := e.issue(t, testClaims())
	i := strings.LastIndexByte(tok, '.')
	sig, _ := b64.DecodeString(tok[i+1:])
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	flipped := slices.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(flipped[32:])
	malleated := tok[:i+1] + b64.EncodeToString(flipped)

	want, err := e.ver.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.ver.Verify(ctx, malleated)
	if err != nil {
		t.Fatalf("(r, n-s) refused: %v", err)
	}
	if canonical(got) != canonical(want) {
		t.Errorf("malleated token carries other claims: %+v", got)
	}
}

// TestEd25519NonCanonicalS: S + L is the same scalar, but Go (and so the
// Verifier) refuses a non-canonical S, so Ed25519 tokens are not malleable.
func TestEd25519NonCanonicalS(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	tok := e.issue(t, testClaims())
	i := strings.LastIndexByte(tok, '.')
	sig, _ := b64.DecodeString(tok[i+1:])
	// L = 2^252 + 27742317777372353535851937790883648493, little-endian in S.
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) []byte { r := slices.Clone(b); slices.Reverse(r); return r }
	s := new(big.Int).SetBytes(le(sig[32:]))
	bumped := slices.Clone(sig)
	copy(bumped[32:], le(new(big.Int).Add(s, l).FillBytes(make([]byte, 32))))
	_, err := e.ver.Verify(ctx, tok[:i+1]+b64.EncodeToString(bumped))
	wantInvalid(t, err)
}
