package sesame_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// fakeIssuer signs nothing: the grants only need a string, and a lifetime.
type fakeIssuer struct{}

func (fakeIssuer) IssueAccessToken(c sesame.Claims) (string, sesame.Claims, error) {
	if exp := c.IssuedAt.Add(time.Minute); c.ExpiresAt.IsZero() || exp.Before(c.ExpiresAt) {
		c.ExpiresAt = exp
	}
	return "access." + c.SessionID, c, nil
}

func newTokenFixture(t *testing.T) *fixture {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	f := newFixture(t, nil)
	var err error
	if f.grants, err = sesame.NewGrants(f.auth, sesame.GrantsConfig{Backend: f.st, Issuer: fakeIssuer{}, SuccessorKey: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Register(t.Context(), "ada@example.test", "correct horse battery", nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// refreshMany starts a family and refreshes it n times, returning every
// refresh token in order.
func refreshMany(t *testing.T, f *fixture, n int) (chain []string, sid string) {
	t.Helper()
	ctx := t.Context()
	toks, err := f.grants.Password(ctx, "ada@example.test", "correct horse battery", sesame.Client{})
	if err != nil {
		t.Fatal(err)
	}
	chain = []string{toks.RefreshToken}
	for range n {
		next, err := f.grants.Refresh(ctx, chain[len(chain)-1], sesame.Client{})
		if err != nil {
			t.Fatalf("refresh %d: %v", len(chain), err)
		}
		chain = append(chain, next.RefreshToken)
	}
	return chain, toks.SessionID
}

// TestForgottenRetiredTokenEndsFamily presents the first refresh token of a
// family long after the store forgot it: the token names its family and
// generation, so the family ends, as for any other retired token.
func TestForgottenRetiredTokenEndsFamily(t *testing.T) {
	f := newTokenFixture(t)
	ctx := t.Context()
	chain, sid := refreshMany(t, f, sesame.RetiredRefreshTokensKept+10)
	if _, err := f.st.RefreshToken(ctx, sesame.HashSecret(chain[0])); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Fatalf("the store still knows the first token (%v): the test needs it forgotten", err)
	}
	if _, err := f.grants.Refresh(ctx, chain[0], sesame.Client{}); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Fatalf("Refresh(a forgotten retired token) = %v, want ErrInvalidGrant", err)
	}
	if _, err := f.grants.Refresh(ctx, chain[len(chain)-1], sesame.Client{}); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("after a forgotten retired token came back, the current token still refreshes (%v): the family lives on", err)
	}
	events, _ := f.st.Events(ctx, sesame.EventQuery{Limit: 1})
	if len(events) != 1 || events[0].Type != sesame.EventTokenReuse || events[0].SessionID != sid {
		t.Errorf("newest audit event = %+v, want %s of session %s", events, sesame.EventTokenReuse, sid)
	}
}

// TestRevokeForgottenToken revokes a family by one of its forgotten
// retired tokens (RFC 7009: any token of the family).
func TestRevokeForgottenToken(t *testing.T) {
	f := newTokenFixture(t)
	ctx := t.Context()
	chain, _ := refreshMany(t, f, sesame.RetiredRefreshTokensKept+3)
	if err := f.grants.Revoke(ctx, chain[1], sesame.Client{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.grants.Refresh(ctx, chain[len(chain)-1], sesame.Client{}); !errors.Is(err, sesame.ErrInvalidGrant) {
		t.Errorf("Refresh(current token) after revoking a forgotten one = %v, want ErrInvalidGrant", err)
	}
}

// TestForgedFamilyTokenEndsNothing presents tokens that name a live family
// at an old generation but were not made with the server's key: a session
// ID is a public handle, so naming it must not be enough to end it.
func TestForgedFamilyTokenEndsNothing(t *testing.T) {
	f := newTokenFixture(t)
	ctx := t.Context()
	chain, _ := refreshMany(t, f, sesame.RetiredRefreshTokensKept+3)
	raw, err := base64.RawURLEncoding.DecodeString(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	forged := func(mutate func(b []byte)) string {
		b := append([]byte(nil), raw...)
		mutate(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for name, tok := range map[string]string{
		"another secret":  forged(func(b []byte) { b[len(b)-20] ^= 1 }),
		"another tag":     forged(func(b []byte) { b[len(b)-1] ^= 1 }),
		"another version": forged(func(b []byte) { b[0] = 2 }),
		"truncated":       chain[0][:len(chain[0])-2],
	} {
		if _, err := f.grants.Refresh(ctx, tok, sesame.Client{}); !errors.Is(err, sesame.ErrInvalidGrant) {
			t.Errorf("Refresh(forged token, %s) = %v, want ErrInvalidGrant", name, err)
		}
		if err := f.grants.Revoke(ctx, tok, sesame.Client{}); err != nil {
			t.Errorf("RevokeToken(forged token, %s) = %v", name, err)
		}
	}
	if _, err := f.grants.Refresh(ctx, chain[len(chain)-1], sesame.Client{}); err != nil {
		t.Errorf("after forged tokens, the current token no longer refreshes: %v", err)
	}
}
