package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// attack is a token Verify must refuse with sesame.ErrInvalidToken.
type attack struct {
	name  string
	token string
}

// attacks returns every forged or malformed token for e's algorithm.
// keyURL is where the attacker serves their key for jku and x5u.
func attacks(tb testing.TB, e *env, keyURL string) []attack {
	tb.Helper()
	ours, theirs := testKeys()
	me, them := signer(e.alg, e.priv), signer(e.alg, theirs[e.alg])
	theirJWK, theirKid := jwkOf(tb, theirs[e.alg], e.alg)
	ourJWK, _ := jwkOf(tb, e.priv, e.alg)

	valid := mint(e.header(), claimsMap(), me)
	seg := strings.Split(valid, ".")
	validSig, _ := b64.DecodeString(seg[2])

	var as []attack
	add := func(name, tok string) { as = append(as, attack{name, tok}) }
	// hdr returns our valid header with the changes applied; a nil value
	// deletes the member.
	hdr := func(kv ...any) map[string]any {
		h := e.header()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	// cl does the same for the claims.
	cl := func(kv ...any) map[string]any {
		c := claimsMap()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}

	// alg "none", unsigned or carrying a real signature.
	for _, none := range []string{"none", "None", "NONE", "nOnE"} {
		add("alg "+none+" empty signature", mint(hdr("alg", none), claimsMap(), fixed(nil)))
		add("alg "+none+" with signature", mint(hdr("alg", none), claimsMap(), fixed(validSig)))
		add("alg "+none+" no kid", mint(map[string]any{"alg": none, "typ": "at+jwt"}, claimsMap(), fixed(nil)))
	}

	// HMAC keyed with our public key in every encoding a confused
	// verifier might use as the secret.
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: e.key.Public})
	jwkJSON, _ := json.Marshal(ourJWK)
	secrets := map[string][]byte{
		"PEM":      pemKey,
		"PEM-trim": []byte(strings.TrimSpace(string(pemKey))),
		"DER":      e.key.Public,
		"JWK":      jwkJSON,
		"raw":      rawPublic(e.priv.Public()),
	}
	for _, hs := range []string{"HS256", "HS384", "HS512"} {
		for enc, secret := range secrets {
			add(hs+" keyed with public key "+enc, mint(hdr("alg", hs), claimsMap(), signer(hs, secret)))
		}
	}

	// Keys named by the token itself: the attacker's key, embedded or
	// linked, with their kid and with ours.
	add("jwk header, their kid", mint(hdr("jwk", theirJWK, "kid", theirKid), claimsMap(), them))
	add("jwk header, our kid", mint(hdr("jwk", theirJWK), claimsMap(), them))
	add("jwk header, no kid", mint(hdr("jwk", theirJWK, "kid", nil), claimsMap(), them))
	add("jku header, their kid", mint(hdr("jku", keyURL, "kid", theirKid), claimsMap(), them))
	add("jku header, our kid", mint(hdr("jku", keyURL), claimsMap(), them))
	add("x5u header, their kid", mint(hdr("x5u", keyURL, "kid", theirKid), claimsMap(), them))
	add("x5u header, our kid", mint(hdr("x5u", keyURL), claimsMap(), them))
	cert := selfSigned(tb, theirs[e.alg])
	add("x5c header, our kid", mint(hdr("x5c", []string{cert}), claimsMap(), them))
	add("x5c header, no kid", mint(hdr("x5c", []string{cert}, "kid", nil), claimsMap(), them))
	// The same members are refused even on a token we signed.
	add("jku header, signed by us", mint(hdr("jku", keyURL), claimsMap(), me))
	add("jwk header, signed by us", mint(hdr("jwk", ourJWK), claimsMap(), me))
	add("x5c header, signed by us", mint(hdr("x5c", []string{cert}), claimsMap(), me))
	add("x5u header, signed by us", mint(hdr("x5u", keyURL), claimsMap(), me))
	add("crit header, signed by us", mint(hdr("crit", []string{"exp"}), claimsMap(), me))
	add("b64 false, signed by us", mint(hdr("b64", false, "crit", []string{"b64"}), claimsMap(), me))
	add("b64 false alone, signed by us", mint(hdr("b64", false), claimsMap(), me))
	add("enc header, signed by us", mint(hdr("enc", "A256GCM"), claimsMap(), me))

	// kid: only the exact kid of one of our keys names a key.
	for name, kid := range map[string]any{
		"unknown":        "d3ZQ8w-unknown-kid",
		"path traversal": "../../../../../../etc/passwd",
		"SQL":            "x' UNION SELECT public FROM signing_keys --",
		"empty":          "",
		"very long":      strings.Repeat("A", 4000),
		"our kid + NUL":  e.key.ID + "\x00",
		"our kid spaced": " " + e.key.ID,
		"number":         42,
		"array":          []string{e.key.ID},
		"object":         map[string]string{"kid": e.key.ID},
	} {
		add("kid "+name, mint(hdr("kid", kid), claimsMap(), me))
	}
	add("no kid", mint(hdr("kid", nil), claimsMap(), me))
	add("kid null", mint(`{"alg":"`+e.alg+`","kid":null,"typ":"at+jwt"}`, claimsMap(), me))
	add("another server's key with our kid", mint(e.header(), claimsMap(), them))

	// Tampering after signing.
	tampered := cl("sub", "admin-user")
	tb2, _ := json.Marshal(tampered)
	add("tampered payload", seg[0]+"."+b64.EncodeToString(tb2)+"."+seg[2])
	hb, _ := json.MarshalIndent(e.header(), "", " ")
	add("tampered header (same meaning)", b64.EncodeToString(hb)+"."+seg[1]+"."+seg[2])
	add("swapped signature", seg[0]+"."+seg[1]+"."+strings.Split(mint(e.header(), cl("jti", "other"), me), ".")[2])
	add("signature truncated", seg[0]+"."+seg[1]+"."+b64.EncodeToString(validSig[:len(validSig)-1]))
	add("signature empty", seg[0]+"."+seg[1]+".")

	// Algorithm confusion between asymmetric algorithms, and the other
	// names of our own family.
	for _, other := range algs {
		if other != e.alg {
			add(other+" signed by their key, our kid", mint(hdr("alg", other), claimsMap(), signer(other, theirs[other])))
			add(other+" signed by our "+other+" key, our kid", mint(hdr("alg", other), claimsMap(), signer(other, ours[other])))
		}
	}
	if e.alg == token.RS256 {
		add("PS256 with our RSA key", mint(hdr("alg", "PS256"), claimsMap(), signer("PS256", e.priv)))
	}
	add("alg lower case", mint(hdr("alg", strings.ToLower(e.alg)), claimsMap(), me))
	add("alg missing", mint(hdr("alg", nil), claimsMap(), me))
	add("alg array", mint(hdr("alg", []string{e.alg}), claimsMap(), me))

	// typ.
	add("typ missing", mint(hdr("typ", nil), claimsMap(), me))
	add("typ JWT", mint(hdr("typ", "JWT"), claimsMap(), me))
	add("typ at+jwt with parameter", mint(hdr("typ", "application/at+jwt; x=y"), claimsMap(), me))
	add("typ number", mint(hdr("typ", 1), claimsMap(), me))

	// Claims, signed by us.
	now := t0.Unix()
	add("wrong iss", mint(e.header(), cl("iss", "https://evil.example.test"), me))
	add("iss with trailing slash", mint(e.header(), cl("iss", testIssuer+"/"), me))
	add("iss array", mint(e.header(), cl("iss", []string{testIssuer}), me))
	add("wrong aud", mint(e.header(), cl("aud", "https://other.example.test"), me))
	add("aud array without ours", mint(e.header(), cl("aud", []string{"a", "b"}), me))
	add("aud empty array", mint(e.header(), cl("aud", []string{}), me))
	add("expired beyond leeway", mint(e.header(), cl("exp", now-6, "iat", now-600, "nbf", now-600), me))
	add("expired at exactly exp+leeway", mint(e.header(), cl("exp", now-5, "iat", now-600, "nbf", now-600), me))
	add("nbf in future", mint(e.header(), cl("nbf", now+6), me))
	add("iat in future", mint(e.header(), cl("iat", now+6), me))
	add("exp as string", mint(e.header(), cl("exp", "soon"), me))
	add("exp not a number", mint(e.header(), cl("exp", true), me))
	add("exp with a fraction", mint(e.header(), cl("exp", float64(now)+600.5), me))
	add("exp in exponent form", mint(e.header(), strings.Replace(mustJSON(claimsMap()), `"exp":1700000600`, `"exp":1.7000006e9`, 1), me))
	add("exp beyond int64", mint(e.header(), strings.Replace(mustJSON(claimsMap()), `"exp":1700000600`, `"exp":99999999999999999999`, 1), me))
	for _, c := range []string{"exp", "iat", "nbf", "iss", "aud", "sub", "sid", "jti"} {
		add("missing "+c, mint(e.header(), cl(c, nil), me))
		null := claimsMap()
		null[c] = nil // marshals as null
		add("null "+c, mint(e.header(), null, me))
	}
	for _, c := range []string{"iss", "sub", "sid", "jti"} {
		add("empty "+c, mint(e.header(), cl(c, ""), me))
	}
	add("claims null", mint(e.header(), "null", me))
	add("claims array", mint(e.header(), "[]", me))
	add("claims not JSON", mint(e.header(), "{", me))
	add("header not an object", mint("[]", claimsMap(), me))
	add("too long", mint(e.header(), cl("roles", []string{strings.Repeat("r", token.MaxTokenBytes)}), me))

	// Framing and encoding.
	add("empty", "")
	add("one segment", seg[0])
	add("two segments", seg[0]+"."+seg[1])
	add("four segments", valid+"."+seg[2])
	add("trailing dot", valid+".")
	add("leading dot", "."+valid)
	add("JWE (five segments)", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ."+seg[1]+".AAAAAAAAAAAAAAAA."+seg[1]+".AAAAAAAAAAAAAAAAAAAAAA")
	add("padding on signature", valid+"=")
	add("padding on signature (two)", valid+"==")
	for i, s := range seg[:2] {
		if len(s)%4 != 0 {
			p := append([]string(nil), seg...)
			p[i] += strings.Repeat("=", 4-len(s)%4)
			add("padding on segment "+string(rune('0'+i)), strings.Join(p, "."))
		}
	}
	add("non-canonical last character of signature", seg[0]+"."+seg[1]+"."+nonCanonical(seg[2]))
	add("line break in signature", seg[0]+"."+seg[1]+"."+seg[2][:10]+"\n"+seg[2][10:])
	add("CRLF in signature", seg[0]+"."+seg[1]+"."+seg[2][:10]+"\r\n"+seg[2][10:])
	add("space in signature", seg[0]+"."+seg[1]+"."+seg[2][:10]+" "+seg[2][10:])
	if strings.ContainsAny(valid, "-_") {
		add("standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid))
	}
	add("trailing newline", valid+"\n")
	add("Bearer prefix", "Bearer "+valid)
	return as
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// nonCanonical returns s with its last character changed so that it
// decodes to the same bytes with non-zero unused bits. s must encode a
// length that is not a multiple of 3.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

// rawPublic is the public key as bare bytes: the Ed25519 key, the P-256
// point, the RSA modulus.
func rawPublic(pub crypto.PublicKey) []byte {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return p
	case *ecdsa.PublicKey:
		b, err := p.Bytes()
		if err != nil {
			panic(err)
		}
		return b
	case *rsa.PublicKey:
		return p.N.Bytes()
	}
	panic("unexpected key type")
}

// jwkOf renders priv's public key through our own JWKS code and returns
// the JWK and its kid.
func jwkOf(tb testing.TB, priv crypto.Signer, alg string) (map[string]any, string) {
	tb.Helper()
	ks, err := token.NewKeySet([]sesame.SigningKey{sealed(tb, priv, alg, t0)}, testMaster, alg, t0, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		tb.Fatalf("JWKS %s: %v", ks.JWKS(), err)
	}
	return set.Keys[0], ks.Current().ID
}

// selfSigned returns a base64 (standard, as x5c wants) self-signed
// certificate for priv.
func selfSigned(tb testing.TB, priv crypto.Signer) string {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "auth.example.test"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}
