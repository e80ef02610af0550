package sesame

import (
	"encoding/base64"
	"strings"
	"testing"
)

var testRefreshKey = []byte("0123456789abcdef0123456789abcdef")

func TestRefreshTokenForm(t *testing.T) {
	uid, sid := NewID(), NewID()
	tok, hash := newRefreshToken(testRefreshKey, uid, sid)
	if hash != HashSecret(tok) {
		t.Error("newRefreshToken's hash is not HashSecret of the token")
	}
	id, ok := parseRefreshToken(testRefreshKey, tok)
	if !ok || id != (refreshID{uid, sid, 0}) {
		t.Fatalf("parseRefreshToken(new token) = %+v, %t", id, ok)
	}
	next := successorRefreshToken(testRefreshKey, tok, refreshID{uid, sid, 1})
	if again := successorRefreshToken(testRefreshKey, tok, refreshID{uid, sid, 1}); again != next {
		t.Error("the successor of one token is not always the same")
	}
	if id, ok := parseRefreshToken(testRefreshKey, next); !ok || id.generation != 1 {
		t.Errorf("parseRefreshToken(successor) = %+v, %t; want generation 1", id, ok)
	}
	if _, ok := parseRefreshToken([]byte(strings.Repeat("k", 32)), tok); ok {
		t.Error("a token verifies under another key")
	}
	other, _ := newRefreshToken(testRefreshKey, uid, sid)
	if other == tok {
		t.Error("two families' first tokens are equal")
	}
	legacy, _ := NewSecret()
	if !validRefreshToken(testRefreshKey, legacy) || !validRefreshToken(testRefreshKey, tok) {
		t.Error("validRefreshToken refuses a token of either form")
	}
	if _, ok := parseRefreshToken(testRefreshKey, legacy); ok {
		t.Error("a token of the earlier form parses as naming a family")
	}
}

// FuzzParseRefreshToken feeds the refresh-token parser (attacker input at
// POST /v1/token and /v1/token/revoke): it never panics, and whatever it
// accepts is exactly what the server would have made.
func FuzzParseRefreshToken(f *testing.F) {
	tok, _ := newRefreshToken(testRefreshKey, NewID(), NewID())
	f.Add(tok)
	f.Add(successorRefreshToken(testRefreshKey, tok, refreshID{"u", "s", 1 << 40}))
	legacy, _ := NewSecret()
	f.Add(legacy)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseRefreshToken(testRefreshKey, s)
		if !ok {
			return
		}
		b := decodeForTest(t, s)
		secret := b[len(b)-refreshTagBytes-SecretBytes : len(b)-refreshTagBytes]
		if again := encodeRefreshToken(testRefreshKey, id, secret); again != s {
			t.Errorf("parseRefreshToken accepted %q, which encodes back as %q", s, again)
		}
	})
}

func decodeForTest(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
