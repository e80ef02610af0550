package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadResult is what one load run saw.
type loadResult struct {
	ok       int             // answers with the wanted status
	errs     int             // other answers and failed requests
	elapsed  time.Duration   // from the first request to the last answer
	lat      []time.Duration // latency of each ok answer, sorted
	firstErr string          // what the first error was, for the report
}

// rate returns ok answers per second.
func (r loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// quantile returns the q-quantile (0 < q < 1) of the ok latencies.
func (r loadResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

// loadSpec is a closed-loop load: conns workers, each on its own
// keep-alive connection, each sending its next request when the last
// answer is read, until d has passed or max requests have been sent.
type loadSpec struct {
	conns int
	d     time.Duration
	max   int
	want  int // the status that counts as ok
	// newReq makes worker w's next request (one whose body has been sent
	// cannot be sent again). It costs the same against every target. A nil
	// request and nil error stop the worker.
	newReq func(w int) (*http.Request, error)
	// got, if set, is handed worker w's every ok answer; an error counts
	// the answer as failed.
	got func(w int, body []byte) error
}

// run applies the load and reports what it saw. Requests in flight when
// the time is up are waited for (at most 30 s each), not cut off.
func (s loadSpec) run(ctx context.Context) loadResult {
	tr := &http.Transport{
		MaxIdleConnsPerHost: s.conns,
		MaxConnsPerHost:     s.conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		sent atomic.Int64
		mu   sync.Mutex
		res  loadResult
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(s.d)
	for w := range s.conns {
		wg.Go(func() {
			var lat []time.Duration
			ok, errs, firstErr := 0, 0, ""
			fail := func(msg string) {
				errs++
				if firstErr == "" {
					firstErr = msg
				}
			}
			var buf []byte
			for ctx.Err() == nil && time.Now().Before(deadline) && sent.Add(1) <= int64(s.max) {
				req, err := s.newReq(w)
				if err != nil {
					fail(err.Error())
					break
				}
				if req == nil {
					break
				}
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				var readErr error
				if s.got != nil {
					buf, readErr = readAll(resp.Body, buf[:0])
				} else {
					_, readErr = io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
				switch {
				case readErr != nil:
					fail(readErr.Error())
				case resp.StatusCode != s.want:
					fail(resp.Status)
				default:
					d := time.Since(t)
					if s.got != nil {
						if err := s.got(w, buf); err != nil {
							fail(err.Error())
							continue
						}
					}
					ok++
					lat = append(lat, d)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.ok += ok
			res.errs += errs
			res.lat = append(res.lat, lat...)
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

// readAll appends what r holds to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// target is one server to load, and how.
type target struct {
	name string
	url  string  // what to load
	proc process // the server: its CPU time is what the report shows
	// header, if set, is sent with every request, with values[n mod
	// len(values)] on the nth request (one counter per target, kept from
	// one run to the next).
	header string
	values []string
	next   *atomic.Uint64
	// script: under wrk, send the values from a Lua script even if there
	// is only one, so that wrk's own cost is the same for every target.
	script bool
}

// newTarget returns a target that loads url on p, every request
// carrying header with each of values in turn.
func newTarget(name, url string, p process, header string, values ...string) target {
	return target{name: name, url: url, proc: p, header: header, values: values, next: new(atomic.Uint64)}
}

// sample is one load run against one target, as the report shows it.
type sample struct {
	rate      float64 // ok answers per second
	p50, p99  time.Duration
	ok, errs  int
	firstErr  string
	server    time.Duration // the server process's CPU time (user + system) per ok answer
	generator time.Duration // the load generator's CPU time per ok answer
}

// loadFunc applies a load to t for d, and returns what it saw and the CPU
// time the load generator spent (in all, not per answer).
type loadFunc func(ctx context.Context, t target, d time.Duration) (s sample, generatorCPU time.Duration, err error)

// goLoad is a loadFunc: a GET of t.url from this process on conns
// keep-alive connections, at most maxReq requests a run.
func goLoad(conns, maxReq int) loadFunc {
	return func(ctx context.Context, t target, d time.Duration) (sample, time.Duration, error) {
		before := processCPU()
		r := loadSpec{
			conns: conns, d: d, max: maxReq, want: http.StatusOK,
			newReq: func(int) (*http.Request, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
				if err == nil && t.header != "" {
					req.Header.Set(t.header, t.values[(t.next.Add(1)-1)%uint64(len(t.values))])
				}
				return req, err
			},
		}.run(ctx)
		return fromLoad(r), processCPU() - before, nil
	}
}

// fromLoad is the sample of a Go load run, less the CPU times.
func fromLoad(r loadResult) sample {
	return sample{rate: r.rate(), p50: r.quantile(0.50), p99: r.quantile(0.99), ok: r.ok, errs: r.errs, firstErr: r.firstErr}
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs load against t for d, and adds the CPU time per ok answer
// of t's server (from /proc/PID/stat) and of the load generator.
func measure(ctx context.Context, load loadFunc, t target, d time.Duration) (sample, error) {
	before, err := procCPU(t.proc.pid)
	if err != nil {
		return sample{}, err
	}
	s, gen, err := load(ctx, t, d)
	if err != nil {
		return sample{}, err
	}
	after, err := procCPU(t.proc.pid)
	if err != nil {
		return sample{}, err
	}
	if s.ok > 0 {
		s.server, s.generator = (after-before)/time.Duration(s.ok), gen/time.Duration(s.ok)
	}
	return s, nil
}

// comparison loads targets in turn, round after round; targets[0] is the
// baseline that the others are divided by, round by round.
type comparison struct {
	targets []target
	load    loadFunc
	// prepare, if set, runs before each load of a target, outside what is
	// measured.
	prepare func(ctx context.Context, t target) error
	rounds  int
	d       time.Duration
	warm    time.Duration // the unrecorded run of each target first (default 1s)
	per     string        // what one ok answer is, for the headings: "req", "refresh"
}

// summary is the medians over the rounds for one target.
type summary struct {
	rate, ratio, cpuRatio, allRatio float64
	server, generator               time.Duration
}

// run warms every target up (one unrecorded second), then measures the
// rounds, printing a Markdown table of them and their medians to stdout,
// and returns the medians.
func (c comparison) run(ctx context.Context, stdout, stderr io.Writer) ([]summary, error) {
	one := func(t target, d time.Duration) (sample, error) {
		if c.prepare != nil {
			if err := c.prepare(ctx, t); err != nil {
				return sample{}, err
			}
		}
		return measure(ctx, c.load, t, d)
	}
	warm := c.warm
	if warm <= 0 {
		warm = time.Second
	}
	for _, t := range c.targets {
		if _, err := one(t, warm); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "| round | target | %[1]s/s | p50 / p99 | server CPU/%[1]s | load CPU/%[1]s | errors | ratio | CPU ratio | all-CPU ratio |\n|---|---|---|---|---|---|---|---|---|---|\n", c.per)
	n := len(c.targets)
	rates, ratios, cpuRatios, allRatios := make([][]float64, n), make([][]float64, n), make([][]float64, n), make([][]float64, n)
	servers, gens := make([][]float64, n), make([][]float64, n)
	for i := range c.rounds {
		var base sample
		for j, t := range c.targets {
			s, err := one(t, c.d)
			if err != nil {
				return nil, err
			}
			if s.errs > 0 {
				fmt.Fprintf(stderr, "round %d, %s: %d errors, the first: %s\n", i+1, t.name, s.errs, s.firstErr)
			}
			if j == 0 {
				base = s
			}
			r := s.rate / base.rate
			cr := float64(base.server) / float64(s.server)
			ar := float64(base.server+base.generator) / float64(s.server+s.generator)
			rates[j], ratios[j] = append(rates[j], s.rate), append(ratios[j], r)
			cpuRatios[j], allRatios[j] = append(cpuRatios[j], cr), append(allRatios[j], ar)
			servers[j], gens[j] = append(servers[j], float64(s.server)), append(gens[j], float64(s.generator))
			fmt.Fprintf(stdout, "| %d | %s | %.0f | %s / %s | %s | %s | %d | %.2f | %.2f | %.2f |\n",
				i+1, t.name, s.rate, ms(s.p50), ms(s.p99), us(s.server), us(s.generator), s.errs, r, cr, ar)
		}
	}
	sums := make([]summary, n)
	for j, t := range c.targets {
		sums[j] = summary{
			rate: median(rates[j]), ratio: median(ratios[j]), cpuRatio: median(cpuRatios[j]), allRatio: median(allRatios[j]),
			server: time.Duration(median(servers[j])), generator: time.Duration(median(gens[j])),
		}
		m := sums[j]
		fmt.Fprintf(stdout, "| **median** | %s | %.0f | | %s | %s | | **%.2f** | **%.2f** | **%.2f** |\n",
			t.name, m.rate, us(m.server), us(m.generator), m.ratio, m.cpuRatio, m.allRatio)
	}
	fmt.Fprintf(stdout, "\nRatio is %[1]s/s ÷ the baseline's %[1]s/s in the same round. Server CPU/%[1]s is the server process's CPU time (user + system, /proc/PID/stat) per ok answer; load CPU/%[1]s is the load generator's. CPU ratio is the baseline's server CPU/%[1]s ÷ this server's: the throughput ratio a CPU-bound server on its own cores would show. All-CPU ratio counts the load generator too: the throughput ratio a CPU-bound closed loop on these shared cores would show.\n\n", c.per)
	return sums, nil
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// ms formats a duration as milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// us formats a duration as microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// verdict says whether got meets a goal of at least want.
func verdict(got, want float64) string {
	if got >= want {
		return "met"
	}
	return "**missed**"
}

// goalLine prints how a target's medians compare with a goal of at least
// goal, for each of the three ratios.
func goalLine(w io.Writer, name string, m summary, goal float64) {
	fmt.Fprintf(w, "Goal ≥ %.2f for %s: ratio %.3f (%s), CPU ratio %.3f (%s), all-CPU ratio %.3f (%s).\n\n",
		goal, name, m.ratio, verdict(m.ratio, goal), m.cpuRatio, verdict(m.cpuRatio, goal), m.allRatio, verdict(m.allRatio, goal))
}

// loadFlags are the flags every load command shares.
type loadFlags struct {
	store    string
	redis    string // the Redis URL of -store redis
	tool     string
	d        time.Duration
	conns    int
	rounds   int
	maxReq   int
	bin      string
	childLog bool
}

func (lf *loadFlags) register(fs *flag.FlagSet, store string, conns int) {
	fs.StringVar(&lf.store, "store", store, "Sesame's session store: memory, sqlite (serve's default, sessions in the --db file) or redis (-redis)")
	fs.StringVar(&lf.redis, "redis", defaultRedis, "Redis of -store redis: a database of it is claimed (it must be empty, or hold only an earlier lab run's keys) and emptied after the run")
	fs.StringVar(&lf.tool, "load", "go", "load generator: go (in this process) or wrk (Debian's wrk, one thread)")
	fs.DurationVar(&lf.d, "duration", 5*time.Second, "length of each load run")
	fs.IntVar(&lf.conns, "conns", conns, "keep-alive connections, each with a client of its own")
	fs.IntVar(&lf.rounds, "rounds", 3, "rounds of (baseline, Sesame...), interleaved")
	fs.IntVar(&lf.maxReq, "max-requests", 2_000_000, "most requests one Go load run sends")
	fs.StringVar(&lf.bin, "bin", "", "sesame binary to run (default: this executable)")
	fs.BoolVar(&lf.childLog, "child-stderr", false, "copy the sesame binary's stderr to ours")
}

func (lf *loadFlags) check() error {
	if lf.conns < 1 || lf.rounds < 1 || lf.d <= 0 || lf.maxReq < 1 {
		return errors.New("-conns, -rounds, -duration and -max-requests must be positive")
	}
	switch lf.store {
	case "memory", "sqlite", "redis":
	default:
		return fmt.Errorf("-store: want memory, sqlite or redis, got %q", lf.store)
	}
	return nil
}

// loader returns the load generator -load names.
func (lf *loadFlags) loader() (loadFunc, error) {
	switch lf.tool {
	case "go":
		return goLoad(lf.conns, lf.maxReq), nil
	case "wrk":
		return wrkLoad(lf.conns), nil
	default:
		return nil, fmt.Errorf("-load: want go or wrk, got %q", lf.tool)
	}
}

// sesame returns how to start the binary these flags name, building it
// if need be; cleanup removes what was built.
func (lf *loadFlags) sesame(ctx context.Context, stderr io.Writer, flags ...string) (s sesameServer, cleanup func(), err error) {
	bin, cleanup, err := sesameBinary(ctx, lf.bin, stderr)
	if err != nil {
		return sesameServer{}, nil, err
	}
	s = sesameServer{bin: bin, store: lf.store, redis: lf.redis, flags: flags}
	if lf.childLog {
		s.childLog = stderr
	}
	return s, cleanup, nil
}

// stops collects what to undo, for one deferred call of run (a pointer
// receiver, so that "defer undo.run()" sees what is added later).
type stops []func()

func (s *stops) add(f func()) { *s = append(*s, f) }

// run calls the functions added, the last first.
func (s *stops) run() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
}
