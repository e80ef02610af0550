package token_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// Example is the whole life of a token: a key made and sealed, a KeySet
// built from the stored keys, a token issued and verified, and the same
// token refused once its session is revoked.
func Example() {
	now := time.Now()
	master := make([]byte, token.MasterKeySize) // in a server: token.LoadMasterKey
	rand.Read(master)

	// Make a key and seal its private half: this is what the KeyStore keeps.
	priv, k, err := token.GenerateKey(token.EdDSA, now)
	if err != nil {
		panic(err)
	}
	k, err = token.SealKey(master, k, priv)
	if err != nil {
		panic(err)
	}
	stored := []sesame.SigningKey{k} // in a server: KeyStore.SigningKeys

	ttl, leeway := 10*time.Minute, token.DefaultLeeway
	ks, err := token.NewKeySet(stored, master, token.EdDSA, now, ttl+leeway+10*time.Second)
	if err != nil {
		panic(err)
	}
	keys := token.NewKeys(ks) // a poller calls keys.Store with newer sets

	issuer := &token.Issuer{Keys: keys, Issuer: "https://auth.example.test",
		Audience: []string{"https://auth.example.test"}, TTL: ttl}
	revoked := map[string]bool{}
	verifier, err := token.NewVerifier(keys, "https://auth.example.test", "https://auth.example.test",
		token.WithLeeway(leeway),
		token.WithRevocation(func(sid string, _ time.Time) (bool, error) { return revoked[sid], nil }))
	if err != nil {
		panic(err)
	}

	tok, err := issuer.Issue(sesame.Claims{Subject: "user-1", SessionID: "sess-1", Roles: []string{"user"}})
	if err != nil {
		panic(err)
	}
	c, err := verifier.Verify(context.Background(), tok)
	fmt.Println(c.Subject, c.SessionID, c.Roles, err)

	revoked["sess-1"] = true
	_, err = verifier.Verify(context.Background(), tok)
	fmt.Println(errors.Is(err, sesame.ErrInvalidToken))
	// Output:
	// user-1 sess-1 [user] <nil>
	// true
}
