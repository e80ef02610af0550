package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
	"github.com/sesameauth/sesame/token"
)

// calls counts what a request asked of the stores.
type calls struct {
	sessionReads, userReads, logReads, writes atomic.Int64
}

func (c *calls) reads() int64 { return c.sessionReads.Load() + c.userReads.Load() + c.logReads.Load() }

func (c *calls) reset() {
	c.sessionReads.Store(0)
	c.userReads.Store(0)
	c.logReads.Store(0)
	c.writes.Store(0)
}

// countedSessions is a SessionStore that counts its calls.
type countedSessions struct {
	sesame.SessionStore
	c *calls
}

func (s countedSessions) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	s.c.sessionReads.Add(1)
	return s.SessionStore.Session(ctx, hash)
}

func (s countedSessions) UserSessions(ctx context.Context, userID string) ([]sesame.Session, error) {
	s.c.sessionReads.Add(1)
	return s.SessionStore.UserSessions(ctx, userID)
}

func (s countedSessions) TouchSession(ctx context.Context, userID, id string, lastSeen, expiresAt time.Time) error {
	s.c.writes.Add(1)
	return s.SessionStore.TouchSession(ctx, userID, id, lastSeen, expiresAt)
}

func (s countedSessions) CreateSession(ctx context.Context, x sesame.Session) error {
	s.c.writes.Add(1)
	return s.SessionStore.CreateSession(ctx, x)
}

func (s countedSessions) DeleteSession(ctx context.Context, userID, id string) error {
	s.c.writes.Add(1)
	return s.SessionStore.DeleteSession(ctx, userID, id)
}

func (s countedSessions) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	s.c.writes.Add(1)
	return s.SessionStore.DeleteUserSessions(ctx, userID, exceptID)
}

// countedUsers is a UserStore that counts its reads.
type countedUsers struct {
	sesame.UserStore
	c *calls
}

func (u countedUsers) UserByID(ctx context.Context, id string) (sesame.User, error) {
	u.c.userReads.Add(1)
	return u.UserStore.UserByID(ctx, id)
}

func (u countedUsers) UserByEmail(ctx context.Context, email string) (sesame.User, error) {
	u.c.userReads.Add(1)
	return u.UserStore.UserByEmail(ctx, email)
}

// countedLog is a RevocationLog that counts its reads; the variants keep
// the optional interfaces of the log they wrap, which the revocation set
// finds by type assertion.
type countedLog struct {
	log sesame.RevocationLog
	c   *calls
}

func (l countedLog) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	l.c.logReads.Add(1)
	return l.log.RevocationsSince(ctx, after, limit)
}

type countedLogVersion struct{ countedLog }

func (l countedLogVersion) LogVersion(ctx context.Context) (uint64, error) {
	l.c.logReads.Add(1)
	return l.log.(sesame.LogVersioner).LogVersion(ctx)
}

type countedLogEpoch struct{ countedLog }

func (l countedLogEpoch) Epoch(ctx context.Context) (time.Time, error) {
	l.c.logReads.Add(1)
	return l.log.(sesame.EpochStore).Epoch(ctx)
}

type countedLogBoth struct{ countedLog }

func (l countedLogBoth) LogVersion(ctx context.Context) (uint64, error) {
	return countedLogVersion(l).LogVersion(ctx)
}

func (l countedLogBoth) Epoch(ctx context.Context) (time.Time, error) {
	return countedLogEpoch(l).Epoch(ctx)
}

func countLog(log sesame.RevocationLog, c *calls) sesame.RevocationLog {
	l := countedLog{log, c}
	_, v := log.(sesame.LogVersioner)
	_, e := log.(sesame.EpochStore)
	switch {
	case v && e:
		return countedLogBoth{l}
	case v:
		return countedLogVersion{l}
	case e:
		return countedLogEpoch{l}
	}
	return l
}

// lookupCount is what one kind of request cost the stores, per request.
type lookupCount struct {
	sessionReads, userReads, logReads, writes float64
}

func (l lookupCount) reads() float64 { return l.sessionReads + l.userReads + l.logReads }

// countLookups authenticates n requests with a cookie and n with a bearer
// token, spread over spread, through the same middleware, Authenticator,
// token verifier and revocation set that sesame serve wires up, over the
// store kind opened in this process with every call counted.
func countLookups(ctx context.Context, r *labRun, kind string, n int, spread time.Duration) (cookie, bearer lookupCount, err error) {
	dir, err := os.MkdirTemp("", "sesame-lab-lookup-")
	if err != nil {
		return cookie, bearer, err
	}
	defer os.RemoveAll(dir)
	s, err := r.openLabStore(ctx, kind, dir)
	if err != nil {
		return cookie, bearer, err
	}
	defer s.close()
	c := &calls{}
	sessions := countedSessions{s.sessions, c}
	users := countedUsers{s.users, c}
	now := time.Now()
	u := sesame.User{ID: sesame.NewID(), Email: "lookup-" + sesame.NewID()[:8] + "@example.com", Roles: []string{"user"}, CreatedAt: now}
	if err := s.users.CreateUser(ctx, u); err != nil {
		return cookie, bearer, err
	}
	secret, hash := sesame.NewSecret()
	if err := s.sessions.CreateSession(ctx, sesame.Session{ID: sesame.NewID(), SecretHash: hash, UserID: u.ID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(30 * time.Minute), AbsoluteExpiresAt: now.Add(12 * time.Hour), Kind: sesame.KindCookie}); err != nil {
		return cookie, bearer, err
	}
	tokSession := sesame.Session{ID: sesame.NewID(), UserID: u.ID, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(720 * time.Hour), AbsoluteExpiresAt: now.Add(720 * time.Hour), Kind: sesame.KindToken}
	_, tokSession.SecretHash = sesame.NewSecret()
	if err := s.sessions.CreateSession(ctx, tokSession); err != nil {
		return cookie, bearer, err
	}

	// Keys and verifier as serve makes them (cmd/sesame/serve.go).
	const iss = "http://sesame-lab.invalid"
	ttl := 10 * time.Minute
	master := make([]byte, 32)
	priv, k, err := token.GenerateKey(token.EdDSA, now)
	if err != nil {
		return cookie, bearer, err
	}
	if k, err = token.SealKey(master, k, priv); err != nil {
		return cookie, bearer, err
	}
	ks, err := token.NewKeySet([]sesame.SigningKey{k}, master, token.EdDSA, now, ttl)
	if err != nil {
		return cookie, bearer, err
	}
	keys := token.NewKeys(ks)
	// The set is read once and not followed: what it costs to keep it
	// current (the store's feed, in the background) is no request's
	// read, and with no bound it never refuses for being behind.
	revs := sesame.NewRevocationSet(countLog(s.revlog, c), ttl+5*time.Second+time.Minute, 0, nil)
	if err := revs.Sync(ctx); err != nil {
		return cookie, bearer, err
	}
	verifier, err := token.NewVerifier(keys, iss, iss, token.WithLeeway(5*time.Second), token.WithRevocation(revs.Revoked), token.WithCache(verifiedTokenCache))
	if err != nil {
		return cookie, bearer, err
	}
	// serve keeps a session cache for the SQL stores (serve.go's
	// sessionCacheSize); memory needs none, Redis has its own.
	cache := 0
	if kind == "sqlite" || kind == "postgres" {
		cache = 65536
	}
	lim := memstore.New()
	auth := sesame.New(sesame.Config{
		Users: users, Sessions: sessions, Audit: lim, Limiter: lim, Hasher: password.NewHasher(password.Params{}),
		Revocations: revs, SessionCache: cache,
	})
	access, err := (&token.Issuer{Keys: keys, Issuer: iss, Audience: []string{iss}, TTL: ttl}).Issue(sesame.Claims{
		Subject: u.ID, SessionID: tokSession.ID, Email: u.Email, Roles: u.Roles, IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(ttl), ID: sesame.NewID(),
	})
	if err != nil {
		return cookie, bearer, err
	}
	h := httpauth.New(httpauth.Config{Sessions: auth, Tokens: verifier, CookieName: server.CookieName}).
		RequireAny(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))

	run := func(header, value string) (lookupCount, error) {
		// One unrecorded request, so that what is cached per process
		// (the user, the verified token) counts as it does on a server
		// that has been up for a while.
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://sesame.test/v1/userinfo", nil)
		req.Header.Set(header, value)
		h.ServeHTTP(httptest.NewRecorder(), req)
		c.reset()
		tick := time.NewTicker(spread / time.Duration(n))
		defer tick.Stop()
		for range n {
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://sesame.test/v1/userinfo", nil)
			req.Header.Set(header, value)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				return lookupCount{}, fmt.Errorf("%s request: %d %s", header, w.Code, w.Body)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return lookupCount{}, ctx.Err()
			}
		}
		f := float64(n)
		return lookupCount{float64(c.sessionReads.Load()) / f, float64(c.userReads.Load()) / f, float64(c.logReads.Load()) / f, float64(c.writes.Load()) / f}, nil
	}
	if cookie, err = run("Cookie", server.CookieName+"="+secret); err != nil {
		return cookie, bearer, err
	}
	bearer, err = run("Authorization", "Bearer "+access)
	return cookie, bearer, err
}

// lookupStep measures the statelessness row: store reads per
// authenticated request, counted, and the CPU a cookie request and a
// bearer request cost the real server on each store, beside a bare
// handler.
func lookupStep(ctx context.Context, r *labRun) error {
	row := r.row("statelessness")
	n, spread := 400, 2*time.Second
	if r.quick {
		n, spread = 100, 500*time.Millisecond
	}
	counts := table{caption: fmt.Sprintf("Store calls per authenticated request (%d requests of each kind over %s, counted in the lab's process through the server's own middleware, Authenticator, verifier and revocation set)", n, spread),
		head: []string{"store", "request", "session reads", "user reads", "revocation-log reads", "all reads", "writes"}}
	var bearerReadsMax, cookieReadsMin float64 = 0, 1e9
	for _, kind := range r.stores {
		r.progress("statelessness: counting store calls on %s (%d cookie and %d bearer requests)", kind, n, n)
		ck, br, err := countLookups(ctx, r, kind, n, spread)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if r.redis != nil && kind == "redis" {
			if err := r.redis.reset(ctx); err != nil {
				return err
			}
		}
		for _, x := range []struct {
			name string
			l    lookupCount
		}{{"cookie", ck}, {"bearer", br}} {
			counts.rows = append(counts.rows, []string{kind, x.name, f2(x.l.sessionReads), f2(x.l.userReads), f2(x.l.logReads), f2(x.l.reads()), f2(x.l.writes)})
		}
		r.add("statelessness", "store reads per cookie request, "+kind, "reads/request", ck.reads(), "")
		r.add("statelessness", "store reads per bearer request, "+kind, "reads/request", br.reads(), "cookie request, "+kind, ck.reads())
		r.add("statelessness", "session-store reads per bearer request, "+kind, "reads/request", br.sessionReads, "")
		bearerReadsMax = max(bearerReadsMax, br.reads())
		cookieReadsMin = min(cookieReadsMin, ck.reads())
	}
	row.tables = append(row.tables, counts)

	// CPU on the real binary.
	d, rounds, warm := 3*time.Second, 3, time.Second
	if r.quick {
		d, rounds, warm = time.Second, 1, 300*time.Millisecond
	}
	var undo stops
	defer undo.run()
	// One server per store, started and signed in to at once (each start
	// and sign-in waits on password hashing, not on the others).
	type started struct {
		p              process
		stop           func()
		cookie, bearer string
		body, ui       []byte
		err            error
	}
	servers := make([]started, len(r.stores))
	var wg sync.WaitGroup
	r.progress("statelessness: starting sesame serve on %s", strings.Join(r.stores, ", "))
	for i, kind := range r.stores {
		wg.Go(func() {
			s := &servers[i]
			s.p, s.stop, s.err = r.server(kind, "--access-token-ttl", "1h").start(ctx)
			if s.err != nil {
				s.err = fmt.Errorf("%s: %w", kind, s.err)
				return
			}
			if s.cookie, s.body, s.err = signIn(ctx, s.p.base); s.err != nil {
				return
			}
			var tk tokens
			if tk, s.err = retryBusy(ctx, 10, func() (tokens, error) { t, _, err := passwordGrant(ctx, s.p.base); return t, err }); s.err != nil {
				return
			}
			s.bearer = "Bearer " + tk.AccessToken
			s.ui, s.err = get(ctx, s.p.base+"/v1/userinfo", "Authorization", s.bearer)
		})
	}
	wg.Wait()
	var targets []target
	for _, s := range servers {
		if s.stop != nil {
			undo.add(s.stop)
		}
	}
	for i, s := range servers {
		if s.err != nil {
			return s.err
		}
		kind := r.stores[i]
		targets = append(targets,
			newTarget("cookie, "+kind, s.p.base+"/v1/session", s.p, "Cookie", s.cookie),
			newTarget("bearer, "+kind, s.p.base+"/v1/userinfo", s.p, "Authorization", s.bearer))
	}
	sessionBody, userinfoBody, cookieHeader, bearerHeader := servers[0].body, servers[0].ui, servers[0].cookie, servers[0].bearer
	bs, stop, err := startBare(ctx, sessionBody)
	if err != nil {
		return err
	}
	undo.add(stop)
	bu, stop, err := startBare(ctx, userinfoBody)
	if err != nil {
		return err
	}
	undo.add(stop)
	targets = append([]target{
		newTarget("bare handler", bs.base+"/v1/session", bs, "Cookie", cookieHeader),
		newTarget("bare handler, userinfo body", bu.base+"/v1/userinfo", bu, "Authorization", bearerHeader),
	}, targets...)
	r.progress("statelessness: CPU per request, %d targets × %d round(s) of %s", len(targets), rounds, d)
	sums, err := comparison{targets: targets, load: goLoad(16, 2_000_000), rounds: rounds, d: d, warm: warm, per: "req"}.run(ctx, io.Discard, r.stderr)
	if err != nil {
		return err
	}
	cpu := table{caption: fmt.Sprintf("The real binary under a closed-loop load (16 connections, %d round(s) of %s, medians), beside a bare net/http handler answering the same bytes", rounds, d),
		head: []string{"target", "requests/s", "server CPU/request", "× bare CPU"}}
	var bars []bar
	bare := sums[0].server
	var cookieCPU, bearerCPU = map[string]float64{}, map[string]float64{}
	for i, t := range targets {
		us := float64(sums[i].server) / float64(time.Microsecond)
		cpu.rows = append(cpu.rows, []string{t.name, fmt.Sprintf("%.0f", sums[i].rate), fmt.Sprintf("%.0f µs", us), fmt.Sprintf("%.2f", float64(sums[i].server)/float64(bare))})
		bars = append(bars, bar{t.name, us, ""})
		if i < 2 {
			continue
		}
		kind := r.stores[(i-2)/2]
		if (i-2)%2 == 0 {
			cookieCPU[kind] = us
			r.add("statelessness", "server CPU per cookie request (GET /v1/session), "+kind, "µs", us, "bare net/http handler", float64(bare)/float64(time.Microsecond))
		} else {
			bearerCPU[kind] = us
			r.add("statelessness", "server CPU per bearer request (GET /v1/userinfo), "+kind, "µs", us, "bare net/http handler", float64(sums[1].server)/float64(time.Microsecond))
		}
	}
	row.tables = append(row.tables, cpu)
	row.plots = append(row.plots, barPlot("Server CPU per authenticated request", "µs of CPU per request (lower is better)", bars))

	first := r.stores[0]
	row.Measured = fmt.Sprintf("A cookie request made %.2f store reads or more; a bearer request made %.2f session-store reads and at most %.2f reads in all (the revocation log). CPU per request on %s: cookie %.0f µs, bearer %.0f µs, bare handler %.0f µs.",
		cookieReadsMin, 0.0, bearerReadsMax, first, cookieCPU[first], bearerCPU[first], float64(bare)/float64(time.Microsecond))
	switch {
	case bearerReadsMax < 0.1 && bearerCPU[first] < cookieCPU[first]:
		row.Verdict = "True: a bearer request reads no store and costs less CPU here."
	case bearerReadsMax < 0.1:
		row.Verdict = "Half true: a bearer request reads no session, but verifying the signature costs as much CPU as the lookup it saves."
	default:
		row.Verdict = "Half true: a bearer request reads no session, but Sesame still reads its revocation log so that revocation works; the lookup is moved, not eliminated."
	}
	row.Notes = append(row.Notes,
		"Counted per request in the lab's process over the real store code; besides these, every node reads the revocation log once a second in the background, whatever the traffic.",
		"A cookie request also writes the session's last use at most once per touch interval (1 s by default), which the writes column shows.",
		"CPU is the server process's own (user + system, /proc/PID/stat) per answered request, so the load generator sharing the cores does not count. Two cores shared with the load generator make absolute rates low; compare the ratios.")
	return nil
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
