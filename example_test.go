package sesame_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
)

// A user registers, signs in, is recognised by the session secret, and
// signs out; the secret then no longer works.
func Example() {
	ctx := context.Background()
	st := memstore.New()
	auth := sesame.New(sesame.Config{
		Users: st, Sessions: st, Audit: st, Limiter: st,
		Hasher: password.NewHasher(password.Fast), // a server uses password.Params{}
	})

	if _, err := auth.Register(ctx, " Ada@Example.TEST ", "correct horse battery", nil); err != nil {
		panic(err)
	}
	login, err := auth.Login(ctx, sesame.LoginRequest{Email: "ada@example.test", Password: "correct horse battery"})
	if err != nil {
		panic(err)
	}
	// login.Secret goes into the cookie; the store keeps only its hash.
	_, user, err := auth.Authenticate(ctx, login.Secret)
	fmt.Println(user.Email, user.Roles, err)

	_ = auth.Logout(ctx, login.Secret, sesame.Client{})
	_, _, err = auth.Authenticate(ctx, login.Secret)
	fmt.Println(errors.Is(err, sesame.ErrSessionNotFound))

	_, err = auth.Login(ctx, sesame.LoginRequest{Email: "ada@example.test", Password: "wrong password"})
	fmt.Println(err)
	// Output:
	// ada@example.test [user] <nil>
	// true
	// sesame: invalid credentials
}

// NormalizeEmail makes the different spellings of one address the same
// account.
func ExampleNormalizeEmail() {
	for _, e := range []string{"Admin@x.test", " admin@x.test ", "ａｄｍｉｎ@x.test", "Ada <ada@x.test>"} {
		n, err := sesame.NormalizeEmail(e)
		fmt.Printf("%q %v\n", n, err)
	}
	// Output:
	// "admin@x.test" <nil>
	// "admin@x.test" <nil>
	// "admin@x.test" <nil>
	// "" sesame: invalid email
}
