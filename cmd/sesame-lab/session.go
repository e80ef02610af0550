package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sesameauth/sesame"
)

// sample is one load run against one target, as the report shows it.
type sample struct {
	rate     float64 // ok answers per second
	p50, p99 time.Duration
	ok, errs int
	firstErr string
	cpu      time.Duration // this process's CPU time per ok answer; see withCPU
}

// target is a URL to load, with the cookie every request carries.
type target struct {
	name   string
	url    string
	cookie string // a Cookie header value, or empty
}

// sessionLoad is the session-load command.
func sessionLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("session-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "memory", "Sesame's session store: memory or sqlite")
	tool := fs.String("load", "go", "load generator: go (in this process) or wrk (Debian's wrk, one thread)")
	d := fs.Duration("duration", 5*time.Second, "length of each load run")
	conns := fs.Int("conns", 32, "keep-alive connections")
	rounds := fs.Int("rounds", 3, "rounds of (bare, Sesame[, Sesame with user cache])")
	maxReq := fs.Int("max-requests", 2_000_000, "most requests one Go load run sends")
	userCache := fs.Duration("user-cache", 0, "experiment: also load a Sesame whose user lookups go through a read-through cache of this TTL")
	serve := fs.Bool("serve", false, "only start the servers, print their URLs and the cookie, and wait for Ctrl-C")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured rounds (this whole process) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *conns < 1 || *rounds < 1 || *d <= 0 || *maxReq < 1 || *userCache < 0 {
		return errors.New("session-load: -conns, -rounds, -duration and -max-requests must be positive")
	}
	goal := map[string]float64{"memory": 0.85, "sqlite": 0.6}[*store]
	if goal == 0 {
		return fmt.Errorf("-store: want memory or sqlite, got %q", *store)
	}

	log := slog.New(slog.NewTextHandler(stderr, nil)) // serve's default: text, info
	sesameT, body, stop, err := startSesame(ctx, "Sesame", *store, log, nil)
	if err != nil {
		return err
	}
	defer stop()
	// The bare handler writes the very bytes Sesame answers with: the
	// difference between the two is Sesame's work, not the body's size.
	bareURL, stopBare, err := startServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}), log)
	if err != nil {
		return err
	}
	defer stopBare()
	targets := []target{{name: "bare net/http", url: bareURL + "/v1/session"}, sesameT}
	if *userCache > 0 {
		ttl := *userCache
		cached, _, stop, err := startSesame(ctx, fmt.Sprintf("Sesame, user cache %s", ttl), *store, log, func(c *sesame.Config) {
			c.Users = newCachedUsers(c.Users, ttl)
		})
		if err != nil {
			return err
		}
		defer stop()
		targets = append(targets, cached)
	}

	if *serve {
		for _, t := range targets {
			fmt.Fprintf(stdout, "%s: %s\n", t.name, t.url)
		}
		fmt.Fprintf(stdout, "e.g. wrk -t1 -c%d -d%s --latency -H 'Cookie: %s' %s\n", *conns, *d, sesameT.cookie, sesameT.url)
		<-ctx.Done()
		return nil
	}

	var measure func(context.Context, target, time.Duration) (sample, error)
	switch *tool {
	case "go":
		measure = func(ctx context.Context, t target, d time.Duration) (sample, error) {
			return goLoad(ctx, t, *conns, d, *maxReq), nil
		}
	case "wrk":
		measure = func(ctx context.Context, t target, d time.Duration) (sample, error) {
			return wrkLoad(ctx, t, *conns, d)
		}
	default:
		return fmt.Errorf("-load: want go or wrk, got %q", *tool)
	}

	// A short run at each first, unrecorded: connections, caches and the
	// heap settle before anything counts.
	for _, t := range targets {
		if _, err := measure(ctx, t, time.Second); err != nil {
			return err
		}
	}
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()

	fmt.Fprintf(stdout, "### session-load: GET /v1/session, store=%s, load=%s, conns=%d, %s × %d rounds\n\n", *store, *tool, *conns, *d, *rounds)
	fmt.Fprintf(stdout, "| round | target | req/s | p50 / p99 | CPU/req | errors | ratio | CPU ratio |\n|---|---|---|---|---|---|---|---|\n")
	rates := make([][]float64, len(targets))
	ratios := make([][]float64, len(targets))
	cpuRatios := make([][]float64, len(targets))
	for i := range *rounds {
		var base sample
		for j, t := range targets {
			s, err := withCPU(func() (sample, error) { return measure(ctx, t, *d) })
			if err != nil {
				return err
			}
			if s.errs > 0 {
				fmt.Fprintf(stderr, "round %d, %s: %d errors, the first: %s\n", i+1, t.name, s.errs, s.firstErr)
			}
			if j == 0 {
				base = s
			}
			r, cr := s.rate/base.rate, float64(base.cpu)/float64(s.cpu)
			rates[j], ratios[j], cpuRatios[j] = append(rates[j], s.rate), append(ratios[j], r), append(cpuRatios[j], cr)
			fmt.Fprintf(stdout, "| %d | %s | %.0f | %s / %s | %s | %d | %.2f | %.2f |\n",
				i+1, t.name, s.rate, ms(s.p50), ms(s.p99), us(s.cpu), s.errs, r, cr)
		}
	}
	for j, t := range targets {
		fmt.Fprintf(stdout, "| **median** | %s | %.0f | | | | **%.2f** | **%.2f** |\n", t.name, median(rates[j]), median(ratios[j]), median(cpuRatios[j]))
	}
	fmt.Fprintf(stdout, "\nGoal: Sesame's ratio ≥ %.2f on %s: %s. Ratio is req/s ÷ bare req/s of the same round. CPU/req is this process's CPU time (user + system) per ok answer", goal, *store, verdict(median(ratios[1]), goal))
	if *tool == "go" {
		fmt.Fprintf(stdout, ", load generator included")
	} else {
		fmt.Fprintf(stdout, " (the servers only: wrk is another process)")
	}
	fmt.Fprintf(stdout, "; CPU ratio is bare CPU/req ÷ CPU/req, the throughput ratio a CPU-bound server would show whatever else the machine runs. GOMAXPROCS %d.\n\n", runtime.GOMAXPROCS(0))
	return nil
}

// startSesame starts Sesame (see newSesame) with a fresh data directory on a
// loopback port, signs one user in, and returns the target GET
// /v1/session with that user's cookie and the body it answers. stop stops
// the server and removes the data.
func startSesame(ctx context.Context, name, store string, log *slog.Logger, tune func(*sesame.Config)) (t target, body []byte, stop func(), err error) {
	dir, err := os.MkdirTemp("", "sesame-lab-")
	if err != nil {
		return target{}, nil, nil, err
	}
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	h, closeStores, err := newSesame(ctx, dir, store, log, tune)
	if err != nil {
		stop()
		return target{}, nil, nil, err
	}
	undo = append(undo, func() { closeStores() })
	url, stopServer, err := startServer(h, log)
	if err != nil {
		stop()
		return target{}, nil, nil, err
	}
	undo = append(undo, stopServer)
	cookie, body, err := signIn(ctx, url, labEmail, labPassword)
	if err != nil {
		stop()
		return target{}, nil, nil, err
	}
	return target{name: name, url: url + "/v1/session", cookie: cookie}, body, stop, nil
}

// startProfile starts a CPU profile of this process into path, unless path
// is empty; stop ends it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// withCPU runs measure and sets the sample's CPU time per ok answer: the
// user and system time of this whole process while it ran.
func withCPU(measure func() (sample, error)) (sample, error) {
	before := processCPU()
	s, err := measure()
	if err == nil && s.ok > 0 {
		s.cpu = (processCPU() - before) / time.Duration(s.ok)
	}
	return s, err
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// goLoad loads t from this process with conns keep-alive connections.
func goLoad(ctx context.Context, t target, conns int, d time.Duration, maxReq int) sample {
	r := loadSpec{
		conns: conns, d: d, max: maxReq, want: http.StatusOK,
		newReq: func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
			if err == nil && t.cookie != "" {
				req.Header.Set("Cookie", t.cookie)
			}
			return req, err
		},
	}.run(ctx)
	return sample{rate: r.rate(), p50: r.quantile(0.50), p99: r.quantile(0.99), ok: r.ok, errs: r.errs, firstErr: r.firstErr}
}
