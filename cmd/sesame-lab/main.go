// Command sesame-lab measures Sesame and prints what it saw as Markdown, for
// docs/BENCHMARKS.md. Every number it reports stands beside a baseline
// measured in the same run, interleaved round by round (baseline, Sesame,
// baseline, Sesame...), and the summary is the median of the rounds: the
// machines this runs on are small and shared, so only ratios travel.
//
//	sesame-lab session-load [-store memory|sqlite|redis] [-redis URL] [-load go|wrk] [-duration 5s] [-conns 32] [-rounds 3]
//	sesame-lab token-load [-store sqlite|memory] [-load go|wrk] [-pools 20000,65536] ...
//	sesame-lab refresh [-store sqlite|memory] [-conns 8] [-duration 5s] [-rounds 3]
//	sesame-lab cache-hits [-pools 16384,20000,32768,65536]
//	sesame-lab revoke-latency [-kind token|cookie] [-n 1000] [-pg URL] [-redis URL] [-workers 4]
//	sesame-lab login [-store sqlite|memory] [-duration 5s] [-rounds 3] [-burst 300] [-variant GOMEMLIMIT=117MiB]...
//
// Every server measured is a process of its own, so that each one's CPU
// time can be read from /proc/PID/stat: Sesame is the real binary (go build
// ./cmd/sesame, then sesame serve --addr 127.0.0.1:0 --data-dir TMP), and
// the baseline is this program's hidden bare command, a bare net/http
// handler that writes the very bytes Sesame answers with.
//
// session-load is GET /v1/session with a valid cookie under load over
// loopback. token-load is GET /v1/userinfo with a bearer access token: the
// same one again and again (verified-token cache hits) and tokens cycled
// from pools larger than the cache (mostly misses). refresh is chains of
// refresh grants, each client on a family of its own. cache-hits counts,
// in this process, how often a verified-token cache of serve's size hits
// on token-load's pools. login is POST
// /v1/session against argon2id itself, then the peak resident memory of the
// binary while a burst of logins arrives at once, also under each -variant
// environment. The session lookup and token verification benchmarks live
// beside their packages, as go test -bench functions; docs/BENCHMARKS.md
// has the commands.
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
  token-load     GET /v1/userinfo with bearer tokens under load, as a ratio to a bare handler
  refresh        refresh-grant throughput and CPU per refresh, beside a bare handler
  cache-hits     the verified-token cache's hit rate on token-load's pools (in-process)
  login          login throughput as a ratio to raw argon2id; peak RSS of a login burst
  revoke-latency two nodes on PostgreSQL + Redis: end a token family or a cookie session
                 on one, time until the other answers 401

"sesame-lab <command> -h" lists a command's flags. Run it from the module's
root: each command builds ./cmd/sesame (or takes -bin).
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
	case "token-load":
		return tokenLoad(ctx, rest, stdout, stderr)
	case "refresh":
		return refreshLoad(ctx, rest, stdout, stderr)
	case "cache-hits":
		return cacheHits(ctx, rest, stdout, stderr)
	case "login":
		return login(ctx, rest, stdout, stderr)
	case "revoke-latency":
		return revokeLatency(ctx, rest, stdout, stderr)
	case "bare": // the baseline server, run by the other commands as a child
		return bare(ctx, rest, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
