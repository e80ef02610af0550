package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/password"
)

// The lab's one account.
const (
	labEmail    = "lab@example.com"
	labPassword = "correct horse battery staple"
)

// login is the login command: throughput in this process, then the
// memory of the real binary under a burst.
func login(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "sqlite", "Sesame's session store: sqlite (serve's default) or memory")
	d := fs.Duration("duration", 5*time.Second, "length of each throughput run, and of the closed-loop run after each burst")
	rounds := fs.Int("rounds", 3, "rounds of (argon2id, Sesame), and of bursts")
	clients := fs.Int("clients", 2*runtime.NumCPU(), "concurrent login clients in the throughput runs")
	burst := fs.Int("burst", 300, "logins sent at once to the real binary; 0 skips the burst")
	bin := fs.String("bin", "", "sesame binary for the burst (default: go build ./cmd/sesame into a temporary directory)")
	childLog := fs.Bool("child-stderr", false, "copy the binary's stderr to ours (with GODEBUG=gctrace=1 in a -variant, its GC trace)")
	var variants []string
	fs.Func("variant", "environment, as space-separated K=V, of an extra binary run each burst round, e.g. 'GOMEMLIMIT=160MiB' (repeatable)", func(s string) error {
		variants = append(variants, s)
		return nil
	})
	throughput := fs.Bool("throughput", true, "measure login throughput")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the throughput rounds (this whole process) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *clients < 1 || *d <= 0 || *burst < 0 {
		return errors.New("login: -rounds, -clients and -duration must be positive, -burst not negative")
	}
	if *throughput {
		stopProfile, err := startProfile(*cpuProfile)
		if err != nil {
			return err
		}
		err = loginThroughput(ctx, *store, *d, *rounds, *clients, stdout, stderr)
		stopProfile()
		if err != nil {
			return err
		}
	}
	if *burst > 0 {
		b := burstRun{store: *store, n: *burst, bin: *bin, conc: runtime.NumCPU(), steady: *d}
		if *childLog {
			b.childLog = stderr
		}
		return b.report(ctx, *rounds, variants, stdout, stderr)
	}
	return nil
}

// loginThroughput compares POST /v1/session (201s per second, clients at
// once) with argon2id alone at the same parameters on NumCPU goroutines:
// the hash is the work a login must do, so the ratio is what everything
// else costs.
func loginThroughput(ctx context.Context, store string, d time.Duration, rounds, clients int, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "sesame-lab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// One account and one address make every attempt here: the throttle
	// is raised out of the way, as serve's --login-account-limit and
	// --login-address-limit would.
	unthrottled := func(c *sesame.Config) { c.AccountMaxFailures, c.AddressMaxFailures = 1_000_000, 1_000_000 }
	h, closeStores, err := newSesame(ctx, dir, store, log, unthrottled)
	if err != nil {
		return err
	}
	defer closeStores()
	base, stop, err := startServer(h, log)
	if err != nil {
		return err
	}
	defer stop()
	if _, _, err := signIn(ctx, base, labEmail, labPassword); err != nil {
		return err
	}
	p := password.NewHasher(password.Params{}).Params()
	workers := runtime.NumCPU()
	logins := loginLoad(ctx, base, clients, d)

	fmt.Fprintf(stdout, "### login throughput: POST /v1/session, store=%s, %d clients, hash concurrency %d, %s × %d rounds\n\n", store, clients, workers, d, rounds)
	fmt.Fprintf(stdout, "argon2id m=%d KiB, t=%d, p=%d on %d goroutines is the baseline.\n\n", p.Memory, p.Time, p.Threads, workers)
	fmt.Fprintf(stdout, "| round | argon2id hashes/s | CPU/hash | Sesame logins/s | CPU/login | login p50 / p99 | errors | ratio | CPU ratio |\n|---|---|---|---|---|---|---|---|---|\n")
	var raws, rates, ratios, cpuRatios []float64
	for i := range rounds {
		before := processCPU()
		raw, hashes := rawArgon2(ctx, p, workers, d)
		rawCPU := (processCPU() - before) / time.Duration(max(hashes, 1))
		before = processCPU()
		r := logins.run(ctx)
		loginCPU := (processCPU() - before) / time.Duration(max(r.ok, 1))
		if r.errs > 0 {
			fmt.Fprintf(stderr, "round %d: %d login errors, the first: %s\n", i+1, r.errs, r.firstErr)
		}
		ratio, cpuRatio := r.rate()/raw, float64(rawCPU)/float64(loginCPU)
		raws, rates = append(raws, raw), append(rates, r.rate())
		ratios, cpuRatios = append(ratios, ratio), append(cpuRatios, cpuRatio)
		fmt.Fprintf(stdout, "| %d | %.1f | %s | %.1f | %s | %s / %s | %d | %.2f | %.2f |\n", i+1, raw, ms(rawCPU), r.rate(), ms(loginCPU),
			ms(r.quantile(0.5)), ms(r.quantile(0.99)), r.errs, ratio, cpuRatio)
	}
	m := median(ratios)
	fmt.Fprintf(stdout, "| **median** | %.1f | | %.1f | | | | **%.2f** | **%.2f** |\n\n", median(raws), median(rates), m, median(cpuRatios))
	fmt.Fprintf(stdout, "Goal: ratio ≥ 0.90: %s. CPU is this process's (user + system) per hash or per 201, the load generator included; CPU ratio is CPU/hash ÷ CPU/login.\n\n", verdict(m, 0.9))
	return nil
}

// loginLoad is clients logging the lab's account in at base, again and
// again, for d.
func loginLoad(ctx context.Context, base string, clients int, d time.Duration) loadSpec {
	creds := fmt.Appendf(nil, `{"email":%q,"password":%q}`, labEmail, labPassword)
	return loadSpec{
		conns: clients, d: d, max: 1_000_000, want: http.StatusCreated,
		newReq: func() (*http.Request, error) {
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
