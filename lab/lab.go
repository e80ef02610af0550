// Package lab is "sesame lab": it measures, on the machine it runs on, each
// row of the classic session-versus-token comparison (storage,
// statelessness and the lookup claim, scalability, expiration, revocation,
// security, use case) and writes report.html and results.json.
//
// Every speed stands beside a baseline measured in the same run (a bare
// net/http handler that writes the very bytes Sesame answers with),
// interleaved round by round, since absolute numbers on small shared
// machines mean little; only ratios travel.
//
// Every server measured is a process of its own, started from the lab's
// own executable ("sesame serve" and the hidden "sesame lab bare"), so that
// each one's CPU time can be read from /proc/PID/stat. The server never
// imports this package. Pointed at a user's PostgreSQL the lab creates a
// database of its own (sesame_lab_<random>) and drops it at the end;
// pointed at a user's Redis it claims an empty database (Sesame's Redis
// store has no key prefix) and empties it again at the end. It never
// empties or drops anything it did not make.
//
//	sesame lab [--quick] [--out DIR] [--stores LIST] [--only ROWS]
//
// The single measurements are sub-commands, each printing Markdown (what
// docs/BENCHMARKS.md quotes):
//
//	sesame lab session-load [-store memory|sqlite|postgres|redis] [-also STORES] [-pg URL] [-redis URL] [-load go|wrk] [-duration 5s] [-conns 32] [-rounds 3] [-headers-baseline=false]
//	sesame lab token-load [-store sqlite|memory] [-load go|wrk] [-pools 20000,65536] [-headers-baseline=false] ...
//	sesame lab refresh [-store sqlite|memory] [-conns 8] [-duration 5s] [-rounds 3]
//	sesame lab cache-hits [-pools 16384,20000,32768,65536]
//	sesame lab revoke-latency [-kind token|cookie] [-n 1000] [-pg URL] [-redis URL] [-workers 4]
//	sesame lab login [-store sqlite|memory] [-duration 5s] [-rounds 3] [-burst 300] [-variant GOMEMLIMIT=117MiB]...
//	sesame lab soak [-duration 10m] [-users 16] [-rate 100] [-pg URL] [-redis URL]
//
// session-load is GET /v1/session with a valid cookie under load over
// loopback, beside a bare handler writing the same body and a bare handler
// also sending the headers Sesame's answer carries. token-load is GET /v1/userinfo with a bearer access token: the
// same one again and again (verified-token cache hits) and tokens cycled
// from pools larger than the cache (mostly misses). refresh is chains of
// refresh grants, each client on a family of its own. cache-hits counts,
// in this process, how often a verified-token cache of serve's size hits
// on token-load's pools. login is POST /v1/session against argon2id
// itself, then the peak resident memory of the binary while a burst of
// logins arrives at once, also under each -variant environment. soak
// runs three nodes under a mixed load and checks every answer against a
// model of every session (soak.go); it exits non-zero on a failure.
//
// All traffic goes to servers the lab starts on 127.0.0.1 (and the stores
// it was pointed at), and every load loop stops by itself, bounded in time
// and in count.
package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
)

const usage = `Usage: sesame lab [--quick] [--out DIR] [--stores LIST] [--only ROWS]
       sesame lab <measurement> [flags]

With no measurement named, the lab measures every row of the
session-versus-token table and writes DIR/report.html and DIR/results.json
("sesame lab -h" lists the flags).

Measurements (each prints Markdown; "sesame lab <measurement> -h" lists its flags):
  session-load   GET /v1/session under load, as a ratio to a bare net/http handler
  token-load     GET /v1/userinfo with bearer tokens under load, as a ratio to a bare handler
  refresh        refresh-grant throughput and CPU per refresh, beside a bare handler
  cache-hits     the verified-token cache's hit rate on token-load's pools (in-process)
  login          login throughput as a ratio to raw argon2id; peak RSS of a login burst
  revoke-latency two nodes on PostgreSQL + Redis: end a token family or a cookie session
                 on one, time until the other answers 401
  soak           three nodes on PostgreSQL + Redis under a mixed load for -duration (10m):
                 fails on any 5xx, any request allowed after its session ended, a live
                 session refused, or memory or goroutines that grew
`

// Run is "sesame lab": args are what follows "lab" on the command line.
// A single measurement prints its Markdown to stdout; the full report goes
// to files. Progress goes to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return report(ctx, args, stdout, stderr)
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
	case "soak":
		return soakCmd(ctx, rest, stdout, stderr)
	case "bare": // the baseline server, run by the other commands as a child
		return bare(ctx, rest, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("lab: unknown measurement %q", cmd)
	}
}
