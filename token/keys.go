package token

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sesameauth/sesame"
)

// The signing algorithms Sesame supports, as JOSE names them (RFC 7518, RFC 8037).
const (
	EdDSA = "EdDSA" // Ed25519
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
)

// RSABits is the size of the RSA keys GenerateKey makes, and MinRSABits
// the smallest accepted. 2048 rather than 3072: Go verifies a 2048-bit
// signature about six times faster (28 µs against 177 µs on the reference
// machine, because only the smaller sizes have assembly), every request
// pays that, and 2048 bits is acceptable until 2030 (NIST SP 800-57).
// EdDSA, the default algorithm, is stronger and cheaper than both.
const (
	RSABits    = 2048
	MinRSABits = 2048
)

// MasterKeySize is the size in bytes of the master key that seals private
// signing keys (AES-256).
const MasterKeySize = 32

// GenerateKey makes a new key pair for alg (EdDSA, ES256 or RS256) and
// describes it as a SigningKey created at now (see KeyFor). The returned
// SigningKey has no PrivateSealed yet: seal it with SealKey before storing
// it. An RS256 key is RSABits long and takes about 50 ms to generate; the
// others take microseconds.
func GenerateKey(alg string, now time.Time) (priv crypto.Signer, k sesame.SigningKey, err error) {
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, RSABits)
	default:
		return nil, sesame.SigningKey{}, fmt.Errorf("token: unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return nil, sesame.SigningKey{}, fmt.Errorf("token: generate %s key: %w", alg, err)
	}
	k, err = KeyFor(priv, alg, now)
	if err != nil {
		return nil, sesame.SigningKey{}, err
	}
	return priv, k, nil
}

// KeyFor describes an existing private key as a SigningKey for alg created
// at now: Public is the PKIX DER of its public key and ID its RFC 7638 JWK
// thumbprint (SHA-256, base64url), so equal keys get equal kids on every
// server. It returns an error if the key does not suit alg (an RSA key must
// have at least MinRSABits). PrivateSealed is left empty; see SealKey.
func KeyFor(priv crypto.Signer, alg string, now time.Time) (sesame.SigningKey, error) {
	pub := priv.Public()
	if err := checkPublic(alg, pub); err != nil {
		return sesame.SigningKey{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return sesame.SigningKey{}, fmt.Errorf("token: marshal public key: %w", err)
	}
	j, err := publicJWK(pub)
	if err != nil {
		return sesame.SigningKey{}, err
	}
	return sesame.SigningKey{ID: j.thumbprint(), Alg: alg, Public: der, CreatedAt: now}, nil
}

// SealKey returns k with PrivateSealed set to priv's PKCS #8 encoding sealed
// under master (see Seal). It returns an error if priv is not the private
// half of k.Public.
func SealKey(master []byte, k sesame.SigningKey, priv crypto.Signer) (sesame.SigningKey, error) {
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return sesame.SigningKey{}, fmt.Errorf("token: marshal public key: %w", err)
	}
	if !bytes.Equal(der, k.Public) {
		return sesame.SigningKey{}, errors.New("token: private key does not match the signing key's public key")
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return sesame.SigningKey{}, fmt.Errorf("token: marshal private key: %w", err)
	}
	defer clear(pkcs8)
	k.PrivateSealed, err = Seal(master, pkcs8, k.ID)
	if err != nil {
		return sesame.SigningKey{}, err
	}
	return k, nil
}

// Seal encrypts a private key's PKCS #8 DER under the MasterKeySize-byte
// master key with AES-256-GCM. The result is a random 12-byte nonce followed
// by the ciphertext and the 16-byte tag. The kid is authenticated as
// additional data, so a sealed key moved to another key's row does not open.
func Seal(masterKey []byte, pkcs8 []byte, kid string) ([]byte, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, pkcs8, []byte(kid)), nil
}

// ErrSealedKey is wrapped by Open's error when a sealed key does not open:
// the master key is not the one that sealed it, or the sealed bytes (or the
// kid they are bound to) were altered.
var ErrSealedKey = errors.New("token: a sealed signing key does not open with this master key")

// Open reverses Seal. It returns an error wrapping ErrSealedKey if the
// master key or kid differs from the ones that sealed it or if sealed was
// altered.
func Open(masterKey []byte, sealed []byte, kid string) ([]byte, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	pkcs8, err := aead.Open(nil, nil, sealed, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("%w (kid %q: wrong master key or altered data)", ErrSealedKey, kid)
	}
	return pkcs8, nil
}

func newAEAD(masterKey []byte) (cipher.AEAD, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("token: master key is %d bytes; want %d", len(masterKey), MasterKeySize)
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("token: master key: %w", err)
	}
	// The random 96-bit nonce is prepended by Seal and read back by Open.
	// A master key seals one private key per rotation, far below the 2^32
	// messages that random nonces allow.
	return cipher.NewGCMWithRandomNonce(block)
}

// openKey opens k's private key and checks that it is the private half of
// k.Public.
func openKey(master []byte, k sesame.SigningKey) (crypto.Signer, error) {
	pkcs8, err := Open(master, k.PrivateSealed, k.ID)
	if err != nil {
		return nil, err
	}
	defer clear(pkcs8)
	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("token: parse private key %q: %w", k.ID, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("token: private key %q is a %T, not a signer", k.ID, key)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil || !bytes.Equal(der, k.Public) {
		return nil, fmt.Errorf("token: private key %q does not match its public key", k.ID)
	}
	return signer, nil
}

// parsePublic parses k.Public and checks that it suits k.Alg.
func parsePublic(k sesame.SigningKey) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(k.Public)
	if err != nil {
		return nil, fmt.Errorf("token: parse public key %q: %w", k.ID, err)
	}
	if err := checkPublic(k.Alg, pub); err != nil {
		return nil, fmt.Errorf("token: key %q: %w", k.ID, err)
	}
	return pub, nil
}

// checkPublic reports whether pub is a key of the type alg verifies with.
func checkPublic(alg string, pub crypto.PublicKey) error {
	ok := false
	switch alg {
	case EdDSA:
		p, is := pub.(ed25519.PublicKey)
		ok = is && len(p) == ed25519.PublicKeySize
	case ES256:
		p, is := pub.(*ecdsa.PublicKey)
		ok = is && p.Curve == elliptic.P256()
	case RS256:
		p, is := pub.(*rsa.PublicKey)
		ok = is && p.N.BitLen() >= MinRSABits
	default:
		return fmt.Errorf("token: unsupported signing algorithm %q", alg)
	}
	if !ok {
		return fmt.Errorf("token: a %T is not a key for %s", pub, alg)
	}
	return nil
}

// jwk is one public key of an RFC 7517 JWK Set. Only the members Sesame
// writes are here; nothing ever parses a JWK from outside.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// publicJWK renders the key members of pub (RFC 7518 §6, RFC 8037 §2).
func publicJWK(pub crypto.PublicKey) (jwk, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64(p)}, nil
	case *ecdsa.PublicKey:
		// SEC 1 uncompressed point: 0x04 || X || Y, each the full 32
		// bytes as RFC 7518 §6.2.1.2 requires.
		point, err := p.Bytes()
		if err != nil || p.Curve != elliptic.P256() {
			return jwk{}, errors.New("token: ECDSA key is not a valid P-256 point")
		}
		return jwk{Kty: "EC", Crv: "P-256", X: b64(point[1:33]), Y: b64(point[33:])}, nil
	case *rsa.PublicKey:
		return jwk{Kty: "RSA", N: b64(p.N.Bytes()), E: b64(big.NewInt(int64(p.E)).Bytes())}, nil
	}
	return jwk{}, fmt.Errorf("token: unsupported public key type %T", pub)
}

// thumbprint is the RFC 7638 JWK thumbprint of j: SHA-256 over the
// required members in lexicographic order with no whitespace, base64url.
// The member values are base64url or fixed names, so nothing needs escaping.
func (j jwk) thumbprint() string {
	var s string
	switch j.Kty {
	case "OKP":
		s = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	case "EC":
		s = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "RSA":
		s = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	}
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// LoadMasterKey returns the master key that seals private signing keys.
// If value (typically the environment's SESAME_MASTER_KEY) is non-empty it
// must be MasterKeySize bytes in standard base64, and the file is not
// consulted. Otherwise the key is read from the file at path, which must be
// a regular file with mode 0600 or stricter holding the key in base64. If
// the file does not exist it is created with a new random key: written to
// a temporary file in the same directory and then hard-linked into place,
// so a reader never sees a partial file and, when two processes start at
// once, exactly one key wins and both return it.
func LoadMasterKey(path string, value string) ([]byte, error) {
	if value != "" {
		key, err := decodeMasterKey(value)
		if err != nil {
			return nil, fmt.Errorf("token: master key from the environment: %w", err)
		}
		return key, nil
	}
	key, err := readMasterKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	return createMasterKey(path)
}

func decodeMasterKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("%d bytes; want %d", len(key), MasterKeySize)
	}
	return key, nil
}

func readMasterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("token: master key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token: master key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token: master key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("token: master key %s has mode %#o; want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("token: master key: %w", err)
	}
	key, err := decodeMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("token: master key %s: %w", path, err)
	}
	return key, nil
}

func createMasterKey(path string) ([]byte, error) {
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".master-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("token: create master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("token: create master key: %w", err)
	}
	// Link, unlike rename, fails if path exists: when two processes race,
	// the second one reads the winner's key instead of replacing it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readMasterKey(path)
		}
		return nil, fmt.Errorf("token: create master key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the new name durable; best effort
		d.Close()
	}
	return key, nil
}
