package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
)

// sessionLoad is the session-load command.
func sessionLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("session-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf loadFlags
	lf.register(fs, "memory", 32)
	serve := fs.Bool("serve", false, "only start the two servers, print their URLs and the cookie, and wait for Ctrl-C")
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
	goal := map[string]float64{"memory": 0.85, "sqlite": 0.6}[lf.store]

	var undo stops
	defer undo.run()
	srv, cleanup, err := lf.sesame(ctx, stderr)
	if err != nil {
		return err
	}
	undo.add(cleanup)
	p, stop, err := srv.start(ctx)
	if err != nil {
		return err
	}
	undo.add(stop)
	cookie, body, err := signIn(ctx, p.base)
	if err != nil {
		return err
	}
	// The bare handler writes the very bytes Sesame answers with: the
	// difference between the two is Sesame's work, not the body's size.
	bp, stop, err := startBare(ctx, body)
	if err != nil {
		return err
	}
	undo.add(stop)
	targets := []target{
		newTarget("bare net/http", bp.base+"/v1/session", bp, "Cookie", cookie),
		newTarget("Sesame", p.base+"/v1/session", p, "Cookie", cookie),
	}
	if *serve {
		for _, t := range targets {
			fmt.Fprintf(stdout, "%s: %s (pid %d)\n", t.name, t.url, t.proc.pid)
		}
		fmt.Fprintf(stdout, "e.g. wrk -t1 -c%d -d%s --latency -H 'Cookie: %s' %s\n", lf.conns, lf.d, cookie, targets[1].url)
		<-ctx.Done()
		return nil
	}

	fmt.Fprintf(stdout, "### session-load: GET /v1/session, store=%s, load=%s, conns=%d, %s × %d rounds\n\n", lf.store, lf.tool, lf.conns, lf.d, lf.rounds)
	sums, err := comparison{targets: targets, load: load, rounds: lf.rounds, d: lf.d, per: "req"}.run(ctx, stdout, stderr)
	if err != nil {
		return err
	}
	goalLine(stdout, "Sesame on "+lf.store, sums[1], goal)
	fmt.Fprintf(stdout, "Both servers are processes of their own: the real binary (sesame serve --session-store %s) and this program's bare mode. NumCPU %d.\n\n", lf.store, runtime.NumCPU())
	return nil
}
