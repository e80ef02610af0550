package main

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
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// revokeLatency is the revoke-latency command: two sesame serve processes
// (nodes A and B) on one PostgreSQL database (created for the run and
// dropped after it) and one Redis database (FLUSHDBed before and after),
// with the same SESAME_MASTER_KEY and --issuer. For each of -n token
// families, made up front: B answers GET /v1/userinfo with the family's
// access token (200, so B has verified and cached it), A revokes the
// family (POST /v1/token/revoke with its refresh token), and B is polled
// with the access token, back to back, until it answers 401. What is
// recorded is the time from the end of A's answer to the end of B's
// first 401, and whether B's very first request after the revoke already
// got 401.
func revokeLatency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("revoke-latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1000, "token families, each revoked once")
	workers := fs.Int("workers", 4, "password grants at once while the families are made")
	pgURL := fs.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server: a database sesame_bench_<random> is created on it for the run and dropped after")
	redis := fs.String("redis", defaultRedis, "Redis session store of both nodes: its database is FLUSHDBed before and after the run")
	timeout := fs.Duration("timeout", 5*time.Second, "how long B is polled before an iteration counts as never revoked")
	bin := fs.String("bin", "", "sesame binary to run (default: go build ./cmd/sesame into a temporary directory)")
	childLog := fs.Bool("child-stderr", false, "copy the sesame binaries' stderr to ours")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *workers < 1 || *timeout <= 0 {
		return errors.New("revoke-latency: -n, -workers and -timeout must be positive")
	}

	var undo stops
	defer undo.run()
	db, drop, err := createBenchDB(ctx, *pgURL, stderr)
	if err != nil {
		return err
	}
	undo.add(drop)
	if err := flushRedis(ctx, *redis); err != nil {
		return err
	}
	undo.add(func() {
		if err := flushRedis(context.Background(), *redis); err != nil {
			fmt.Fprintln(stderr, "sesame-lab:", err)
		}
	})
	path, cleanup, err := sesameBinary(ctx, *bin, stderr)
	if err != nil {
		return err
	}
	undo.add(cleanup)
	key := make([]byte, 32)
	rand.Read(key)
	srv := sesameServer{
		bin: path, store: "redis", redis: *redis,
		flags: append([]string{"--db", db, "--issuer", "http://sesame-bench.test", "--hash-concurrency", "2"}, unthrottled...),
		env:   []string{"SESAME_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)},
	}
	if *childLog {
		srv.childLog = stderr
	}
	var nodes [2]process
	for i := range nodes {
		p, stop, err := srv.start(ctx) // one after the other: A migrates the schema first
		if err != nil {
			return err
		}
		undo.add(stop)
		nodes[i] = p
	}
	a, b := nodes[0], nodes[1]
	fmt.Fprintf(stderr, "node A %s (pid %d), node B %s (pid %d)\n", a.base, a.pid, b.base, b.pid)
	if err := register(ctx, a.base); err != nil {
		return err
	}
	start := time.Now()
	fams, err := mintFamilies(ctx, a.base, *n, *workers)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d families in %v\n", len(fams), time.Since(start).Round(time.Millisecond))

	// One keep-alive connection to each node.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	userinfo := func(base, access string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/userinfo", nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var (
		lat              []time.Duration // revoke answered → B's first 401
		revokeTook       []time.Duration // A's answer to the revoke
		firstPoll, polls int
		never            int
	)
	for i, f := range fams {
		if code, err := userinfo(b.base, f.AccessToken); err != nil || code != http.StatusOK {
			return fmt.Errorf("family %d: B before the revoke: %d %v", i, code, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/v1/token/revoke",
			strings.NewReader(url.Values{"token": {f.RefreshToken}}.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("family %d: revoke on A: %w", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done := time.Now()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("family %d: revoke on A: %s", i, resp.Status)
		}
		revokeTook = append(revokeTook, done.Sub(t0))
		for k := 0; ; k++ {
			code, err := userinfo(b.base, f.AccessToken)
			if err != nil {
				return fmt.Errorf("family %d: B after the revoke: %w", i, err)
			}
			polls++
			if code == http.StatusUnauthorized {
				lat = append(lat, time.Since(done))
				if k == 0 {
					firstPoll++
				}
				break
			}
			if code != http.StatusOK {
				return fmt.Errorf("family %d: B after the revoke: %d", i, code)
			}
			if time.Since(done) > *timeout {
				never++
				lat = append(lat, time.Since(done))
				break
			}
		}
	}
	slices.Sort(lat)
	slices.Sort(revokeTook)
	q := func(xs []time.Duration, p float64) time.Duration { return xs[int(p*float64(len(xs)-1)+0.5)] }
	fmt.Fprintf(stdout, "### revoke-latency: revoke on node A → first 401 on node B, %d families\n\n", len(lat))
	fmt.Fprintf(stdout, "| | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n")
	fmt.Fprintf(stdout, "| A's answer → B's first 401 | %s | %s | %s | %s |\n", ms(q(lat, .5)), ms(q(lat, .9)), ms(q(lat, .99)), ms(lat[len(lat)-1]))
	fmt.Fprintf(stdout, "| the revoke on A itself | %s | %s | %s | %s |\n\n", ms(q(revokeTook, .5)), ms(q(revokeTook, .9)), ms(q(revokeTook, .99)), ms(revokeTook[len(revokeTook)-1]))
	fmt.Fprintf(stdout, "B's first request after the revoke already got 401 in %d of %d iterations (%.1f%%); %d requests to B in all after revokes; %d never got 401 within %v.\n\n",
		firstPoll, len(lat), 100*float64(firstPoll)/float64(len(lat)), polls, never, *timeout)
	fmt.Fprintf(stdout, "Goal p99 ≤ 100 ms: %s. Both nodes are the real binary (sesame serve --db postgres (a database of the run's own) --session-store %s --issuer http://sesame-bench.test --hash-concurrency 2, one SESAME_MASTER_KEY); every access token had been answered 200 by B just before its revoke. NumCPU %d.\n\n",
		map[bool]string{true: "**met**", false: "**missed**"}[q(lat, .99) <= 100*time.Millisecond && never == 0], *redis, runtime.NumCPU())
	return nil
}

// mintFamilies makes n refresh families for the lab's account at base, one
// password grant each, workers at a time.
func mintFamilies(ctx context.Context, base string, n, workers int) ([]tokens, error) {
	out := make([]tokens, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				t, _, err := passwordGrant(ctx, base)
				if err != nil {
					errs[w] = fmt.Errorf("family %d: %w", i, err)
					return
				}
				out[i] = t
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// createBenchDB creates the database sesame_bench_<random> on the
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
	name := "sesame_bench_" + hex.EncodeToString(b)
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
			fmt.Fprintf(stderr, "sesame-lab: dropping database %s: %v\n", name, err)
			return
		}
		fmt.Fprintf(stderr, "dropped database %s\n", name)
	}, nil
}
