package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sesameauth/sesame/server"
)

// soakBound is API.md's promise for other nodes: an ended session stops
// working on every node within a second.
const soakBound = time.Second

// soakCmd is the soak command: three sesame serve nodes on one PostgreSQL
// database (users, keys; created for the run, dropped after) and one Redis
// database (sessions, refresh families, the revocation log; claimed and
// emptied after), with one master key, under a mixed load for -duration,
// every user's requests spread over the three nodes. It keeps a model of
// every session and refresh family, checks each answer against it as it
// goes, and fails (exit status 1) on:
//
//   - any 5xx but the two 503s API.md documents for load: a node behind on
//     revocations (its feed past the one-second bound) and a full password
//     hasher queue, which are counted apart;
//   - any request allowed after its session or family ended: on the node
//     that ended it, sent after the ending answer arrived; on the others,
//     sent more than a second after it (sessionEnd.judge);
//   - a live session or family refused, during the run or at its end, when
//     every one is asked on every node;
//   - two winners of a refresh race, no new signing key in use after the
//     mid-run "sesame keys rotate", a node that exited;
//   - resident memory or goroutines of a node that grew past growthRule
//     between warm-up and the end.
func soakCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Minute, "how long the mixed load runs (the final checks and the nodes' start come on top)")
	users := fs.Int("users", 16, "users at once, each one client sending one request at a time, each to any of the three nodes")
	rate := fs.Float64("rate", 100, "operations per second in all (a refresh race or an ending with its checks is one operation of several requests)")
	pgURL := fs.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server: a database sesame_lab_<random> is created on it for the run and dropped after")
	redis := fs.String("redis", defaultRedis, "Redis of the nodes' sessions: a database of it is claimed (it must be empty, or hold only an earlier lab run's keys) and emptied after the run")
	bin := fs.String("bin", "", "sesame binary to run (default: this executable)")
	childLog := fs.Bool("child-stderr", false, "copy the nodes' stderr to ours")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration < 30*time.Second || *users < 1 || *rate <= 0 {
		// Under 30 s there is no warm-up and end window to compare, and
		// no time for the rotated key to be used (it signs 5 s after it
		// is made, and the nodes read keys every 2 s).
		return errors.New("soak: -duration must be at least 30s, -users and -rate positive")
	}
	if *redis == "" {
		return errors.New("soak: -redis: the soak runs on PostgreSQL and Redis")
	}

	var undo stops
	defer undo.run()
	// Tokens live 2 minutes, so that the nodes prune their revocation
	// sets during a long soak (an entry stays for the token lifetime plus
	// a minute); no session idles out before the final check.
	flags := []string{"--access-token-ttl", "2m", "--session-idle-timeout", (*duration + 30*time.Minute).String()}
	errLog := &errorLines{}
	var nodeLog io.Writer = errLog
	if *childLog {
		nodeLog = io.MultiWriter(stderr, errLog)
	}
	c, err := startCluster(ctx, &undo, 3, *pgURL, *redis, *bin, flags, nodeLog, stderr)
	if err != nil {
		return err
	}
	r := newSoakRun(c, *duration)
	r.errLog = errLog
	if err := r.setUpAdmin(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "soak: %d users, %.0f operations/s, for %v\n", *users, *rate, *duration)
	r.run(ctx, *users, *rate)
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "soak: load done; asking every node about every session\n")
	r.finalCheck(ctx)
	fails := r.report(stdout, *users, *rate)
	if len(fails) > 0 {
		return fmt.Errorf("soak failed: %s", strings.Join(fails, "; "))
	}
	return nil
}

// soakSession is a cookie session or a refresh family as the soak's model
// knows it.
type soakSession struct {
	id      string // the public handle (GET /v1/sessions' id, a token's sid)
	token   bool   // a refresh family; else a cookie session
	cookie  string // Cookie header value of a cookie session
	access  string // the newest access token of a family
	refresh string // and its newest refresh token
	expires time.Time
	end     sessionEnd
	unknown bool // an answer to a request that could have ended it was a 5xx or none: not judged again
}

// soakUser is one account and its sessions; exactly one worker acts for
// it, one request at a time, so the model never races the server.
type soakUser struct {
	id, email, password string
	live                []*soakSession
	ended               []*soakSession // the newest ended ones, to ask about again
}

// kindStats counts the answers to one kind of request.
type kindStats struct {
	sent                                       int
	ok, refused, lag, busy, failure, transport int
}

// soakRun is one soak: the cluster, the model and everything counted.
type soakRun struct {
	c        cluster
	hc       *http.Client
	duration time.Duration
	start    time.Time

	admin struct{ id, cookie string }

	mu          sync.Mutex
	stats       map[string]*kindStats
	failures    []string // the first few, word for word
	nFailures   int
	violations  []string
	nViolations int
	inBound     int // allowed by another node within the bound
	refusedEnd  int // requests with an ended session's credential, refused
	races       [4]int
	sessions    []*soakSession
	nUsers      int

	// The key rotation: when, and the signing keys of the access tokens
	// issued before and after it.
	rotatedAt  time.Duration
	rotateErr  error
	kidsBefore map[string]bool
	newKey     int // tokens issued after the rotation, signed by a key unseen before it
	oldKeyLate int // tokens issued more than 10 s after it, still signed by an old key

	samples [][]nodeSample // per node
	exited  []string
	errLog  *errorLines
}

// errorLines keeps the nodes' log lines at level ERROR (the cause of a
// 5xx is there: the answer only says "a store is unavailable"). The
// nodes' stderr readers write one line per Write, concurrently.
type errorLines struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (e *errorLines) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("level=ERROR")) {
		e.mu.Lock()
		if e.n++; len(e.first) < 8 {
			e.first = append(e.first, strings.TrimSpace(string(p)))
		}
		e.mu.Unlock()
	}
	return len(p), nil
}

func newSoakRun(c cluster, d time.Duration) *soakRun {
	return &soakRun{
		c: c, duration: d,
		hc: &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256, DisableCompression: true},
			Timeout:   30 * time.Second,
		},
		stats:      map[string]*kindStats{},
		kidsBefore: map[string]bool{},
		samples:    make([][]nodeSample, len(c.nodes)),
		rotatedAt:  -1,
	}
}

// call is one request: exactly one of json and form is its body, and
// cookie or bearer its credential.
type call struct {
	kind           string // what the summary counts it as
	method, path   string
	json           any
	form           url.Values
	cookie, bearer string
}

// answer is a node's answer to a call.
type answer struct {
	node      int
	status    int
	body      []byte
	cookies   []*http.Cookie
	sent, got time.Time
	class     answerClass
}

// do sends c to node and counts the answer; a failure (a 5xx that is not
// the feed's or the hasher's 503, or no answer) is recorded here.
func (r *soakRun) do(ctx context.Context, node int, c call) answer {
	var body io.Reader
	ctype := ""
	switch {
	case c.json != nil:
		b, _ := json.Marshal(c.json)
		body, ctype = strings.NewReader(string(b)), "application/json"
	case c.form != nil:
		body, ctype = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	}
	a := answer{node: node}
	req, err := http.NewRequestWithContext(ctx, c.method, r.c.nodes[node].base+c.path, body)
	if err == nil {
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if c.cookie != "" {
			req.Header.Set("Cookie", c.cookie) // Secure: kept off plain HTTP by a cookie jar
		}
		if c.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+c.bearer)
		}
		a.sent = time.Now()
		var resp *http.Response
		if resp, err = r.hc.Do(req); err == nil {
			a.body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			a.status, a.cookies = resp.StatusCode, resp.Cookies()
		}
	}
	a.got = time.Now()
	if err != nil {
		a.status = 0
	}
	a.class = classify(a.status, a.body)
	if ctx.Err() != nil && a.class == classTransport {
		return a // the run is being stopped: not the node's failure
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats[c.kind]
	if st == nil {
		st = &kindStats{}
		r.stats[c.kind] = st
	}
	st.sent++
	switch a.class {
	case classOK:
		st.ok++
	case classRefused:
		st.refused++
	case classLag:
		st.lag++
	case classBusy:
		st.busy++
	case classFailure:
		st.failure++
		r.failLocked("%s on node %c: %d %s", c.kind, 'A'+node, a.status, strings.TrimSpace(string(a.body)))
	case classTransport:
		st.transport++
		r.failLocked("%s on node %c: no answer: %v", c.kind, 'A'+node, err)
	}
	return a
}

func (r *soakRun) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLocked(format, args...)
}

func (r *soakRun) failLocked(format string, args ...any) {
	r.nFailures++
	if len(r.failures) < 12 {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	}
}

// expect records a failure unless a is an answer with status want, or one
// of the 503s that are counted apart (or the failure do recorded).
// It reports whether a has status want.
func (r *soakRun) expect(a answer, kind string, want int) bool {
	if a.status == want {
		return true
	}
	if a.class == classOK || a.class == classRefused {
		r.fail("%s on node %c: %d, want %d: %s", kind, 'A'+a.node, a.status, want, strings.TrimSpace(string(a.body)))
	}
	return false
}

// judge holds an answer given to a request with s's credential to the
// model: allowed (2xx) after s ended is a violation or, on another node
// within the bound, counted; refused after s ended is counted. It reports
// whether s had ended when the request was sent.
func (r *soakRun) judge(s *soakSession, a answer, kind string) bool {
	if s.unknown || !s.end.ended() || a.sent.Before(s.end.at) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch a.class {
	case classOK:
		switch s.end.judge(a.node, a.sent, soakBound) {
		case verdictInBound:
			r.inBound++
		case verdictViolation:
			r.nViolations++
			if len(r.violations) < 12 {
				node := "an unknown node"
				if s.end.node >= 0 {
					node = fmt.Sprintf("node %c", 'A'+s.end.node)
				}
				r.violations = append(r.violations, fmt.Sprintf("%s: node %c answered %d to a request sent %v after the %s on %s had ended the %s",
					kind, 'A'+a.node, a.status, a.sent.Sub(s.end.at).Round(time.Millisecond), s.end.why, node, s.what()))
			}
		}
	case classRefused:
		r.refusedEnd++
	}
	return true
}

func (s *soakSession) what() string {
	if s.token {
		return "refresh family"
	}
	return "cookie session"
}

// noteToken records the signing key of an access token issued at got.
func (r *soakRun) noteToken(kid string, got time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := got.Sub(r.start)
	switch {
	case r.rotatedAt < 0 || at < r.rotatedAt:
		r.kidsBefore[kid] = true
	case !r.kidsBefore[kid]:
		r.newKey++
	case at > r.rotatedAt+10*time.Second:
		r.oldKeyLate++
	}
}

// setUpAdmin makes the admin account with the CLI (as an operator would)
// and signs it in on node A: its cookie ends other users' sessions.
func (r *soakRun) setUpAdmin(ctx context.Context) error {
	email, password := "soak-admin@example.test", randomHex(12)
	if _, err := r.c.cli(ctx, password+"\n", "user", "add", "--email", email, "--role", "admin", "--password-stdin"); err != nil {
		return err
	}
	a := r.do(ctx, 0, call{kind: "admin login", method: http.MethodPost, path: "/v1/session", json: map[string]string{"email": email, "password": password}})
	if a.status != http.StatusCreated {
		return fmt.Errorf("soak: admin login: %d %s", a.status, a.body)
	}
	var in struct {
		User struct{ ID string } `json:"user"`
	}
	json.Unmarshal(a.body, &in)
	r.admin.id, r.admin.cookie = in.User.ID, sessionCookie(a.cookies)
	if r.admin.cookie == "" {
		return errors.New("soak: admin login: no session cookie")
	}
	return nil
}

// run runs the load for the run's duration: users workers, the sampler
// and the key rotation half-way.
func (r *soakRun) run(ctx context.Context, users int, rate float64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.start = time.Now()
	stop := r.start.Add(r.duration)
	var wg sync.WaitGroup
	wg.Go(func() { r.sample(ctx, stop) })
	wg.Go(func() {
		select {
		case <-time.After(r.duration / 2):
		case <-ctx.Done():
			return
		}
		_, err := r.c.cli(ctx, "", "keys", "rotate")
		r.mu.Lock()
		r.rotatedAt, r.rotateErr = time.Since(r.start), err
		r.mu.Unlock()
	})
	interval := time.Duration(float64(users) / rate * float64(time.Second))
	for i := range users {
		wg.Go(func() {
			w := &soakWorker{r: r, rng: mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
			// Spread the users' first operations over one interval.
			next := time.Now().Add(time.Duration(w.rng.Int64N(int64(interval) + 1)))
			for {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				if time.Now().After(stop) || ctx.Err() != nil {
					return
				}
				w.step(ctx)
				if next = next.Add(interval); time.Until(next) < -10*interval {
					next = time.Now() // too far behind: do not catch up in a burst
				}
			}
		})
	}
	wg.Wait()
	for i, n := range r.c.nodes {
		if err := syscall.Kill(n.pid, 0); err != nil {
			r.exited = append(r.exited, fmt.Sprintf("node %c (pid %d) is gone: %v", 'A'+i, n.pid, err))
		}
	}
}

// sample reads each node's resident memory (/proc) and goroutines
// (go_goroutines of /metrics) every few seconds until stop.
func (r *soakRun) sample(ctx context.Context, stop time.Time) {
	every := min(max(r.duration/120, time.Second), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if time.Now().After(stop) {
			return
		}
		for i, n := range r.c.nodes {
			rss, err1 := procStatusMiB(n.pid, "VmRSS")
			g, err2 := r.goroutines(ctx, n.base)
			if err := errors.Join(err1, err2); err != nil {
				if ctx.Err() == nil {
					r.fail("sampling node %c: %v", 'A'+i, err)
				}
				continue
			}
			r.mu.Lock()
			r.samples[i] = append(r.samples[i], nodeSample{at: time.Since(r.start), rss: rss, goroutines: g})
			r.mu.Unlock()
		}
	}
}

// goroutines is go_goroutines of the node's /metrics.
func (r *soakRun) goroutines(ctx context.Context, base string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("/metrics: %w", err)
	}
	f := fams["go_goroutines"]
	if f == nil || len(f.GetMetric()) != 1 {
		return 0, errors.New("/metrics: no go_goroutines")
	}
	return f.GetMetric()[0].GetGauge().GetValue(), nil
}

// finalCheck asks every node, more than the bound after the load ended,
// about every session the model knows: a live one must be allowed
// everywhere (a family's access token refreshed first if it is near its
// end), an ended one refused everywhere.
func (r *soakRun) finalCheck(ctx context.Context) {
	time.Sleep(soakBound + 100*time.Millisecond)
	rng := mrand.New(mrand.NewPCG(1, uint64(time.Now().UnixNano())))
	var refresh []int
	for range r.sessions {
		refresh = append(refresh, rng.IntN(len(r.c.nodes)))
	}
	inParallel(len(r.sessions), 8, func(i int) (struct{}, error) {
		s := r.sessions[i]
		if s.unknown {
			return struct{}{}, nil
		}
		live := !s.end.ended()
		if live && s.token && time.Until(s.expires) < 90*time.Second {
			if !r.refreshFamily(ctx, s, refresh[i], "final: refresh") {
				return struct{}{}, nil
			}
		}
		for node := range r.c.nodes {
			kind := "final: " + map[bool]string{true: "live", false: "ended"}[live]
			a := r.ask(ctx, s, node, kind)
			if live {
				r.expect(a, kind+" "+s.what(), http.StatusOK)
			} else {
				r.judge(s, a, kind+" "+s.what())
			}
			if !live && s.token {
				// The newest refresh token of an ended family is refused too.
				a := r.do(ctx, node, call{kind: kind + " refresh", method: http.MethodPost, path: "/v1/token", form: refreshGrant(s.refresh)})
				r.judge(s, a, "refresh")
			}
		}
		return struct{}{}, nil
	})
}

// ask sends the request that asks node whether s is live: GET /v1/session
// with a cookie session's cookie, GET /v1/userinfo with a family's access
// token.
func (r *soakRun) ask(ctx context.Context, s *soakSession, node int, kind string) answer {
	if s.token {
		return r.do(ctx, node, call{kind: kind + " (bearer)", method: http.MethodGet, path: "/v1/userinfo", bearer: s.access})
	}
	return r.do(ctx, node, call{kind: kind + " (cookie)", method: http.MethodGet, path: "/v1/session", cookie: s.cookie})
}

// refreshFamily refreshes a live family on node and takes its new tokens.
func (r *soakRun) refreshFamily(ctx context.Context, s *soakSession, node int, kind string) bool {
	a := r.do(ctx, node, call{kind: kind, method: http.MethodPost, path: "/v1/token", form: refreshGrant(s.refresh)})
	if !r.expect(a, kind, http.StatusOK) {
		if a.class == classFailure || a.class == classTransport {
			s.unknown = true
		}
		return false
	}
	return r.takeTokens(s, a)
}

// takeTokens sets s's tokens from a token endpoint's 200 answer.
func (r *soakRun) takeTokens(s *soakSession, a answer) bool {
	var t struct {
		Access    string `json:"access_token"`
		Refresh   string `json:"refresh_token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.Unmarshal(a.body, &t); err != nil || t.Access == "" || t.Refresh == "" {
		r.fail("token answer of node %c: %v %q", 'A'+a.node, err, a.body)
		s.unknown = true
		return false
	}
	// The client reads its own token's claims: the session it belongs to
	// and the key that signed it; the nodes verify it.
	tok, _, err := jwt.NewParser().ParseUnverified(t.Access, jwt.MapClaims{})
	if err != nil {
		r.fail("access token of node %c: %v", 'A'+a.node, err)
		s.unknown = true
		return false
	}
	sid, _ := tok.Claims.(jwt.MapClaims)["sid"].(string)
	kid, _ := tok.Header["kid"].(string)
	if s.id != "" && sid != s.id {
		r.fail("refresh on node %c: the new access token is of session %q, not the family's %q", 'A'+a.node, sid, s.id)
	}
	s.id, s.access, s.refresh = sid, t.Access, t.Refresh
	s.expires = a.sent.Add(time.Duration(t.ExpiresIn) * time.Second)
	r.noteToken(kid, a.got)
	return true
}

func refreshGrant(token string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
}

func sessionCookie(cookies []*http.Cookie) string {
	for _, c := range cookies {
		if c.Name == server.CookieName {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// report writes the summary as Markdown and returns what failed.
func (r *soakRun) report(w io.Writer, users int, rate float64) (fails []string) {
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	fmt.Fprintf(w, "### soak: 3 nodes on PostgreSQL + Redis, %v, %d users, %.0f operations/s\n\n", r.duration, users, rate)
	fmt.Fprintf(w, "| requests | sent | 2xx | 4xx | lag 503 | busy 503 | other 5xx | no answer |\n|---|---|---|---|---|---|---|---|\n")
	kinds := make([]string, 0, len(r.stats))
	for k := range r.stats {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var total kindStats
	for _, k := range kinds {
		s := r.stats[k]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", k, s.sent, s.ok, s.refused, s.lag, s.busy, s.failure, s.transport)
		total.sent += s.sent
		total.ok += s.ok
		total.refused += s.refused
		total.lag += s.lag
		total.busy += s.busy
		total.failure += s.failure
		total.transport += s.transport
	}
	fmt.Fprintf(w, "| **all** | **%d** | %d | %d | **%d** | %d | **%d** | **%d** |\n\n", total.sent, total.ok, total.refused, total.lag, total.busy, total.failure, total.transport)

	live, ended, unknown := 0, 0, 0
	for _, s := range r.sessions {
		switch {
		case s.unknown:
			unknown++
		case s.end.ended():
			ended++
		default:
			live++
		}
	}
	rotation := "not done"
	switch {
	case r.rotateErr != nil:
		rotation = "failed: " + r.rotateErr.Error()
		fails = append(fails, "sesame keys rotate failed")
	case r.rotatedAt >= 0:
		rotation = fmt.Sprintf("`sesame keys rotate` at %v; access tokens issued after it and signed by the new key: %d; by an old key more than 10 s after it: %d",
			r.rotatedAt.Round(time.Second), r.newKey, r.oldKeyLate)
		if r.newKey == 0 {
			fails = append(fails, "no access token was signed by the rotated key")
		}
	default:
		fails = append(fails, "the key rotation did not run")
	}
	fmt.Fprintf(w, "| check | result |\n|---|---|\n")
	fmt.Fprintf(w, "| 5xx other than the lag and busy 503s, and requests without an answer | **%d** |\n", total.failure+total.transport)
	fmt.Fprintf(w, "| 503 of a node behind on revocations (feed lag; goal 0 on a quiet machine) | **%d** |\n", total.lag)
	fmt.Fprintf(w, "| 503 of a full password-hashing queue | %d |\n", total.busy)
	fmt.Fprintf(w, "| other failures (a live session refused, a wrong status) | %d |\n", r.nFailures-total.failure-total.transport)
	fmt.Fprintf(w, "| **violations**: allowed after the end (on its node: at once; elsewhere: after %v) | **%d** |\n", soakBound, r.nViolations)
	fmt.Fprintf(w, "| allowed by another node within %v of the end (API.md allows it) | %d |\n", soakBound, r.inBound)
	fmt.Fprintf(w, "| requests with an ended session's credential refused | %d |\n", r.refusedEnd)
	fmt.Fprintf(w, "| refresh races (one token, two nodes at once) | %d: one winner %d, none %d, **two %d**, unsettled %d |\n",
		r.races[0]+r.races[1]+r.races[2]+r.races[3], r.races[raceOneWinner], r.races[raceNoWinner], r.races[raceTwoWinners], r.races[raceUnsettled])
	fmt.Fprintf(w, "| users registered | %d |\n", r.nUsers)
	fmt.Fprintf(w, "| sessions and families made | %d: live at the end %d (each asked on every node), ended %d (each asked again on every node), unsettled %d |\n", len(r.sessions), live, ended, unknown)
	fmt.Fprintf(w, "| key rotation | %s |\n\n", rotation)
	if total.failure+total.transport > 0 {
		fails = append(fails, fmt.Sprintf("%d 5xx or unanswered requests", total.failure+total.transport))
	}
	if n := r.nFailures - total.failure - total.transport; n > 0 {
		fails = append(fails, fmt.Sprintf("%d wrong answers", n))
	}
	if r.nViolations > 0 {
		fails = append(fails, fmt.Sprintf("%d requests allowed after their session ended", r.nViolations))
	}
	if r.races[raceTwoWinners] > 0 {
		fails = append(fails, fmt.Sprintf("%d refresh races with two winners", r.races[raceTwoWinners]))
	}
	fails = append(fails, r.exited...)

	warmup, window := soakWindows(r.duration)
	fmt.Fprintf(w, "| node | RSS after warm-up → end (MiB) | goroutines after warm-up → end | samples | flat? |\n|---|---|---|---|---|\n")
	for i, ss := range r.samples {
		rs, gs, n1 := windowMedians(ss, warmup, warmup+window)
		re, ge, n2 := windowMedians(ss, r.duration-window, r.duration+time.Second)
		flat := "yes"
		switch {
		case n1 == 0 || n2 == 0:
			flat = "**no samples**"
			fails = append(fails, fmt.Sprintf("node %c: too few samples", 'A'+i))
		case rssRule.grew(rs, re) || goroutinesRule.grew(gs, ge):
			flat = "**no: grew**"
			fails = append(fails, fmt.Sprintf("node %c grew: RSS %.1f → %.1f MiB, goroutines %.0f → %.0f", 'A'+i, rs, re, gs, ge))
		}
		fmt.Fprintf(w, "| %c | %.1f → %.1f | %.0f → %.0f | %d | %s |\n", 'A'+i, rs, re, gs, ge, len(ss), flat)
	}
	fmt.Fprintf(w, "\nStart and end figures are medians over the %v after a %v warm-up and over the last %v; RSS: %v; goroutines: %v.\n",
		window, warmup, window, rssRule, goroutinesRule)
	fmt.Fprintf(w, "Nodes: sesame serve --db postgres (a database of the run's own) --session-store redis (a claimed database) --issuer http://sesame-bench.test --access-token-ttl 2m, one SESAME_MASTER_KEY. NumCPU %d; load average at the end %.2f %.2f %.2f.\n\n",
		runtime.NumCPU(), load[0], load[1], load[2])
	for _, v := range r.violations {
		fmt.Fprintf(w, "- violation: %s\n", v)
	}
	for _, f := range r.failures {
		fmt.Fprintf(w, "- failure: %s\n", f)
	}
	if r.errLog != nil {
		r.errLog.mu.Lock()
		if r.errLog.n > 0 {
			fmt.Fprintf(w, "\nThe nodes logged %d lines at level ERROR; the first:\n\n", r.errLog.n)
			for _, l := range r.errLog.first {
				fmt.Fprintf(w, "    %s\n", l)
			}
			fmt.Fprintln(w)
		}
		r.errLog.mu.Unlock()
	}
	if len(fails) == 0 {
		fmt.Fprintf(w, "**Result: passed.**\n")
	} else {
		fmt.Fprintf(w, "**Result: FAILED**: %s.\n", strings.Join(fails, "; "))
	}
	return fails
}
