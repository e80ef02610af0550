// Command sesame-lab measures Sesame and prints what it saw as Markdown, for
// docs/BENCHMARKS.md. Every number it reports stands beside a baseline
// measured in the same run, interleaved round by round (baseline, Sesame,
// baseline, Sesame...), and the summary is the median of the rounds: the
// machines this runs on are small and shared, so only ratios travel.
//
//	sesame-lab session-load [-store memory|sqlite] [-load go|wrk] [-duration 5s] [-conns 32] [-rounds 3] [-user-cache 1s]
//	sesame-lab session-load -serve [-store memory|sqlite]
//	sesame-lab login [-store sqlite|memory] [-duration 5s] [-rounds 3] [-burst 300] [-variant GOMEMLIMIT=117MiB]...
//
// session-load is GET /v1/session with a valid cookie under load over
// loopback, against a bare net/http handler that writes the same body; with
// -user-cache it also loads an experimental Sesame whose user lookups are
// cached. login is POST /v1/session against argon2id itself, then the peak
// resident memory of the real binary while a burst of logins arrives at
// once, also under each -variant environment. The session lookup
// benchmarks live beside the stores, as go test -bench functions (memstore
// and sqlitestore BenchmarkSessionLookup); docs/BENCHMARKS.md has the
// commands.
//
// All traffic goes to servers this program starts on 127.0.0.1, and every
// load loop stops by itself, bounded in time and in count.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: sesame-lab <command> [flags]

Commands:
  session-load   GET /v1/session under load, as a ratio to a bare net/http handler
  login          login throughput as a ratio to raw argon2id; peak RSS of a login burst

"sesame-lab <command> -h" lists a command's flags. Run it from the module's
root: login builds ./cmd/sesame.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sesame-lab:", err)
		os.Exit(1)
	}
}

// run is the whole program: main only wires it to the process. The report
// goes to stdout, progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "session-load":
		return sessionLoad(ctx, rest, stdout, stderr)
	case "login":
		return login(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
