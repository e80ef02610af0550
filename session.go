package sesame

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// Session is one sign-in on one device. The browser holds only the secret
// whose SHA-256 is SecretHash; ID is a public handle for listings and
// revocation and reveals nothing about the secret.
type Session struct {
	ID         string   // public handle, random, never the secret
	SecretHash [32]byte // SHA-256 of the secret carried by the client
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is when the session ends unless it is used again:
	// the earlier of LastSeenAt + idle timeout and AbsoluteExpiresAt.
	ExpiresAt         time.Time
	AbsoluteExpiresAt time.Time
	IP                string
	UserAgent         string
	// Kind is KindCookie or KindToken; empty is read as KindCookie.
	Kind string
}

// Live reports whether s has not reached its deadline at now.
func (s Session) Live(now time.Time) bool { return now.Before(s.ExpiresAt) }

// SecretBytes is the size of a session secret: 256 bits.
const SecretBytes = 32

// NewSecret returns a fresh session secret of 256 random bits, base64url
// encoded without padding (43 characters), and its hash.
func NewSecret() (secret string, hash [32]byte) {
	var b [SecretBytes]byte
	rand.Read(b[:]) // never returns an error; crashes the program if the OS has no randomness
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret)
}

// HashSecret returns the SHA-256 of a session secret: what the stores keep.
func HashSecret(secret string) [32]byte {
	// Copied into an array on the stack: []byte(secret) of a secret longer
	// than 32 bytes would be a heap allocation on every signed-in request.
	var buf [64]byte
	return sha256.Sum256(append(buf[:0], secret...))
}

// ValidSecret reports whether s has the exact form NewSecret produces. It is
// cheap and rejects anything an attacker made up before a store is asked.
func ValidSecret(s string) bool {
	// What base64.RawURLEncoding.Strict() accepts as 32 bytes (the
	// fuzz target FuzzValidSecret holds the two together), without
	// decoding: 43 characters of the alphabet, the last of which carries
	// 4 bits of data and 2 bits that must be zero. It runs on every
	// signed-in request.
	if len(s) != secretLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if base64URLValue[s[i]] == 0xff {
			return false
		}
	}
	return base64URLValue[s[len(s)-1]]&0b11 == 0
}

// secretLen is the length of an encoded secret.
var secretLen = base64.RawURLEncoding.EncodedLen(SecretBytes)

// base64URLValue maps each byte of the base64url alphabet to its value and
// every other byte to 0xff.
var base64URLValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for v, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = byte(v)
	}
	return t
}()

// NewID returns a random 128-bit identifier, hex encoded, for users and
// session handles.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
