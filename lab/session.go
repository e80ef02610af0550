package lab

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
)

// sessionLoad is the session-load command.
func sessionLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("session-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf loadFlags
	lf.register(fs, "memory", 32)
	also := fs.String("also", "", "more session stores to measure in the same run, comma-separated (e.g. -store redis -also memory): a Sesame server each, interleaved with the others")
	serve := fs.Bool("serve", false, "only start the two servers, print their URLs and the cookie, and wait for Ctrl-C")
	pgAdmin := fs.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server of store postgres: a database sesame_lab_<random> is created on it for the run and dropped after")
	withHeaders := fs.Bool("headers-baseline", true, "also measure a bare handler that sends the headers Sesame's answer carries (its security headers): the part of the gap that the contract's headers cost any server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lf.check(); err != nil {
		return fmt.Errorf("session-load: %w", err)
	}
	load, err := lf.loader()
	if err != nil {
		return err
	}
	// Issue 8's goals on the embedded default, memory and PostgreSQL.
	goals := map[string]float64{"memory": 0.9, "sqlite": 0.85, "postgres": 0.8, "redis": 0.7}
	stores := []string{lf.store}
	if *also != "" {
		stores = append(stores, strings.Split(*also, ",")...)
	}
	for _, st := range stores {
		if _, ok := goals[st]; !ok {
			return fmt.Errorf("session-load: want memory, sqlite, postgres or redis, got %q", st)
		}
	}
	hasRedis := slices.Contains(stores, "redis")

	var undo stops
	defer undo.run()
	if hasRedis {
		// Claimed first, so it is emptied last: after the server has stopped.
		claim, err := claimRedis(ctx, lf.redis, stderr)
		if err != nil {
			return err
		}
		undo.add(claim.release)
		lf.redis = claim.url
	}
	srv, cleanup, err := lf.sesame(ctx, stderr)
	if err != nil {
		return err
	}
	undo.add(cleanup)
	if slices.Contains(stores, "postgres") {
		// Users, keys and sessions in a database of the run's own.
		pg, drop, err := createBenchDB(ctx, *pgAdmin, stderr)
		if err != nil {
			return err
		}
		undo.add(drop)
		srv.pg = pg
	}
	// One Sesame server per store, each with a session of its own; the
	// bare handler writes the first one's bytes.
	var targets []target
	var bare []byte
	var headers http.Header
	for _, st := range stores {
		srv.store = st
		p, stop, err := srv.start(ctx)
		if err != nil {
			return err
		}
		undo.add(stop)
		cookie, body, err := signIn(ctx, p.base)
		if err != nil {
			return err
		}
		if bare == nil {
			bare = body
			h, _, err := getWithHeaders(ctx, p.base+"/v1/session", "Cookie", cookie)
			if err != nil {
				return err
			}
			headers = fixedHeaders(h)
		}
		name := "Sesame"
		if len(stores) > 1 {
			name = "Sesame, " + st
		}
		targets = append(targets, newTarget(name, p.base+"/v1/session", p, "Cookie", cookie))
	}
	// The bare handler writes the very bytes Sesame answers with: the
	// difference between the two is Sesame's work, not the body's size.
	bp, stop, err := startBare(ctx, bare)
	if err != nil {
		return err
	}
	undo.add(stop)
	baselines := []target{newTarget("bare net/http", bp.base+"/v1/session", bp, "Cookie", targets[0].values...)}
	if *withHeaders {
		hp, stop, err := startBareWithHeaders(ctx, bare, headers)
		if err != nil {
			return err
		}
		undo.add(stop)
		baselines = append(baselines, newTarget("bare, Sesame's headers", hp.base+"/v1/session", hp, "Cookie", targets[0].values...))
	}
	targets = append(baselines, targets...)
	if *serve {
		for _, t := range targets {
			fmt.Fprintf(stdout, "%s: %s (pid %d)\n", t.name, t.url, t.proc.pid)
		}
		fmt.Fprintf(stdout, "e.g. wrk -t1 -c%d -d%s --latency -H 'Cookie: %s' %s\n", lf.conns, lf.d, targets[1].values[0], targets[1].url)
		<-ctx.Done()
		return nil
	}

	fmt.Fprintf(stdout, "### session-load: GET /v1/session, store=%s, load=%s, conns=%d, %s × %d rounds\n\n", strings.Join(stores, "+"), lf.tool, lf.conns, lf.d, lf.rounds)
	sums, err := comparison{targets: targets, load: load, rounds: lf.rounds, d: lf.d, per: "req"}.run(ctx, stdout, stderr)
	if err != nil {
		return err
	}
	for i, st := range stores {
		goalLine(stdout, "Sesame on "+st, sums[i+len(baselines)], goals[st])
	}
	if *withHeaders {
		fmt.Fprintf(stdout, "The second baseline is the bare handler sending the %d headers Sesame's answer carries besides Content-Type (%s): what those headers cost any server, so that what remains between it and Sesame is Sesame's own work.\n\n", len(headers), strings.Join(slices.Sorted(maps.Keys(headers)), ", "))
	}
	fmt.Fprintf(stdout, "Every server is a process of its own: the real binary (sesame serve, session store %s; redis is %s) and this program's bare mode. NumCPU %d.\n\n", strings.Join(stores, ", "), lf.redis, runtime.NumCPU())
	return nil
}
