package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// revokeLatency is the revoke-latency command: two sesame serve processes
// (nodes A and B) on one PostgreSQL database (created for the run and
// dropped after it) and one Redis database (FLUSHDBed before and after),
// with the same SESAME_MASTER_KEY and --issuer. For each of -n sessions,
// made up front, B answers a request carrying the session (200, so B has
// read and cached it), A ends the session, and B is polled with the same
// request, back to back, until it answers 401. What is recorded is the
// time from the end of A's answer to the end of B's first 401, and
// whether B's very first request after the end already got 401.
//
// -kind says what the sessions are (see revokeKinds): token, refresh
// families ended by POST /v1/token/revoke and asked about with GET
// /v1/userinfo and an access token (B refuses by its revocation set); or
// cookie, cookie sessions ended by DELETE /v1/session and asked about with
// GET /v1/session (B refuses once Redis has invalidated its client-side
// cache of the session's record).
func revokeLatency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("revoke-latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kindName := fs.String("kind", "token", "what A ends and B is asked about: token (a refresh family: POST /v1/token/revoke, then GET /v1/userinfo with its access token) or cookie (a cookie session: DELETE /v1/session, then GET /v1/session with the cookie)")
	n := fs.Int("n", 1000, "sessions (token families or cookie sessions), each ended once")
	workers := fs.Int("workers", 4, "password grants or logins at once while the sessions are made")
	pgURL := fs.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server: a database sesame_lab_<random> is created on it for the run and dropped after")
	redis := fs.String("redis", defaultRedis, "Redis session store of both nodes: a database of it is claimed (it must be empty, or hold only an earlier lab run's keys) and emptied after the run; empty: sessions in the PostgreSQL database")
	timeout := fs.Duration("timeout", 5*time.Second, "how long B is polled before an iteration counts as never refused")
	bin := fs.String("bin", "", "sesame binary to run (default: this executable)")
	childLog := fs.Bool("child-stderr", false, "copy the sesame binaries' stderr to ours")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kind, ok := revokeKinds[*kindName]
	if !ok {
		return fmt.Errorf("revoke-latency: -kind: want token or cookie, got %q", *kindName)
	}
	if *n < 1 || *workers < 1 || *timeout <= 0 {
		return errors.New("revoke-latency: -n, -workers and -timeout must be positive")
	}

	var undo stops
	defer undo.run()
	var nodeLog io.Writer
	if *childLog {
		nodeLog = stderr
	}
	c, err := startCluster(ctx, &undo, 2, *pgURL, *redis, *bin, []string{"--hash-concurrency", "2"}, nodeLog, stderr)
	if err != nil {
		return err
	}
	a, b := c.nodes[0], c.nodes[1]
	if err := register(ctx, a.base); err != nil {
		return err
	}
	start := time.Now()
	// A password grant or a login hashes the password; on a loaded
	// machine the hashing queue may answer 503, which is retried.
	var busy atomic.Int64
	sessions, err := inParallel(*n, *workers, func(int) (carrier, error) {
		return retryBusy(ctx, 10, func() (carrier, error) {
			c, err := kind.make(ctx, a.base)
			if _, ok := errors.AsType[*busyError](err); ok {
				busy.Add(1)
			}
			return c, err
		})
	})
	if err != nil {
		return fmt.Errorf("making %s: %w", kind.plural, err)
	}
	fmt.Fprintf(stderr, "%d %s in %v (%d answers 503, retried)\n", len(sessions), kind.plural, time.Since(start).Round(time.Millisecond), busy.Load())
	res, err := measureRevokes(ctx, kind, a.base, b.base, sessions, *timeout)
	if err != nil {
		return err
	}
	res.report(stdout, kind, *timeout, *redis)
	return nil
}

// revokeKind is one -kind of revoke-latency: how a session is made on
// node A and carried, and the words of the report.
type revokeKind struct {
	name     string // the -kind value
	one      string // what a session is called: "family"
	plural   string // and more than one: "families"
	end      string // what ending one is called: "revoke"
	endReq   string // the request that ends one: "POST /v1/token/revoke"
	endCode  int    // its status when it succeeds
	probeReq string // the request B is asked: "GET /v1/userinfo"
	carried  string // what that request carries: "access token"

	// make starts a session at base, as the lab's account.
	make func(ctx context.Context, base string) (carrier, error)
}

// revokeKinds are the values of revoke-latency's -kind.
var revokeKinds = map[string]revokeKind{
	"token": {
		name: "token", one: "family", plural: "families", end: "revoke",
		endReq: "POST /v1/token/revoke", endCode: http.StatusOK,
		probeReq: "GET /v1/userinfo", carried: "access token",
		make: func(ctx context.Context, base string) (carrier, error) {
			t, _, err := passwordGrant(ctx, base)
			return tokenCarrier(t), err
		},
	},
	"cookie": {
		name: "cookie", one: "session", plural: "sessions", end: "logout",
		endReq: "DELETE /v1/session", endCode: http.StatusNoContent,
		probeReq: "GET /v1/session", carried: "cookie",
		make: func(ctx context.Context, base string) (carrier, error) {
			cookie, err := logIn(ctx, base)
			return cookieCarrier(cookie), err
		},
	},
}

// carrier is one session as revoke-latency handles it: probe is the
// request that asks the node at base whether the session is live (200)
// or not (401), and end is the request that ends it there.
type carrier struct {
	probe, end func(ctx context.Context, base string) (*http.Request, error)
}

// tokenCarrier is a refresh family: asked about with GET /v1/userinfo and
// its access token, ended by POST /v1/token/revoke with its refresh token.
func tokenCarrier(t tokens) carrier {
	return carrier{
		probe: func(ctx context.Context, base string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/userinfo", nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+t.AccessToken)
			}
			return req, err
		},
		end: func(ctx context.Context, base string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/token/revoke",
				strings.NewReader(url.Values{"token": {t.RefreshToken}}.Encode()))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			return req, err
		},
	}
}

// cookieCarrier is a cookie session, cookie being a Cookie header value:
// asked about with GET /v1/session, ended by DELETE /v1/session. The
// cookie is sent by hand (it is Secure, and the lab speaks plain HTTP),
// and the logout carries neither Origin nor Sec-Fetch-Site, so it is not
// cross-origin (API.md).
func cookieCarrier(cookie string) carrier {
	req := func(method string) func(context.Context, string) (*http.Request, error) {
		return func(ctx context.Context, base string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, method, base+"/v1/session", nil)
			if err == nil {
				req.Header.Set("Cookie", cookie)
			}
			return req, err
		}
	}
	return carrier{probe: req(http.MethodGet), end: req(http.MethodDelete)}
}

// cluster is nodes of sesame serve that share one PostgreSQL database and
// (unless redis is empty) one Redis database, with one master key: what
// the CLI needs to act on the same data (sesame keys rotate, user add).
type cluster struct {
	nodes []process
	bin   string   // the sesame binary the nodes run
	db    string   // --db of every node: the run's PostgreSQL database
	redis string   // --session-store of every node, or "" (sessions in db)
	env   []string // SESAME_MASTER_KEY=...
}

// cli runs "sesame ARGS --db ... --session-store ..." against the
// cluster's stores, with its master key and a data directory of its own,
// and returns its combined output.
func (c cluster) cli(ctx context.Context, stdin string, args ...string) (string, error) {
	dir, err := os.MkdirTemp("", "sesame-lab-cli-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	args = append(args, "--data-dir", dir, "--db", c.db)
	if c.redis != "" {
		args = append(args, "--session-store", c.redis)
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("sesame %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// startCluster creates the run's PostgreSQL database, claims the Redis
// database, and starts n nodes on both, with one master key, the issuer
// http://sesame-bench.test and flags, their stderr going to childLog (or
// nowhere); undo gets what drops, empties and stops them again.
func startCluster(ctx context.Context, undo *stops, n int, pgURL, redis, bin string, flags []string, childLog, stderr io.Writer) (cluster, error) {
	db, drop, err := createBenchDB(ctx, pgURL, stderr)
	if err != nil {
		return cluster{}, err
	}
	undo.add(drop)
	store := "postgres" // -redis '': sessions in the PostgreSQL database too
	if redis != "" {
		claim, err := claimRedis(ctx, redis, stderr)
		if err != nil {
			return cluster{}, err
		}
		undo.add(claim.release)
		redis, store = claim.url, "redis"
	}
	path, cleanup, err := sesameBinary(ctx, bin, stderr)
	if err != nil {
		return cluster{}, err
	}
	undo.add(cleanup)
	key := make([]byte, 32)
	rand.Read(key)
	c := cluster{bin: path, db: db, redis: redis, env: []string{"SESAME_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)}}
	srv := sesameServer{
		bin: path, store: store, redis: redis,
		flags: append(append([]string{"--db", db, "--issuer", "http://sesame-bench.test"}, unthrottled...), flags...),
		env:   c.env, childLog: childLog,
	}
	for i := range n {
		p, stop, err := srv.start(ctx) // one after the other: the first migrates the schema
		if err != nil {
			return cluster{}, err
		}
		undo.add(stop)
		c.nodes = append(c.nodes, p)
		fmt.Fprintf(stderr, "node %c %s (pid %d)\n", 'A'+i, p.base, p.pid)
	}
	return c, nil
}

// revokeResult is what measureRevokes saw.
type revokeResult struct {
	lat       []time.Duration // A's answer to the end → B's first 401, sorted
	endTook   []time.Duration // A's answer to the end itself, sorted
	firstPoll int             // iterations where B's first request after the end got 401
	polls     int             // requests to B after ends, in all
	never     int             // iterations where B never answered 401 within the timeout
}

// measureRevokes runs revoke-latency's iterations, one per session, in
// order: B must answer the probe 200, A ends the session, then B is probed
// back to back until it answers 401, for at most timeout.
func measureRevokes(ctx context.Context, kind revokeKind, a, b string, sessions []carrier, timeout time.Duration) (revokeResult, error) {
	// One keep-alive connection to each node.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	do := func(mk func(context.Context, string) (*http.Request, error), base string) (int, error) {
		req, err := mk(ctx, base)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var r revokeResult
	for i, s := range sessions {
		if code, err := do(s.probe, b); err != nil || code != http.StatusOK {
			return r, fmt.Errorf("%s %d: B before the %s: %d %v", kind.one, i, kind.end, code, err)
		}
		t0 := time.Now()
		code, err := do(s.end, a)
		done := time.Now()
		if err != nil {
			return r, fmt.Errorf("%s %d: %s on A: %w", kind.one, i, kind.end, err)
		}
		if code != kind.endCode {
			return r, fmt.Errorf("%s %d: %s on A: %d", kind.one, i, kind.end, code)
		}
		r.endTook = append(r.endTook, done.Sub(t0))
		for k := 0; ; k++ {
			code, err := do(s.probe, b)
			if err != nil {
				return r, fmt.Errorf("%s %d: B after the %s: %w", kind.one, i, kind.end, err)
			}
			r.polls++
			if code == http.StatusUnauthorized {
				r.lat = append(r.lat, time.Since(done))
				if k == 0 {
					r.firstPoll++
				}
				break
			}
			if code != http.StatusOK {
				return r, fmt.Errorf("%s %d: B after the %s: %d", kind.one, i, kind.end, code)
			}
			if time.Since(done) > timeout {
				r.never++
				r.lat = append(r.lat, time.Since(done))
				break
			}
		}
	}
	slices.Sort(r.lat)
	slices.Sort(r.endTook)
	return r, nil
}

// report writes r as Markdown: the percentiles of both latencies and the
// goal of p99 ≤ 100 ms with no session left unrefused.
func (r revokeResult) report(w io.Writer, kind revokeKind, timeout time.Duration, redis string) {
	q := func(xs []time.Duration, p float64) time.Duration { return xs[int(p*float64(len(xs)-1)+0.5)] }
	row := func(name string, xs []time.Duration) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, ms(q(xs, .5)), ms(q(xs, .9)), ms(q(xs, .99)), ms(xs[len(xs)-1]))
	}
	n := len(r.lat)
	if redis == "" {
		redis = "postgres (the same database)"
	}
	fmt.Fprintf(w, "### revoke-latency -kind %s: %s on node A (%s) → first 401 on node B (%s), %d %s\n\n",
		kind.name, kind.end, kind.endReq, kind.probeReq, n, kind.plural)
	fmt.Fprintf(w, "| | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n")
	row("A's answer → B's first 401", r.lat)
	row("the "+kind.end+" on A itself", r.endTook)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "B's first request after the %s already got 401 in %d of %d iterations (%.1f%%); %d requests to B in all after %ss; %d never got 401 within %v.\n\n",
		kind.end, r.firstPoll, n, 100*float64(r.firstPoll)/float64(n), r.polls, kind.end, r.never, timeout)
	fmt.Fprintf(w, "Goal p99 ≤ 100 ms: %s. Both nodes are the real binary (sesame serve --db postgres (a database of the run's own) --session-store %s --issuer http://sesame-bench.test --hash-concurrency 2, one SESAME_MASTER_KEY); every %s had been answered 200 by B just before its %s. NumCPU %d.\n\n",
		map[bool]string{true: "**met**", false: "**missed**"}[q(r.lat, .99) <= 100*time.Millisecond && r.never == 0], redis, kind.carried, kind.end, runtime.NumCPU())
}

// inParallel returns f(i) for i in [0, n), workers at a time, and the
// first error of each worker (which then stops).
func inParallel[T any](n, workers int, f func(i int) (T, error)) ([]T, error) {
	out := make([]T, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				v, err := f(i)
				if err != nil {
					errs[w] = fmt.Errorf("%d: %w", i, err)
					return
				}
				out[i] = v
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// createBenchDB creates the database sesame_lab_<random> on the
// PostgreSQL server of admin and returns its URL and a function that drops
// it (WITH (FORCE), in case a node still holds a connection).
func createBenchDB(ctx context.Context, admin string, stderr io.Writer) (string, func(), error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("-pg: %w", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("-pg: %w", err)
	}
	conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "sesame_lab_" + hex.EncodeToString(b)
	exec := func(ctx context.Context, sql string) error {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	fmt.Fprintf(stderr, "created database %s\n", name)
	u.Path = "/" + name
	return u.String(), func() {
		if err := exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(stderr, "lab: dropping database %s: %v\n", name, err)
			return
		}
		fmt.Fprintf(stderr, "dropped database %s\n", name)
	}, nil
}
