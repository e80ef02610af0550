package sesame

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// A refresh token names its family and its place in it, so that a retired
// token the store has forgotten (a family keeps only the newest
// RetiredRefreshTokensKept) still ends its family when presented again.
// It is base64url (no padding) of
//
//	0x01                          format version
//	len(userID) userID            one length byte, then the bytes
//	len(sessionID) sessionID      the family
//	generation                    uvarint: RefreshToken.Generation
//	secret                        32 bytes: random for generation 0, else
//	                              HMAC-SHA-256(successor key, label ||
//	                              predecessor token)
//	tag                           16 bytes: HMAC-SHA-256(successor key,
//	                              label || everything above), truncated
//
// The secret is the token's 256 bits of entropy; the tag lets the server
// believe the family and generation of a token it has no record of, so
// that nobody without the successor key can end another user's family by
// naming it (session IDs are public handles). The store keeps only the
// SHA-256 of the whole string, as for session secrets. Tokens of the
// earlier form (a bare NewSecret, 43 characters) are still accepted; their
// successors have the form above.

const (
	refreshFormat    = 0x01
	refreshTagBytes  = 16
	maxRefreshIDLen  = 255
	maxRefreshTokLen = 1024 // characters; far above any token this package makes

	labelRefreshSuccessor = "sesame refresh successor\x00"
	labelRefreshTag       = "sesame refresh token v1\x00"
)

// refreshID is what a refresh token says of itself once its tag verified.
type refreshID struct {
	userID, sessionID string
	generation        int64
}

// newRefreshToken returns the first token of a family, and its hash.
func newRefreshToken(key []byte, userID, sessionID string) (string, [32]byte) {
	var secret [SecretBytes]byte
	rand.Read(secret[:])
	tok := encodeRefreshToken(key, refreshID{userID, sessionID, 0}, secret[:])
	return tok, HashSecret(tok)
}

// successorRefreshToken derives the token that replaces prev, the token of
// generation id.generation-1 of id's family. Deriving it (instead of
// drawing it at random) lets a client that lost the answer to a refresh
// retry within the grace window and get the same successor, while the
// store keeps only hashes.
func successorRefreshToken(key []byte, prev string, id refreshID) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(labelRefreshSuccessor))
	m.Write([]byte(prev))
	return encodeRefreshToken(key, id, m.Sum(nil))
}

func encodeRefreshToken(key []byte, id refreshID, secret []byte) string {
	if len(id.userID) > maxRefreshIDLen || len(id.sessionID) > maxRefreshIDLen || id.generation < 0 {
		// IDs come from NewID (32 characters); stores hand back what
		// they were given. A longer one is a bug, not input.
		panic("sesame: refresh token: user or session ID too long, or negative generation")
	}
	b := make([]byte, 0, 1+2+len(id.userID)+len(id.sessionID)+binary.MaxVarintLen64+len(secret)+refreshTagBytes)
	b = append(b, refreshFormat, byte(len(id.userID)))
	b = append(b, id.userID...)
	b = append(b, byte(len(id.sessionID)))
	b = append(b, id.sessionID...)
	b = binary.AppendUvarint(b, uint64(id.generation))
	b = append(b, secret...)
	b = append(b, refreshTag(key, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func refreshTag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(labelRefreshTag))
	m.Write(body)
	return m.Sum(nil)[:refreshTagBytes]
}

// parseRefreshToken returns the family and generation that s names, if s
// has the form above and its tag verifies under key. It costs one HMAC and
// rejects anything malformed before a store is asked.
func parseRefreshToken(key []byte, s string) (refreshID, bool) {
	if len(s) > maxRefreshTokLen || len(s) <= base64.RawURLEncoding.EncodedLen(SecretBytes) {
		return refreshID{}, false
	}
	// The decoder skips CR and LF even when Strict: a token with a line
	// break in it would parse as the token without, so each token would
	// have many spellings. Only the alphabet may pass.
	for i := 0; i < len(s); i++ {
		if base64URLValue[s[i]] == 0xff {
			return refreshID{}, false
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 1+2+1+SecretBytes+refreshTagBytes || b[0] != refreshFormat {
		return refreshID{}, false
	}
	body, tag := b[:len(b)-refreshTagBytes], b[len(b)-refreshTagBytes:]
	if !hmac.Equal(tag, refreshTag(key, body)) {
		return refreshID{}, false
	}
	rest := body[1:]
	field := func() (string, bool) {
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return "", false
		}
		v := string(rest[1 : 1+rest[0]])
		rest = rest[1+rest[0]:]
		return v, true
	}
	var id refreshID
	var ok bool
	if id.userID, ok = field(); !ok {
		return refreshID{}, false
	}
	if id.sessionID, ok = field(); !ok {
		return refreshID{}, false
	}
	gen, n := binary.Uvarint(rest)
	if n <= 0 || gen > 1<<62 || len(rest)-n != SecretBytes {
		return refreshID{}, false
	}
	id.generation = int64(gen)
	return id, true
}

// validRefreshToken reports whether s may be a refresh token: of the form
// above with a good tag, or of the earlier form (ValidSecret).
func validRefreshToken(key []byte, s string) bool {
	if ValidSecret(s) {
		return true
	}
	_, ok := parseRefreshToken(key, s)
	return ok
}
