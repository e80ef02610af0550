package lab

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/sesameauth/sesame/password"
)

// login is the login command: the real binary's login throughput, then
// its memory under a burst.
func login(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "sqlite", "Sesame's session store: sqlite (serve's default) or memory")
	d := fs.Duration("duration", 5*time.Second, "length of each throughput run, and of the closed-loop run after each burst")
	rounds := fs.Int("rounds", 3, "rounds of (argon2id, Sesame), and of bursts")
	clients := fs.Int("clients", 2*runtime.NumCPU(), "concurrent login clients in the throughput runs")
	burst := fs.Int("burst", 300, "logins sent at once to the real binary; 0 skips the burst")
	bin := fs.String("bin", "", "sesame binary to run (default: this executable)")
	childLog := fs.Bool("child-stderr", false, "copy the binary's stderr to ours (with GODEBUG=gctrace=1 in a -variant, its GC trace)")
	var variants []string
	fs.Func("variant", "environment, as space-separated K=V, of an extra binary run each burst round, e.g. 'GOMEMLIMIT=160MiB' (repeatable)", func(s string) error {
		variants = append(variants, s)
		return nil
	})
	throughput := fs.Bool("throughput", true, "measure login throughput")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *clients < 1 || *d <= 0 || *burst < 0 {
		return errors.New("login: -rounds, -clients and -duration must be positive, -burst not negative")
	}
	path, cleanup, err := sesameBinary(ctx, *bin, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	// Every login here is for one account from one address.
	srv := sesameServer{bin: path, store: *store, flags: unthrottled}
	if *childLog {
		srv.childLog = stderr
	}
	if *throughput {
		if err := loginThroughput(ctx, srv, *d, *rounds, *clients, stdout, stderr); err != nil {
			return err
		}
	}
	if *burst > 0 {
		b := burstRun{srv: srv, n: *burst, conc: runtime.NumCPU(), steady: *d}
		return b.report(ctx, *rounds, variants, stdout, stderr)
	}
	return nil
}

// loginThroughput compares POST /v1/session to the real binary (201s per
// second, clients at once) with argon2id alone at the same parameters on
// NumCPU goroutines in this process: the hash is the work a login must do,
// so the ratio is what everything else costs.
func loginThroughput(ctx context.Context, srv sesameServer, d time.Duration, rounds, clients int, stdout, stderr io.Writer) error {
	p, stop, err := srv.start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if _, _, err := signIn(ctx, p.base); err != nil {
		return err
	}
	params := password.NewHasher(password.Params{}).Params()
	workers := runtime.NumCPU()
	logins := loginLoad(ctx, p.base, clients, d)

	fmt.Fprintf(stdout, "### login throughput: POST /v1/session, store=%s, %d clients, hash concurrency %d, %s × %d rounds\n\n", srv.store, clients, workers, d, rounds)
	fmt.Fprintf(stdout, "argon2id m=%d KiB, t=%d, p=%d on %d goroutines is the baseline.\n\n", params.Memory, params.Time, params.Threads, workers)
	fmt.Fprintf(stdout, "| round | argon2id hashes/s | CPU/hash | Sesame logins/s | CPU/login | login p50 / p99 | errors | ratio | CPU ratio |\n|---|---|---|---|---|---|---|---|---|\n")
	var raws, rates, ratios, cpuRatios []float64
	for i := range rounds {
		before := processCPU()
		raw, hashes := rawArgon2(ctx, params, workers, d)
		rawCPU := (processCPU() - before) / time.Duration(max(hashes, 1))
		s, err := measure(ctx, func(ctx context.Context, _ target, _ time.Duration) (sample, time.Duration, error) {
			before := processCPU()
			r := logins.run(ctx)
			return fromLoad(r), processCPU() - before, nil
		}, target{proc: p}, d)
		if err != nil {
			return err
		}
		if s.errs > 0 {
			fmt.Fprintf(stderr, "round %d: %d login errors, the first: %s\n", i+1, s.errs, s.firstErr)
		}
		loginCPU := s.server + s.generator
		ratio, cpuRatio := s.rate/raw, float64(rawCPU)/float64(loginCPU)
		raws, rates = append(raws, raw), append(rates, s.rate)
		ratios, cpuRatios = append(ratios, ratio), append(cpuRatios, cpuRatio)
		fmt.Fprintf(stdout, "| %d | %.1f | %s | %.1f | %s | %s / %s | %d | %.2f | %.2f |\n", i+1, raw, ms(rawCPU), s.rate, ms(loginCPU),
			ms(s.p50), ms(s.p99), s.errs, ratio, cpuRatio)
	}
	m := median(ratios)
	fmt.Fprintf(stdout, "| **median** | %.1f | | %.1f | | | | **%.2f** | **%.2f** |\n\n", median(raws), median(rates), m, median(cpuRatios))
	fmt.Fprintf(stdout, "Goal: ratio ≥ 0.90: %s. CPU/hash is this process's CPU time (user + system) per hash; CPU/login is the binary's (/proc/PID/stat) plus the load generator's per 201; CPU ratio is CPU/hash ÷ CPU/login.\n\n", verdict(m, 0.9))
	return nil
}

// loginLoad is clients logging the lab's account in at base, again and
// again, for d.
func loginLoad(ctx context.Context, base string, clients int, d time.Duration) loadSpec {
	creds := fmt.Appendf(nil, `{"email":%q,"password":%q}`, labEmail, labPassword)
	return loadSpec{
		conns: clients, d: d, max: 1_000_000, want: http.StatusCreated,
		newReq: func(int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/session", bytes.NewReader(creds))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		},
	}
}

// rawArgon2 runs argon2id at p on workers goroutines for about d, and
// returns hashes per second and how many it made: each goroutine finishes
// the hash it is in when time is up, and the rate counts the time that
// took.
func rawArgon2(ctx context.Context, p password.Params, workers int, d time.Duration) (rate float64, n int) {
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	pw, salt := []byte(labPassword), make([]byte, p.SaltLen)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
				count.Add(1)
			}
		})
	}
	wg.Wait()
	n = int(count.Load())
	return float64(n) / time.Since(start).Seconds(), n
}

// envName names a -variant environment in the report.
func envName(env string) string {
	if env == "" {
		return "default"
	}
	return env
}
