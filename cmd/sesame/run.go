package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/sesameauth/sesame/lab"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const usage = `Usage: sesame <command> [flags]

Commands:
  serve                     run the server
  user add --email E [--role R]... --password-stdin
                            create a user; the password is read from stdin
                            (prompted for, without echo, on a terminal)
  user list [--json]        one user a line
  user delete --email E     delete the user; every session and refresh
                            token of the user ends
  user disable --email E    end the user's sessions and refresh tokens and
                            refuse sign-in (as for a wrong password)
  user enable --email E     allow sign-in again
  user set-roles --email E --role R...
                            replace the user's roles ("user" is always
                            kept); removing one ends every session
  user set-email --email E --new-email N
                            change the user's email
  sessions list --email E [--json]
                            that user's live sessions (cookie sessions and
                            refresh-token families)
  sessions revoke --email E end all of that user's sessions and refresh tokens
  keys rotate [--signing-alg A]
                            make a new signing key current (running servers
                            sign with it within 10 seconds)
  lab [--quick] [--out DIR] [--stores LIST]
                            measure sessions against tokens on this machine:
                            DIR/report.html and DIR/results.json
  healthcheck [--url U]     exit 0 if the server answers /healthz (for
                            container health checks)
  demo [--addr A]           run the seed's ABC Bank beside Sesame on in-memory
                            stores (prints the bank's URL and a demo account)
  version                   print the version

Every command that touches data takes --data-dir, --db and --session-store
(or SESAME_DATA_DIR, SESAME_DB, SESAME_SESSION_STORE). List commands print
one item a line, with a header only on a terminal; --json prints one JSON
object a line. "sesame serve -h" lists the server's flags.
`

// run is the whole program: main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	sub := func() (string, []string) {
		if len(rest) == 0 {
			return "", nil
		}
		return rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "demo":
		return demo(ctx, rest, getenv, stdout, stderr)
	case "user":
		switch s, r := sub(); s {
		case "add":
			return userAdd(ctx, r, getenv, stdin, stdout, stderr)
		case "list":
			return userList(ctx, r, getenv, stdout, stderr)
		case "delete":
			return userDelete(ctx, r, getenv, stdout, stderr)
		case "disable":
			return userSetDisabled(true)(ctx, r, getenv, stdout, stderr)
		case "enable":
			return userSetDisabled(false)(ctx, r, getenv, stdout, stderr)
		case "set-roles":
			return userSetRoles(ctx, r, getenv, stdout, stderr)
		case "set-email":
			return userSetEmail(ctx, r, getenv, stdout, stderr)
		default:
			return usagef("user: want add, list, delete, disable, enable, set-roles or set-email, got %q", s)
		}
	case "sessions":
		switch s, r := sub(); s {
		case "list":
			return sessionsList(ctx, r, getenv, stdout, stderr)
		case "revoke":
			return sessionsRevoke(ctx, r, getenv, stdout, stderr)
		default:
			return usagef("sessions: want \"list\" or \"revoke\", got %q", s)
		}
	case "keys":
		switch s, r := sub(); s {
		case "rotate":
			return keysRotate(ctx, r, getenv, stdout, stderr)
		default:
			return usagef("keys: want \"rotate\", got %q", s)
		}
	case "lab":
		return lab.Run(ctx, rest, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "sesame", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown command %q", cmd)
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
