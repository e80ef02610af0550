package token_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

func TestGenerateKey(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			priv, k, err := token.GenerateKey(alg, t0)
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg != alg || !k.CreatedAt.Equal(t0) || !k.RetiredAt.IsZero() || k.PrivateSealed != nil {
				t.Errorf("key = %+v", k)
			}
			pub, err := x509.ParsePKIXPublicKey(k.Public)
			if err != nil {
				t.Fatal(err)
			}
			switch p := pub.(type) {
			case ed25519.PublicKey:
				if alg != token.EdDSA {
					t.Errorf("%s key is %T", alg, pub)
				}
			case *ecdsa.PublicKey:
				if alg != token.ES256 || p.Curve != elliptic.P256() {
					t.Errorf("%s key is %T", alg, pub)
				}
			case *rsa.PublicKey:
				if alg != token.RS256 || p.N.BitLen() != token.RSABits {
					t.Errorf("%s key is %T of %d bits", alg, pub, p.N.BitLen())
				}
			}
			// The kid is the RFC 7638 thumbprint: 32 bytes, base64url.
			if raw, err := b64.DecodeString(k.ID); err != nil || len(raw) != sha256.Size {
				t.Errorf("kid %q is not a base64url SHA-256", k.ID)
			}
			// The sealed key opens to the same private key and signs.
			k, err = token.SealKey(testMaster, k, priv)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := token.NewKeySet([]sesame.SigningKey{k}, testMaster, alg, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if ks.Current().ID != k.ID {
				t.Errorf("current = %s; want %s", ks.Current().ID, k.ID)
			}
		})
	}
	if _, _, err := token.GenerateKey("HS256", t0); err == nil {
		t.Error("GenerateKey(HS256) succeeded")
	}
}

func TestKeyForRefusesWeakOrMismatched(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.KeyFor(small, token.RS256, t0); err == nil {
		t.Error("1024-bit RSA key accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := token.KeyFor(p384, token.ES256, t0); err == nil {
		t.Error("P-384 key accepted for ES256")
	}
	ours, _ := testKeys()
	if _, err := token.KeyFor(ours[token.EdDSA], token.ES256, t0); err == nil {
		t.Error("Ed25519 key accepted for ES256")
	}
	// SealKey refuses a private key that is not k's.
	k, _ := token.KeyFor(ours[token.EdDSA], token.EdDSA, t0)
	_, theirs := testKeys()
	if _, err := token.SealKey(testMaster, k, theirs[token.EdDSA]); err == nil {
		t.Error("SealKey accepted another key's private half")
	}
}

func TestSealOpen(t *testing.T) {
	secret := []byte("pkcs8 bytes")
	sealed, err := token.Seal(testMaster, secret, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 12+len(secret)+16 {
		t.Errorf("sealed is %d bytes; want nonce + ciphertext + tag = %d", len(sealed), 12+len(secret)+16)
	}
	again, _ := token.Seal(testMaster, secret, "kid-1")
	if bytes.Equal(sealed[:12], again[:12]) {
		t.Error("two seals share a nonce")
	}
	got, err := token.Open(testMaster, sealed, "kid-1")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other := bytes.Repeat([]byte{7}, 32)
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, f := range map[string]func() ([]byte, error){
		"wrong kid":         func() ([]byte, error) { return token.Open(testMaster, sealed, "kid-2") },
		"wrong master":      func() ([]byte, error) { return token.Open(other, sealed, "kid-1") },
		"altered":           func() ([]byte, error) { return token.Open(testMaster, flipped, "kid-1") },
		"truncated":         func() ([]byte, error) { return token.Open(testMaster, sealed[:20], "kid-1") },
		"empty":             func() ([]byte, error) { return token.Open(testMaster, nil, "kid-1") },
		"short master":      func() ([]byte, error) { return token.Open(testMaster[:16], sealed, "kid-1") },
		"seal short master": func() ([]byte, error) { return token.Seal(testMaster[:16], secret, "kid-1") },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewKeySet(t *testing.T) {
	ours, theirs := testKeys()
	eddsaOld := sealed(t, theirs[token.EdDSA], token.EdDSA, t0.Add(-2*time.Hour))
	eddsaOld.RetiredAt = t0.Add(-time.Hour)
	eddsaCur := sealed(t, ours[token.EdDSA], token.EdDSA, t0.Add(-time.Hour))
	es := sealed(t, ours[token.ES256], token.ES256, t0) // newest, but another alg
	all := []sesame.SigningKey{eddsaOld, es, eddsaCur}

	ks, err := token.NewKeySet(all, testMaster, token.EdDSA, t0, 90*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Alg() != token.EdDSA || ks.Current().ID != eddsaCur.ID {
		t.Errorf("alg %s current %s; want EdDSA %s", ks.Alg(), ks.Current().ID, eddsaCur.ID)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0]["kid"] != eddsaCur.ID || set.Keys[1]["kid"] != eddsaOld.ID {
		t.Fatalf("JWKS = %s", ks.JWKS())
	}
	// Retired longer than retain ago: gone.
	ks, err = token.NewKeySet(all, testMaster, token.EdDSA, t0, 59*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if kids := ks.KIDs(); len(kids) != 1 || kids[0] != eddsaCur.ID {
		t.Errorf("kids = %v", kids)
	}

	if _, err := token.NewKeySet(all, testMaster, token.RS256, t0, time.Hour); !errors.Is(err, token.ErrNoSigningKey) {
		t.Errorf("no RS256 key: err = %v; want ErrNoSigningKey", err)
	}
	if _, err := token.NewKeySet(all, bytes.Repeat([]byte{1}, 32), token.EdDSA, t0, time.Hour); err == nil {
		t.Error("wrong master key accepted")
	}
	if _, err := token.NewKeySet(all, testMaster, "HS256", t0, time.Hour); err == nil {
		t.Error("HS256 accepted")
	}
	if _, err := token.NewKeySet(all, testMaster, "none", t0, time.Hour); err == nil {
		t.Error("none accepted")
	}
	// A sealed key moved to another key's row does not open.
	swapped := eddsaCur
	swapped.PrivateSealed = eddsaOld.PrivateSealed
	if _, err := token.NewKeySet([]sesame.SigningKey{swapped}, testMaster, token.EdDSA, t0, time.Hour); err == nil {
		t.Error("another key's sealed private key accepted")
	}
	// A corrupt public key of the algorithm is an error, not skipped.
	bad := eddsaOld
	bad.Public = []byte("junk")
	if _, err := token.NewKeySet([]sesame.SigningKey{eddsaCur, bad}, testMaster, token.EdDSA, t0, 2*time.Hour); err == nil {
		t.Error("corrupt public key accepted")
	}
}

func TestJWKSMembers(t *testing.T) {
	ours, _ := testKeys()
	for _, alg := range algs {
		priv := ours[alg]
		j, kid := jwkOf(t, priv, alg)
		if j["use"] != "sig" || j["alg"] != alg || j["kid"] != kid {
			t.Errorf("%s: JWK = %v", alg, j)
		}
		var want map[string]any
		switch p := priv.Public().(type) {
		case ed25519.PublicKey:
			want = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(p)}
		case *ecdsa.PublicKey:
			pt, _ := p.Bytes()
			want = map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(pt[1:33]), "y": b64.EncodeToString(pt[33:])}
		case *rsa.PublicKey:
			want = map[string]any{"kty": "RSA", "n": b64.EncodeToString(p.N.Bytes()), "e": "AQAB"}
		}
		for k, v := range want {
			if j[k] != v {
				t.Errorf("%s: %s = %v; want %v", alg, k, j[k], v)
			}
		}
		if len(j) != len(want)+3 {
			t.Errorf("%s: JWK has extra members: %v", alg, j)
		}
	}
}

// RFC 8037 Appendix A: the Ed25519 key (A.1), its thumbprint (A.3) and
// the JWS example (A.4).
const (
	rfc8037D          = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037X          = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
	rfc8037JWS        = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
		"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)

func TestRFC8037(t *testing.T) {
	seed, err := b64.DecodeString(rfc8037D)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	j, kid := jwkOf(t, priv, token.EdDSA)
	if j["kty"] != "OKP" || j["crv"] != "Ed25519" || j["x"] != rfc8037X {
		t.Fatalf("our JWK = %v; want x %s", j, rfc8037X)
	}
	if kid != rfc8037Thumbprint {
		t.Errorf("kid = %s; want the RFC 8037 A.3 thumbprint %s", kid, rfc8037Thumbprint)
	}
	// The A.4 signature verifies under the key taken from our JWK, and we
	// produce it byte for byte (Ed25519 is deterministic).
	x, _ := b64.DecodeString(j["x"].(string))
	i := strings.LastIndexByte(rfc8037JWS, '.')
	input, sig := rfc8037JWS[:i], rfc8037JWS[i+1:]
	rawSig, _ := b64.DecodeString(sig)
	if !ed25519.Verify(ed25519.PublicKey(x), []byte(input), rawSig) {
		t.Error("RFC 8037 A.4 signature does not verify under our JWK")
	}
	if got := b64.EncodeToString(signer(token.EdDSA, priv)(input)); got != sig {
		t.Errorf("signature = %s; want %s", got, sig)
	}
}

// TestRFC7638 checks the thumbprint kid against RFC 7638 §3.1.
func TestRFC7638(t *testing.T) {
	const (
		n    = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
		want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	)
	nb, err := b64.DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	// KeyFor needs a signer; the RFC gives only the public key, so wrap it.
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}
	k, err := token.KeyFor(publicOnly{pub}, token.RS256, t0)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != want {
		t.Errorf("kid = %s; want %s", k.ID, want)
	}
}

type publicOnly struct{ pub *rsa.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("public only")
}

func TestLoadMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")

	// Created on first use, 0600, and the same key afterwards.
	k1, err := token.LoadMasterKey(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key is %d bytes", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	k2, err := token.LoadMasterKey(path, "")
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load = %x, %v; want %x", k2, err, k1)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// The environment wins over the file.
	env := base64.StdEncoding.EncodeToString(testMaster)
	if k, err := token.LoadMasterKey(path, env); err != nil || !bytes.Equal(k, testMaster) {
		t.Errorf("from env = %x, %v", k, err)
	}
	for name, v := range map[string]string{
		"not base64": "!!!",
		"16 bytes":   base64.StdEncoding.EncodeToString(testMaster[:16]),
		"33 bytes":   base64.StdEncoding.EncodeToString(append(bytes.Clone(testMaster), 0)),
	} {
		if _, err := token.LoadMasterKey(path, v); err == nil {
			t.Errorf("env %s accepted", name)
		}
	}

	// Too open a file is refused, stricter is fine.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := token.LoadMasterKey(path, ""); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("mode 0640: err = %v", err)
	}
	os.Chmod(path, 0o400)
	if k, err := token.LoadMasterKey(path, ""); err != nil || !bytes.Equal(k, k1) {
		t.Errorf("mode 0400: %v", err)
	}

	// A file with the wrong content is an error, not replaced.
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("short"), 0o600)
	if _, err := token.LoadMasterKey(bad, ""); err == nil {
		t.Error("bad key file accepted")
	}
	// A directory is not a key file.
	if _, err := token.LoadMasterKey(dir, ""); err == nil {
		t.Error("directory accepted")
	}
	// A missing directory is an error.
	if _, err := token.LoadMasterKey(filepath.Join(dir, "no", "such", "master.key"), ""); err == nil {
		t.Error("missing directory accepted")
	}
}

// TestLoadMasterKeyRace: processes starting at once all end up with the
// same key.
func TestLoadMasterKeyRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "master.key")
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				keys[i], errs[i] = token.LoadMasterKey(path, "")
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: two different master keys", round)
			}
		}
		onDisk, err := token.LoadMasterKey(path, "")
		if err != nil || !bytes.Equal(onDisk, keys[0]) {
			t.Fatalf("round %d: file holds another key", round)
		}
	}
}
