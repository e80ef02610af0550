package token_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// FuzzVerify feeds Verify valid tokens, every attack token, and mutations
// of them. Verify must never panic, must refuse with
// sesame.ErrInvalidToken (the revocation check here never fails), and
// whatever it accepts must carry exactly the claims of a token we signed.
func FuzzVerify(f *testing.F) {
	var envs []*env
	for _, alg := range algs {
		envs = append(envs, newEnv(f, alg))
	}
	envs = append(envs, newEnv(f, token.EdDSA, token.WithCache(4)))

	signed := map[string]bool{} // canonical claims of every token we signed
	seed := func(e *env, tok string) {
		f.Add(tok)
		if c, err := e.ver.Verify(ctx, tok); err == nil {
			signed[canonical(c)] = true
		}
	}
	// Fixed jtis, so that every fuzz worker (a process of its own) agrees
	// on the claims the seeds carry.
	for _, e := range envs {
		c := testClaims()
		c.ID = "fuzz-jti-1"
		seed(e, e.issue(f, c))
		c.ID = "fuzz-jti-2"
		c.Audience = []string{"x", testAudience}
		c.Roles = nil
		c.Email = ""
		seed(e, e.issue(f, c))
		seed(e, mint(e.header(), claimsMap(), signer(e.alg, e.priv)))
		for _, a := range attacks(f, e, "https://attacker.example.test/jwks.json") {
			seed(e, a.token)
		}
	}
	if len(signed) == 0 {
		f.Fatal("no seed verified")
	}

	f.Fuzz(func(t *testing.T, tok string) {
		for _, e := range envs {
			c, err := e.ver.Verify(ctx, tok)
			switch {
			case err == nil && !signed[canonical(c)]:
				t.Fatalf("%s accepted claims we never signed: %+v", e.alg, c)
			case err != nil && !errors.Is(err, sesame.ErrInvalidToken):
				t.Fatalf("%s: err = %v; want sesame.ErrInvalidToken", e.alg, err)
			}
		}
	})
}

func canonical(c sesame.Claims) string {
	return fmt.Sprintf("%q %q %q %d %d %d %q %q %q %q", c.Issuer, c.Subject, c.Audience,
		c.ExpiresAt.Unix(), c.IssuedAt.Unix(), c.NotBefore.Unix(), c.ID, c.SessionID, c.Email, c.Roles)
}
