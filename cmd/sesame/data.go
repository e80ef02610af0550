package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
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

// cliClient is the command line as the audit log sees it: an
// administrative actor.
var cliClient = sesame.Client{UserAgent: "sesame-cli", Actor: sesame.ActorCLI}

// userJSON is a user as the list commands print it with --json.
type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	Disabled  bool      `json:"disabled"`
}

var userHeader = []string{"ID", "EMAIL", "ROLES", "CREATED", "STATUS"}

// addUser prints u as a line of a user listing.
func (l *list) addUser(u sesame.User) error {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	status := "active"
	if u.Disabled {
		status = "disabled"
	}
	return l.add(userJSON{ID: u.ID, Email: u.Email, Roles: roles, CreatedAt: u.CreatedAt.UTC(), Disabled: u.Disabled},
		u.ID, u.Email, strings.Join(u.Roles, ","), u.CreatedAt.UTC().Format(time.RFC3339), status)
}

// printUser prints the user a command created or changed, as user list
// would (header on a terminal, --json for one object).
func printUser(stdout io.Writer, asJSON bool, u sesame.User) error {
	l := newList(stdout, asJSON, userHeader...)
	if err := l.addUser(u); err != nil {
		return err
	}
	return l.flush()
}

// checkRoles refuses a --role that cannot be a role name.
func checkRoles(cmd string, roles []string) error {
	for _, r := range roles {
		if !sesame.ValidRole(r) {
			return usagef("%s: --role %q is not a role name (1 to 64 ASCII letters, digits, '-', '_', '.' or ':')", cmd, r)
		}
	}
	return nil
}

func userAdd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		email     string
		roles     stringList
		fromStdin bool
		asJSON    bool
	)
	st, err := dataCommand(ctx, "user add", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email (required)")
		fs.Var(&roles, "role", "a role to give the user, e.g. admin (repeatable)")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (required): a prompt without echo on a terminal, else the first line")
		fs.BoolVar(&asJSON, "json", false, "print the user as one JSON object")
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
	if err := checkRoles("user add", roles); err != nil {
		return err
	}
	if _, err := sesame.NormalizeEmail(email); err != nil {
		return usagef("user add: --email %q is not a valid address", email)
	}
	pw, err := readPassword(stdin, stderr, true)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	u, err := cliAuth(st).AddUser(ctx, email, pw, roles, cliClient)
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
	return printUser(stdout, asJSON, u)
}

func userList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var asJSON bool
	st, err := dataCommand(ctx, "user list", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print one JSON object a line")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.users.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	l := newList(stdout, asJSON, userHeader...)
	for _, u := range users {
		if err := l.addUser(u); err != nil {
			return err
		}
	}
	return l.flush()
}

// userByEmail finds the user a command names.
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

// sessionJSON is a session as sessions list prints it with --json.
type sessionJSON struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"` // "cookie", or "token" for a refresh-token family
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
}

func sessionsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		email  string
		asJSON bool
	)
	st, err := dataCommand(ctx, "sessions list", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "whose sessions (required)")
		fs.BoolVar(&asJSON, "json", false, "print one JSON object a line")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := userByEmail(ctx, st, "sessions list", email)
	if err != nil {
		return err
	}
	sessions, err := st.sessions.UserSessions(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("sessions list: %w", err)
	}
	l := newList(stdout, asJSON, "ID", "KIND", "CREATED", "LAST SEEN", "EXPIRES", "IP", "USER AGENT")
	for _, s := range sessions {
		kind := s.Kind
		if kind == "" {
			kind = sesame.KindCookie
		}
		j := sessionJSON{ID: s.ID, Kind: kind, CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(),
			ExpiresAt: s.ExpiresAt.UTC(), IP: s.IP, UserAgent: s.UserAgent}
		if err := l.add(j, s.ID, kind, j.CreatedAt.Format(time.RFC3339), j.LastSeenAt.Format(time.RFC3339),
			j.ExpiresAt.Format(time.RFC3339), s.IP, s.UserAgent); err != nil {
			return err
		}
	}
	return l.flush()
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
