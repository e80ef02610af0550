package lab

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"
)

// refreshLoad is the refresh command: refresh grants (POST /v1/token,
// grant_type=refresh_token) as fast as -conns clients can chain them, each
// client on a refresh family of its own, sending the refresh token the
// last answer gave it; against a bare handler that answers every POST with
// a token response of the same bytes, which the clients decode the same
// way.
func refreshLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("refresh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf loadFlags
	lf.register(fs, "sqlite", 8)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := lf.check(); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	if lf.tool != "go" {
		return fmt.Errorf("refresh: -load: only go can chain refresh tokens")
	}

	var undo stops
	defer undo.run()
	srv, cleanup, err := lf.sesame(ctx, stderr, unthrottled...)
	if err != nil {
		return err
	}
	undo.add(cleanup)
	p, stop, err := srv.start(ctx)
	if err != nil {
		return err
	}
	undo.add(stop)
	if err := register(ctx, p.base); err != nil {
		return err
	}
	first, body, err := passwordGrant(ctx, p.base)
	if err != nil {
		return err
	}
	bp, stop, err := startBare(ctx, body)
	if err != nil {
		return err
	}
	undo.add(stop)
	targets := []target{
		newTarget("bare net/http", bp.base+"/v1/token", bp, ""),
		newTarget("Sesame", p.base+"/v1/token", p, ""),
	}

	// chains[target][w] is the refresh token client w sends next; "" once
	// its chain broke (a request failed, so the client may not know the
	// family's current token), and prepare starts a new family for it,
	// outside what is measured.
	chains := map[string][]string{}
	for _, t := range targets {
		chains[t.name] = make([]string, lf.conns)
	}
	prepare := func(ctx context.Context, t target) error {
		for w, rt := range chains[t.name] {
			if rt != "" {
				continue
			}
			if t.proc == bp {
				chains[t.name][w] = first.RefreshToken // the bare handler accepts anything
				continue
			}
			tk, _, err := passwordGrant(ctx, p.base)
			if err != nil {
				return err
			}
			chains[t.name][w] = tk.RefreshToken
		}
		return nil
	}
	load := func(ctx context.Context, t target, d time.Duration) (sample, time.Duration, error) {
		chain := chains[t.name]
		before := processCPU()
		r := loadSpec{
			conns: lf.conns, d: d, max: lf.maxReq, want: http.StatusOK,
			newReq: func(w int) (*http.Request, error) {
				if chain[w] == "" {
					return nil, nil
				}
				form := refreshForm(chain[w])
				chain[w] = ""
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(form))
				if err == nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				return req, err
			},
			got: func(w int, body []byte) error {
				tk, err := decodeTokens(body)
				chain[w] = tk.RefreshToken
				return err
			},
		}.run(ctx)
		return fromLoad(r), processCPU() - before, nil
	}

	fmt.Fprintf(stdout, "### refresh: POST /v1/token grant_type=refresh_token, store=%s, %d chains, %s × %d rounds\n\n", lf.store, lf.conns, lf.d, lf.rounds)
	sums, err := comparison{targets: targets, load: load, prepare: prepare, rounds: lf.rounds, d: lf.d, per: "refresh"}.run(ctx, stdout, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Sesame: %.0f refreshes/s, %s of server CPU per refresh (median), %.2f of the bare handler's rate, CPU ratio %.2f. No goal is set. The servers are processes of their own: the real binary (sesame serve, session store %s) and this program's bare mode. NumCPU %d.\n\n",
		sums[1].rate, us(sums[1].server), sums[1].ratio, sums[1].cpuRatio, lf.store, runtime.NumCPU())
	return nil
}
