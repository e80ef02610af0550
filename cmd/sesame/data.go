package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/password"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// dataCommand parses a data command's flags (the store flags plus extra)
// and opens the stores.
func dataCommand(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet), dataDir ...*string) (*stores, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return nil, err
	}
	for _, d := range dataDir {
		*d = sf.dataDir
	}
	return sf.open(ctx)
}

// cliAuth is an Authenticator for the command line: same stores, same
// hashing, audit events marked as coming from the CLI.
func cliAuth(st *stores) *sesame.Authenticator {
	return sesame.New(sesame.Config{
		Users: st.users, Sessions: st.sessions, Audit: st.audit, Limiter: st.limiter,
		Hasher: password.NewHasher(password.Params{}),
	})
}

var cliClient = sesame.Client{UserAgent: "sesame-cli"}

func userAdd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		email     string
		roles     stringList
		fromStdin bool
	)
	st, err := dataCommand(ctx, "user add", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email (required)")
		fs.Var(&roles, "role", "a role to give the user, e.g. admin (repeatable)")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin (required)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if email == "" {
		return usagef("user add: --email is required")
	}
	if !fromStdin {
		return usagef("user add: --password-stdin is required (a password is never taken as a flag)")
	}
	for _, r := range roles {
		if r == "" || strings.ContainsAny(r, " ,") || strings.ContainsFunc(r, needsEscape) {
			return usagef("user add: --role %q is not a role name", r)
		}
	}
	pw, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("user add: reading the password from stdin: %w", err)
	}
	pw = strings.TrimRight(pw, "\r\n")
	u, err := cliAuth(st).Register(ctx, email, pw, roles)
	switch {
	case errors.Is(err, sesame.ErrInvalidEmail):
		return usagef("user add: --email %q is not a valid address", email)
	case errors.Is(err, sesame.ErrInvalidPassword):
		return usagef("user add: the password must be %d to %d bytes of UTF-8", sesame.MinPasswordBytes, sesame.MaxPasswordBytes)
	case errors.Is(err, sesame.ErrEmailTaken):
		return fmt.Errorf("user add: a user with email %s already exists", termSafe(email))
	case err != nil:
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(stdout, "%s\t%s\t%s\n", u.ID, termSafe(u.Email), termSafe(strings.Join(u.Roles, ",")))
	return nil
}

func userList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	st, err := dataCommand(ctx, "user list", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.users.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, termSafe(u.Email), termSafe(strings.Join(u.Roles, ",")), u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// userByEmail finds the user a sessions command names.
func userByEmail(ctx context.Context, st *stores, cmd, email string) (sesame.User, error) {
	if email == "" {
		return sesame.User{}, usagef("%s: --email is required", cmd)
	}
	e, err := sesame.NormalizeEmail(email)
	if err != nil {
		return sesame.User{}, usagef("%s: --email %q is not a valid address", cmd, email)
	}
	u, err := st.users.UserByEmail(ctx, e)
	if errors.Is(err, sesame.ErrUserNotFound) {
		return u, fmt.Errorf("%s: no user has email %s", cmd, termSafe(e))
	}
	return u, err
}

func sessionsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var email string
	st, err := dataCommand(ctx, "sessions list", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "whose sessions (required)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := userByEmail(ctx, st, "sessions list", email)
	if err != nil {
		return err
	}
	list, err := st.sessions.UserSessions(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("sessions list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%q\n", s.ID, s.CreatedAt.UTC().Format(time.RFC3339),
			s.LastSeenAt.UTC().Format(time.RFC3339), s.ExpiresAt.UTC().Format(time.RFC3339), termSafe(s.IP), s.UserAgent)
	}
	return tw.Flush()
}

func sessionsRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var email string
	st, err := dataCommand(ctx, "sessions revoke", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "whose sessions to end (required)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := userByEmail(ctx, st, "sessions revoke", email)
	if err != nil {
		return err
	}
	n, err := cliAuth(st).RevokeSessions(ctx, u.ID, "", cliClient)
	if err != nil {
		return fmt.Errorf("sessions revoke: %w", err)
	}
	fmt.Fprintf(stdout, "ended %d session(s) of %s\n", n, termSafe(u.Email))
	return nil
}
