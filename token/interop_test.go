package token_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// TestInteropGoOIDC checks our tokens and JWKS against an independent JOSE
// stack: go-oidc (over go-jose) fetches the JWKS over HTTP and verifies
// tokens our Issuer made, before and after a key rotation.
func TestInteropGoOIDC(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(e.keys.Load().JWKS())
			}))
			defer srv.Close()

			newVerifier := func() *oidc.IDTokenVerifier {
				return oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, srv.URL), &oidc.Config{
					ClientID:             testAudience,
					SupportedSigningAlgs: []string{alg},
					Now:                  func() time.Time { return t0 },
				})
			}
			check := func(v *oidc.IDTokenVerifier, tok string) {
				t.Helper()
				idt, err := v.Verify(ctx, tok)
				if err != nil {
					t.Fatalf("go-oidc refused our token: %v", err)
				}
				var extra struct {
					SID   string   `json:"sid"`
					Roles []string `json:"roles"`
				}
				if err := idt.Claims(&extra); err != nil {
					t.Fatal(err)
				}
				if idt.Subject != "user-1" || !slices.Equal(idt.Audience, []string{testAudience}) ||
					extra.SID != "sess-1" || !slices.Equal(extra.Roles, []string{"user", "admin"}) {
					t.Errorf("go-oidc read %+v %+v", idt, extra)
				}
			}
			oldTok := e.issue(t, testClaims())
			check(newVerifier(), oldTok)

			// Rotate: the JWKS now holds two keys, and go-oidc picks by kid.
			_, theirs := testKeys()
			old := e.key
			old.RetiredAt = t0
			ks, err := token.NewKeySet([]sesame.SigningKey{old, sealed(t, theirs[alg], alg, t0)}, testMaster, alg, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			e.keys.Store(ks)
			v := newVerifier()
			check(v, e.issue(t, testClaims()))
			check(v, oldTok)

			// And it refuses a token signed by a key not in the set.
			stranger, sk, err := token.GenerateKey(alg, t0)
			if err != nil {
				t.Fatal(err)
			}
			h := e.header()
			h["kid"] = sk.ID
			if _, err := v.Verify(ctx, mint(h, claimsMap(), signer(alg, stranger))); err == nil {
				t.Error("go-oidc accepted a token signed by an unknown key")
			}
		})
	}
}
