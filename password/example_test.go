package password_test

import (
	"context"
	"fmt"

	"github.com/sesameauth/sesame/password"
)

func Example() {
	ctx := context.Background()
	// A server uses password.Params{}; Fast keeps this example quick.
	h := password.NewHasher(password.Fast)

	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		panic(err) // only sesame.ErrBusy or ctx's error
	}
	fmt.Println(encoded[:28])

	ok, rehash, err := h.Verify(ctx, encoded, "correct horse battery staple")
	fmt.Println(ok, rehash, err)

	// The server has since raised the memory cost: the login still
	// succeeds, and asks for the stored hash to be replaced.
	stronger := password.Fast
	stronger.Memory = 128
	ok, rehash, err = password.NewHasher(stronger).Verify(ctx, encoded, "correct horse battery staple")
	fmt.Println(ok, rehash, err)
	// Output:
	// $argon2id$v=19$m=64,t=1,p=1$
	// true false <nil>
	// true true <nil>
}
