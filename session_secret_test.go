package sesame_test

import (
	"encoding/base64"
	"testing"

	"github.com/sesameauth/sesame"
)

// FuzzValidSecret holds ValidSecret, which checks the alphabet without
// decoding, to what it stands for: exactly the strings that strict
// unpadded base64url decodes to 32 bytes.
func FuzzValidSecret(f *testing.F) {
	s, _ := sesame.NewSecret()
	f.Add(s)
	f.Add(s[:42] + "B") // a last character with a nonzero unused bit
	f.Add(s[:42] + "=")
	f.Add(s + "A")
	f.Add("")
	f.Add(s[:20] + "+" + s[21:]) // standard, not URL, alphabet
	f.Fuzz(func(t *testing.T, s string) {
		want := false
		if len(s) == 43 { // decodes to at most 33 bytes
			var b [33]byte
			n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
			want = err == nil && n == sesame.SecretBytes
		}
		if got := sesame.ValidSecret(s); got != want {
			t.Fatalf("ValidSecret(%q) = %v, strict base64url of 32 bytes: %v", s, got, want)
		}
	})
}

func TestValidSecretFresh(t *testing.T) {
	for range 1000 {
		if s, _ := sesame.NewSecret(); !sesame.ValidSecret(s) {
			t.Fatalf("ValidSecret refuses a fresh secret %q", s)
		}
	}
}
