package token_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// TestPublishDelay: with WithPublishDelay a new key is in the JWKS and
// verifies at once, but signs only once it is that old (issue 7 item 7).
func TestPublishDelay(t *testing.T) {
	ours, theirs := testKeys()
	old := sealed(t, ours[token.EdDSA], token.EdDSA, t0.Add(-time.Hour))
	old.RetiredAt = t0
	fresh := sealed(t, theirs[token.EdDSA], token.EdDSA, t0)
	keys := []sesame.SigningKey{fresh, old}
	const d = 5 * time.Second

	ks, err := token.NewKeySet(keys, testMaster, token.EdDSA, t0.Add(time.Second), time.Hour, token.WithPublishDelay(d))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Current().ID != old.ID {
		t.Errorf("1 s after the rotation the current key is %s, want the old %s", ks.Current().ID, old.ID)
	}
	if k, at, ok := ks.Next(); !ok || k.ID != fresh.ID || !at.Equal(t0.Add(d)) {
		t.Errorf("Next() = %s, %v, %v; want %s at %v", k.ID, at, ok, fresh.ID, t0.Add(d))
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0]["kid"] != old.ID || set.Keys[1]["kid"] != fresh.ID {
		t.Errorf("JWKS before the new key signs: %s; want the current key, then the new one", ks.JWKS())
	}
	// The new key's tokens verify before it signs here: another server
	// may already sign with it.
	theirKeys := token.NewKeys(ks)
	v, err := token.NewVerifier(theirKeys, testIssuer, testAudience, token.WithNow(func() time.Time { return t0.Add(time.Second) }))
	if err != nil {
		t.Fatal(err)
	}
	other, err := token.NewKeySet(keys, testMaster, token.EdDSA, t0.Add(d), time.Hour, token.WithPublishDelay(d))
	if err != nil {
		t.Fatal(err)
	}
	if other.Current().ID != fresh.ID {
		t.Fatalf("%v after the rotation the current key is %s, want the new %s", d, other.Current().ID, fresh.ID)
	}
	if _, _, ok := other.Next(); ok {
		t.Errorf("Next() reports a key once the newest signs")
	}
	is := &token.Issuer{Keys: token.NewKeys(other), Issuer: testIssuer, Audience: []string{testAudience}, TTL: 10 * time.Minute, Now: func() time.Time { return t0.Add(time.Second) }}
	tok, err := is.Issue(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("a token of the published key, on a server where it does not sign yet: %v", err)
	}
	// Without a delay, the newest key signs at once (the old behaviour).
	now, err := token.NewKeySet(keys, testMaster, token.EdDSA, t0, time.Hour)
	if err != nil || now.Current().ID != fresh.ID {
		t.Errorf("without a delay: current %v, %v; want %s", now.Current().ID, err, fresh.ID)
	}
	// The very first key signs at once whatever the delay.
	first, err := token.NewKeySet([]sesame.SigningKey{fresh}, testMaster, token.EdDSA, t0, time.Hour, token.WithPublishDelay(d))
	if err != nil || first.Current().ID != fresh.ID {
		t.Errorf("a lone new key: current %v, %v; want it", first.Current().ID, err)
	}
}

// TestUnknownKIDReload: a token whose kid the verifier does not know makes
// it call the WithUnknownKID function, and verify against the set that
// function installed.
func TestUnknownKIDReload(t *testing.T) {
	e := newEnv(t, token.EdDSA)
	_, theirs := testKeys()
	fresh := sealed(t, theirs[token.EdDSA], token.EdDSA, t0)
	both, err := token.NewKeySet([]sesame.SigningKey{fresh, e.key}, testMaster, token.EdDSA, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	is := &token.Issuer{Keys: token.NewKeys(both), Issuer: testIssuer, Audience: []string{testAudience}, TTL: 10 * time.Minute, Now: e.clock.Now}
	tok, err := is.Issue(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	// Without the option: 401.
	if _, err := e.ver.Verify(context.Background(), tok); err == nil {
		t.Fatal("a token of a key the verifier does not know verified")
	}
	var calls atomic.Int64
	var asked string
	v, err := token.NewVerifier(e.keys, testIssuer, testAudience, token.WithNow(e.clock.Now),
		token.WithUnknownKID(func(ctx context.Context, kid string) bool {
			calls.Add(1)
			asked = kid
			if kid != fresh.ID {
				return false
			}
			e.keys.Store(both)
			return true
		}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("after the reload: %v", err)
	}
	if calls.Load() != 1 || asked != fresh.ID {
		t.Errorf("reload called %d times with %q; want once with %s", calls.Load(), asked, fresh.ID)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil || calls.Load() != 1 {
		t.Errorf("a known kid: %v after %d reloads; want no further reload", err, calls.Load())
	}
}
