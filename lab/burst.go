package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// burstRun starts the real binary and sends it n logins at once.
type burstRun struct {
	srv    sesameServer // its flags and environment are added to for each run
	n      int
	conc   int           // --hash-concurrency
	steady time.Duration // length of the closed-loop login run after the burst; 0 skips it
}

// burstResult is what one burst saw. Sizes are in MiB.
type burstResult struct {
	fresh, idle, peak float64
	status            map[int]int // answers by status code
	failed            int         // requests with no answer
	took              time.Duration
	steadyRate        float64       // 201s per second in the closed loop after the burst
	steadyCPU         time.Duration // the binary's CPU time (user + system) per 201 in it
}

// other counts what was neither 201 nor 503.
func (r burstResult) other() int {
	n := r.failed
	for code, c := range r.status {
		if code != http.StatusCreated && code != http.StatusServiceUnavailable {
			n += c
		}
	}
	return n
}

// run starts a fresh server process with env added to its environment,
// reads its VmRSS (fresh), signs in once, reads VmRSS again (idle), sends
// the burst, reads VmHWM (peak), then logs in from a closed loop for
// b.steady to measure the binary's CPU time per login, and stops the
// process.
func (b burstRun) run(ctx context.Context, env []string) (burstResult, error) {
	srv := b.srv
	srv.flags = append(slices.Clone(srv.flags), "--hash-concurrency", strconv.Itoa(b.conc))
	srv.env = append(slices.Clone(srv.env), env...)
	p, stop, err := srv.start(ctx)
	if err != nil {
		return burstResult{}, err
	}
	defer stop()
	base, pid := p.base, p.pid
	var r burstResult
	if r.fresh, err = procStatusMiB(pid, "VmRSS"); err != nil {
		return r, err
	}
	if _, _, err := signIn(ctx, base); err != nil {
		return r, err
	}
	if r.idle, err = procStatusMiB(pid, "VmRSS"); err != nil {
		return r, err
	}
	r.status, r.failed, r.took = b.fire(ctx, base)
	if r.peak, err = procStatusMiB(pid, "VmHWM"); err != nil {
		return r, err
	}
	if b.steady > 0 {
		// What the environment costs a login: the binary's own CPU time
		// per 201, which other tenants of the machine disturb far less
		// than they do the rate.
		cpu0, err := procCPU(pid)
		if err != nil {
			return r, err
		}
		l := loginLoad(ctx, base, 2*b.conc, b.steady).run(ctx)
		cpu1, err := procCPU(pid)
		if err != nil {
			return r, err
		}
		r.steadyRate, r.steadyCPU = l.rate(), (cpu1-cpu0)/time.Duration(max(l.ok, 1))
	}
	return r, nil
}

// report runs the burst rounds times for the default environment and each
// variant, interleaved, and prints the table.
func (b burstRun) report(ctx context.Context, rounds int, variants []string, stdout, stderr io.Writer) error {
	envs := append([]string{""}, variants...)
	allowance := float64(b.conc*19 + 64) // MiB above idle
	fmt.Fprintf(stdout, "### login burst: %d logins at once to the real binary, store=%s, --hash-concurrency %d\n\n", b.n, b.srv.store, b.conc)
	fmt.Fprintf(stdout, "Goal: peak RSS (VmHWM) − idle RSS ≤ %d × 19 MiB + 64 MiB = %.0f MiB. Idle is VmRSS after one registration and one login (two hashes); fresh is VmRSS before them, so peak − fresh is the stricter reading.\n\n", b.conc, allowance)
	fmt.Fprintf(stdout, "| round | environment | fresh RSS | idle RSS | peak RSS | peak − idle | peak − fresh | 201 | 503 | other | burst took | steady logins/s | CPU/login |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	overIdle := make([][]float64, len(envs))
	overFresh := make([][]float64, len(envs))
	created := make([][]float64, len(envs))
	cpuPer := make([][]float64, len(envs))
	rates := make([][]float64, len(envs))
	for i := range rounds {
		for j, env := range envs {
			r, err := b.run(ctx, strings.Fields(env))
			if err != nil {
				return err
			}
			overIdle[j] = append(overIdle[j], r.peak-r.idle)
			overFresh[j] = append(overFresh[j], r.peak-r.fresh)
			created[j] = append(created[j], float64(r.status[http.StatusCreated]))
			cpuPer[j] = append(cpuPer[j], float64(r.steadyCPU))
			rates[j] = append(rates[j], r.steadyRate)
			fmt.Fprintf(stdout, "| %d | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %d | %d | %d | %s | %.1f | %s |\n",
				i+1, envName(env), r.fresh, r.idle, r.peak, r.peak-r.idle, r.peak-r.fresh,
				r.status[http.StatusCreated], r.status[http.StatusServiceUnavailable], r.other(), r.took.Round(10*time.Millisecond),
				r.steadyRate, ms(r.steadyCPU))
		}
	}
	fmt.Fprintf(stdout, "\n| environment | median peak − idle | goal met | median peak − fresh | strict goal met | median 201s | median steady logins/s | median CPU/login |\n|---|---|---|---|---|---|---|---|\n")
	for j, env := range envs {
		fmt.Fprintf(stdout, "| %s | %.1f MiB | %s | %.1f MiB | %s | %.0f | %.1f | %s |\n", envName(env),
			median(overIdle[j]), verdict(allowance, median(overIdle[j])),
			median(overFresh[j]), verdict(allowance, median(overFresh[j])), median(created[j]),
			median(rates[j]), ms(time.Duration(median(cpuPer[j]))))
	}
	fmt.Fprintf(stdout, "\nSteady logins/s and CPU/login come from %s of closed-loop logins (%d clients) after the burst; CPU/login is the binary's CPU time (user + system, from /proc/PID/stat) per 201.\n\n", b.steady, 2*b.conc)
	return nil
}

// fire sends n logins at once, each on its own connection, and counts the
// answers.
func (b burstRun) fire(ctx context.Context, base string) (status map[int]int, failed int, took time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: b.n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	creds := fmt.Appendf(nil, `{"email":%q,"password":%q}`, labEmail, labPassword)
	status = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range b.n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/session", bytes.NewReader(creds))
			if err != nil {
				panic(err) // a constant URL and body: cannot fail
			}
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status[resp.StatusCode]++
		})
	}
	t := time.Now()
	close(start)
	wg.Wait()
	return status, failed, time.Since(t)
}
