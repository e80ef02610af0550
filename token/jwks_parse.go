package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds on what ParseJWKS reads: a JWK Set from elsewhere is attacker
// input as far as this package is concerned.
const (
	// MaxJWKSKeys is the most keys a JWK Set may hold, of any type.
	MaxJWKSKeys = 100
	// MaxRSABits is the largest RSA modulus ParseJWKS accepts. Verifying
	// costs grow with the cube of the size, so a huge key in a fetched set
	// would make every token it names expensive to refuse.
	MaxRSABits = 8192
)

// ParseJWKS builds a public-only KeySet for alg (EdDSA, ES256 or RS256)
// from an RFC 7517 JWK Set document, such as another Sesame server's
// /.well-known/jwks.json. The set verifies, with a Verifier made over it,
// exactly what a KeySet from NewKeySet would; it cannot sign (Current is
// the zero key, and an Issuer over it returns an error).
//
// The algorithm is the caller's choice and never the document's: a key is
// used only if its kty (and crv) is the one alg verifies with (OKP Ed25519,
// EC P-256, RSA), its alg member is absent or alg, its use is absent or
// "sig", its key_ops, if any, include "verify", and it has a kid. Other
// keys (an RSA key when EdDSA is configured, a symmetric "oct" key, an
// encryption key) are skipped, so they can never verify a token.
//
// Every key that is used must be well formed: members in unpadded
// base64url with nothing else in them, an Ed25519 key of 32 bytes, a P-256
// point on the curve, an RSA modulus of MinRSABits to MaxRSABits bits
// without leading zeros and an odd public exponent from 3 to 2^31-1. A
// document with such a key malformed, with private key members (d) on a
// key, with two used keys sharing a kid, with more than MaxJWKSKeys keys or
// with no usable key at all is refused as a whole: ParseJWKS returns an
// error (wrapping ErrNoSigningKey in the last case) and the caller keeps
// whatever set it had. The document is not size-limited here: cap it when
// reading it.
func ParseJWKS(b []byte, alg string) (*KeySet, error) {
	method := jwt.GetSigningMethod(alg)
	if method == nil || (alg != EdDSA && alg != ES256 && alg != RS256) {
		return nil, fmt.Errorf("token: unsupported signing algorithm %q", alg)
	}
	var doc struct {
		Keys []remoteJWK `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("token: parse JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`token: parse JWKS: no "keys" array`)
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("token: parse JWKS: %d keys; at most %d are accepted", len(doc.Keys), MaxJWKSKeys)
	}

	ks := &KeySet{alg: alg, method: method, public: make(map[string]crypto.PublicKey)}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for i, k := range doc.Keys {
		if k.D != nil {
			return nil, fmt.Errorf("token: parse JWKS: key %d carries private key material", i)
		}
		if !k.usableFor(alg) {
			continue
		}
		if _, dup := ks.public[k.Kid]; dup {
			return nil, fmt.Errorf("token: parse JWKS: two %s keys with kid %q", alg, k.Kid)
		}
		pub, err := k.publicKey()
		if err == nil {
			err = checkPublic(alg, pub)
		}
		if err != nil {
			return nil, fmt.Errorf("token: parse JWKS: key %q: %w", k.Kid, err)
		}
		j, err := publicJWK(pub)
		if err != nil {
			return nil, err
		}
		j.Use, j.Alg, j.Kid = "sig", alg, k.Kid
		set.Keys = append(set.Keys, j)
		ks.public[k.Kid] = pub
		ks.kids = append(ks.kids, k.Kid)
	}
	if len(ks.kids) == 0 {
		return nil, fmt.Errorf("token: parse JWKS: no %s key: %w", alg, ErrNoSigningKey)
	}
	var err error
	ks.jwks, err = json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: render JWKS: %w", err)
	}
	return ks, nil
}

// remoteJWK is one key of a JWK Set read from elsewhere: the members
// ParseJWKS looks at, and d, whose mere presence refuses the document.
type remoteJWK struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	D      *string  `json:"d"`
}

// keyType is the kty and crv of the keys each algorithm verifies with.
var keyType = map[string][2]string{
	EdDSA: {"OKP", "Ed25519"},
	ES256: {"EC", "P-256"},
	RS256: {"RSA", ""},
}

// usableFor reports whether k is meant to verify alg signatures; it does
// not look at the key material.
func (k remoteJWK) usableFor(alg string) bool {
	t := keyType[alg]
	return k.Kty == t[0] && k.Crv == t[1] &&
		(k.Alg == "" || k.Alg == alg) &&
		(k.Use == "" || k.Use == "sig") &&
		(k.KeyOps == nil || slices.Contains(k.KeyOps, "verify")) &&
		k.Kid != ""
}

// publicKey decodes k's key members (RFC 7518 §6, RFC 8037 §2).
func (k remoteJWK) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "OKP":
		x, err := b64member("x", k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key of %d bytes", len(x))
		}
		return ed25519.PublicKey(x), nil
	case "EC":
		x, err := b64member("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64member("y", k.Y)
		if err != nil {
			return nil, err
		}
		// RFC 7518 §6.2.1.2: each coordinate is the full 32 bytes.
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("P-256 coordinates are not 32 bytes each")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, errors.New("not a point on P-256")
		}
		return pub, nil
	case "RSA":
		n, err := b64member("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64member("e", k.E)
		if err != nil {
			return nil, err
		}
		// RFC 7518 §6.3.1: the minimum number of octets.
		if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 {
			return nil, errors.New("RSA n or e has leading zeros")
		}
		if len(n) > MaxRSABits/8 {
			return nil, fmt.Errorf("RSA modulus longer than %d bits", MaxRSABits)
		}
		if len(e) > 4 {
			return nil, errors.New("RSA exponent too large")
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp > 1<<31-1 || exp%2 == 0 {
			return nil, errors.New("RSA exponent is not an odd number from 3 to 2^31-1")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}, nil
	}
	return nil, fmt.Errorf("unsupported kty %q", k.Kty)
}

// b64member decodes a key member: unpadded base64url and nothing else (the
// standard library's decoder would skip line breaks), with zero trailing
// bits, so that each key has one spelling.
func b64member(name, s string) ([]byte, error) {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	}) {
		return nil, fmt.Errorf("member %q is not base64url", name)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %q is not base64url", name)
	}
	return b, nil
}

// KeyID returns the kid named in the header of a well-formed token,
// without verifying anything: the token may be forged. It is for deciding
// whether a set of keys fetched from elsewhere is out of date (a kid it
// does not hold), never for choosing a key to trust. It reports false if
// the token is malformed or its header has no kid.
func KeyID(token string) (kid string, ok bool) {
	if wellFormed(token) != nil {
		return "", false
	}
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return "", false
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil || h.Kid == "" {
		return "", false
	}
	return h.Kid, true
}
