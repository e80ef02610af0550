package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sesameauth/sesame"
)

// userChange runs a command that changes the user named by --email:
// parse the store flags, --email, --json and extra, find the user, then
// change it through an Authenticator on the same stores, with the CLI as
// the audit log's actor. Sessions end in the store, and running servers
// refuse their cookies and access tokens on the next request (they read
// the revocation log before trusting a token).
func userChange(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer,
	extra func(*flag.FlagSet), change func(a *sesame.Authenticator, u sesame.User) (sesame.User, error)) error {
	var (
		email  string
		asJSON bool
	)
	st, err := dataCommand(ctx, name, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email (required)")
		fs.BoolVar(&asJSON, "json", false, "print the user as one JSON object")
		if extra != nil {
			extra(fs)
		}
	})
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := userByEmail(ctx, st, name, email)
	if err != nil {
		return err
	}
	u, err = change(cliAuth(st), u)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if u.ID == "" { // deleted
		return nil
	}
	return printUser(stdout, asJSON, u)
}

func userDelete(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return userChange(ctx, "user delete", args, getenv, stdout, stderr, nil, func(a *sesame.Authenticator, u sesame.User) (sesame.User, error) {
		if err := a.DeleteUser(ctx, u.ID, cliClient); err != nil {
			return u, err
		}
		fmt.Fprintf(stdout, "deleted %s (%s); every session and refresh token of the user ended\n", printable(u.Email), u.ID)
		return sesame.User{}, nil
	})
}

func userSetDisabled(disabled bool) func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name := "user enable"
	if disabled {
		name = "user disable"
	}
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return userChange(ctx, name, args, getenv, stdout, stderr, nil, func(a *sesame.Authenticator, u sesame.User) (sesame.User, error) {
			return a.SetDisabled(ctx, u.ID, disabled, cliClient)
		})
	}
}

func userSetRoles(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var roles stringList
	return userChange(ctx, "user set-roles", args, getenv, stdout, stderr, func(fs *flag.FlagSet) {
		fs.Var(&roles, "role", "a role the user keeps or gets, e.g. admin (repeatable; \"user\" is always kept)")
	}, func(a *sesame.Authenticator, u sesame.User) (sesame.User, error) {
		if err := checkRoles("user set-roles", roles); err != nil {
			return u, err
		}
		return a.SetRoles(ctx, u.ID, roles, cliClient)
	})
}

func userSetEmail(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var newEmail string
	return userChange(ctx, "user set-email", args, getenv, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&newEmail, "new-email", "", "the user's new email (required)")
	}, func(a *sesame.Authenticator, u sesame.User) (sesame.User, error) {
		if newEmail == "" {
			return u, usagef("user set-email: --new-email is required")
		}
		u, err := a.SetEmail(ctx, u.ID, newEmail, cliClient)
		switch {
		case errors.Is(err, sesame.ErrInvalidEmail):
			return u, usagef("user set-email: --new-email %q is not a valid address", newEmail)
		case errors.Is(err, sesame.ErrEmailTaken):
			return u, fmt.Errorf("another user has email %s", printable(newEmail))
		}
		return u, err
	})
}
