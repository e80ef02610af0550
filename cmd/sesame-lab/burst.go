package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// burstRun starts the real binary and sends it n logins at once.
type burstRun struct {
	bin      string
	store    string // memory or sqlite
	n        int
	conc     int           // --hash-concurrency
	steady   time.Duration // length of the closed-loop login run after the burst; 0 skips it
	childLog io.Writer     // where the binary's stderr goes, or nil
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

// run starts a fresh server process with env added to ours (less any GOGC,
// GOMEMLIMIT, GODEBUG and GOMAXPROCS of our own), reads its VmRSS (fresh),
// signs in once, reads VmRSS again (idle), sends the burst, reads VmHWM
// (peak), then logs in from a closed loop for b.steady to measure the
// binary's CPU time per login, and stops the process.
func (b burstRun) run(ctx context.Context, env []string) (burstResult, error) {
	dir, err := os.MkdirTemp("", "sesame-lab-data-")
	if err != nil {
		return burstResult{}, err
	}
	defer os.RemoveAll(dir)
	sessionStore := "memory"
	if b.store == "sqlite" {
		sessionStore = "sqlite:" + dir + "/sesame.db"
	}
	// Every login here comes from one address and for one account; the
	// throttle is raised so the burst meets the hasher, not the limiter.
	cmd := exec.CommandContext(ctx, b.bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir,
		"--session-store", sessionStore, "--hash-concurrency", strconv.Itoa(b.conc),
		"--login-account-limit", "1000000", "--login-address-limit", "1000000")
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return burstResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return burstResult{}, err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		// Read to the end, so the binary never blocks on a full pipe.
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			if b.childLog != nil {
				fmt.Fprintln(b.childLog, line)
			}
			if strings.Contains(line, `msg="sesame listening"`) {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						addr <- a
					}
				}
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(15 * time.Second):
		return burstResult{}, errors.New("the binary did not log sesame listening within 15s")
	case <-ctx.Done():
		return burstResult{}, ctx.Err()
	}

	pid := cmd.Process.Pid
	var r burstResult
	if r.fresh, err = procStatusMiB(pid, "VmRSS"); err != nil {
		return r, err
	}
	if _, _, err := signIn(ctx, base, labEmail, labPassword); err != nil {
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
	if b.bin == "" {
		dir, err := os.MkdirTemp("", "sesame-lab-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.bin = dir + "/sesame"
		fmt.Fprintln(stderr, "building ./cmd/sesame")
		if out, err := runGo(ctx, "build", "-o", b.bin, "./cmd/sesame"); err != nil {
			return fmt.Errorf("go build ./cmd/sesame: %w\n%s", err, out)
		}
	}
	envs := append([]string{""}, variants...)
	allowance := float64(b.conc*19 + 64) // MiB above idle
	fmt.Fprintf(stdout, "### login burst: %d logins at once to the real binary, store=%s, --hash-concurrency %d\n\n", b.n, b.store, b.conc)
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

// procStatusMiB reads a size field such as VmRSS or VmHWM of
// /proc/PID/status, in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return 0, fmt.Errorf("%s in /proc/%d/status: %w", field, pid, err)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// procCPU returns the user and system CPU time of process pid from
// /proc/PID/stat, counting in the kernel's USER_HZ ticks of 10 ms (its value
// on every Linux this runs on).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th and stime the 13th.
	var f []string
	if i := bytes.LastIndexByte(data, ')'); i >= 0 {
		f = strings.Fields(string(data[i+1:]))
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// runGo runs the go command in the current directory.
func runGo(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "go", args...).CombinedOutput()
}
