package password_test

import (
	"errors"
	"testing"

	"github.com/sesameauth/sesame/password"
)

// FuzzDecode feeds the PHC decoder, which reads what the user store holds,
// arbitrary strings. It must never panic, must accept only strings within
// its limits, and must accept only the one canonical encoding of each hash:
// whatever it accepts, encoding the result gives back the same string.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		valid,
		"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=19456,t=2,p=1$c2VzYW1lLXNhbHQtMDAwMQ$B15RWW2EbMwKBgSuK4D1XEUxHyFnq3/J67q2Hof/6Cw",
		"$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0$imEQcyCLpXo+v/pYdxTHPw",
		"$argon2id$v=19$m=1048576,t=32,p=255$c2FsdHNhbHRzYWx0$" + validHash,
	} {
		f.Add(s)
	}
	for _, s := range malformedCases {
		if len(s) <= 4096 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := password.Decode(s)
		if err != nil {
			if !errors.Is(err, password.ErrMalformed) {
				t.Fatalf("Decode error %v does not match ErrMalformed", err)
			}
			return
		}
		switch {
		case p.Threads < 1, p.Memory < 8*uint32(p.Threads), p.Memory > 1<<20:
			t.Fatalf("accepted m=%d p=%d", p.Memory, p.Threads)
		case p.Time < 1 || p.Time > 32:
			t.Fatalf("accepted t=%d", p.Time)
		case len(salt) < 8 || len(salt) > 1024 || len(key) < 8 || len(key) > 1024:
			t.Fatalf("accepted a %d-byte salt and %d-byte hash", len(salt), len(key))
		}
		if enc := password.Encode(p, salt, key); enc != s {
			t.Fatalf("Decode accepted a non-canonical string:\n got %q\nwant %q", s, enc)
		}
	})
}
