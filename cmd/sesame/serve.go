package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/pgstore"
	"github.com/sesameauth/sesame/redisstore"
	"github.com/sesameauth/sesame/server"
	"github.com/sesameauth/sesame/sqlitestore"
	"github.com/sesameauth/sesame/token"
)

// serveConfig is every flag of "sesame serve".
type serveConfig struct {
	storeFlags
	addr              string
	issuer            string
	audience          string
	idleTimeout       time.Duration
	absoluteTimeout   time.Duration
	accessTTL         time.Duration
	refreshTTL        time.Duration
	signingAlg        string
	registration      string
	allowedOrigins    string
	tlsCert, tlsKey   string
	refreshReuseGrace time.Duration
	tokenLeeway       time.Duration
	trustedProxies    string
	cookieDomain      string
	accessRules       string
	logLevel          string
	logFormat         string
	hashConcurrency   int
	shutdownTimeout   time.Duration
	accountFailures   int
	accountWindow     time.Duration
	addressFailures   int
	addressWindow     time.Duration
	auditRetention    time.Duration
	sweepInterval     time.Duration
	maxConnections    int
	ipv6Prefix        int
	metricsAddr       string
	hashQueue         int
}

// defaultAuditRetention is how long the audit log keeps an event unless
// --audit-retention says otherwise.
const defaultAuditRetention = 90 * 24 * time.Hour

func (c *serveConfig) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.storeFlags.register(fs)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (:0 picks a free port; the chosen address is logged)")
	fs.StringVar(&c.issuer, "issuer", "", "the iss of every token and the OIDC issuer (default http:// + addr)")
	fs.StringVar(&c.audience, "audience", "", "the aud of every access token (default the issuer)")
	fs.DurationVar(&c.idleTimeout, "session-idle-timeout", 30*time.Minute, "a session unused this long ends")
	fs.DurationVar(&c.absoluteTimeout, "session-absolute-timeout", 12*time.Hour, "a session ends this long after login, used or not")
	fs.DurationVar(&c.accessTTL, "access-token-ttl", 10*time.Minute, "lifetime of a JWT access token")
	fs.DurationVar(&c.refreshTTL, "refresh-token-ttl", 720*time.Hour, "lifetime of a refresh-token family from login")
	fs.StringVar(&c.signingAlg, "signing-alg", "EdDSA", "token signing algorithm: EdDSA, ES256 or RS256")
	fs.StringVar(&c.registration, "registration", "open", "open or closed (closed: only 'sesame user add' and admins create users)")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated origins allowed for CORS and cross-origin requests. The session cookie (SameSite=Lax) reaches only apps on the same site: a browser app on another site must use tokens (POST /v1/token with refresh_token_in=cookie, or bearer tokens), not the session cookie")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate file (PEM) to serve HTTPS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key file (PEM) to serve HTTPS")
	fs.DurationVar(&c.refreshReuseGrace, "refresh-reuse-grace", 0, "window in which a retired refresh token yields the same successor")
	fs.DurationVar(&c.tokenLeeway, "token-leeway", 5*time.Second, "clock skew tolerated when checking exp, nbf and iat (at most 60s)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed")
	fs.StringVar(&c.cookieDomain, "cookie-domain", "", "share the sign-in with every host under this domain (single sign-on for forward auth): the cookie becomes __Secure-sesame with Domain=; refused if a public suffix or not above the issuer's host")
	fs.StringVar(&c.accessRules, "access-rules", "", "YAML file of forward-auth rules, reloaded on SIGHUP (default: every forwarded request needs a signed-in user)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error (debug logs every request)")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.IntVar(&c.hashConcurrency, "hash-concurrency", 0, "password hashes computed at once (default: one per CPU)")
	fs.IntVar(&c.hashQueue, "hash-queue", 1024, "password hashes that may wait for a slot (each at most 2 s); beyond that, 503 at once")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on SIGINT/SIGTERM")
	fs.IntVar(&c.accountFailures, "login-account-limit", 5, "login attempts per account within --login-account-window before 429")
	fs.DurationVar(&c.accountWindow, "login-account-window", 5*time.Minute, "window of the per-account login limit")
	fs.IntVar(&c.addressFailures, "login-address-limit", 100, "failed logins per client address within --login-address-window before 429")
	fs.DurationVar(&c.addressWindow, "login-address-window", time.Minute, "window of the per-address login limit")
	fs.DurationVar(&c.auditRetention, "audit-retention", defaultAuditRetention, "how long the audit log keeps an event (0: for ever)")
	fs.DurationVar(&c.sweepInterval, "sweep-interval", time.Minute, "how often expired sessions, tokens and revocations, and audit events past --audit-retention, are deleted")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics on this address only (such as 127.0.0.1:9090), not on --addr")
	fs.IntVar(&c.ipv6Prefix, "ipv6-prefix", 64, "prefix length by which IPv6 clients are counted for --login-address-limit (128: each address)")
	fs.IntVar(&c.maxConnections, "max-connections", 10000, "connections kept open at most; at the cap the longest-idle keep-alive connection is closed first")
	return fs
}

// check validates the flags; each error names its flag.
func (c *serveConfig) check() (origins []string, proxies []netip.Prefix, err error) {
	for name, d := range map[string]time.Duration{
		"session-idle-timeout": c.idleTimeout, "session-absolute-timeout": c.absoluteTimeout,
		"access-token-ttl": c.accessTTL, "refresh-token-ttl": c.refreshTTL,
		"login-account-window": c.accountWindow, "login-address-window": c.addressWindow,
		"shutdown-timeout": c.shutdownTimeout, "sweep-interval": c.sweepInterval,
	} {
		if d <= 0 {
			return nil, nil, usagef("--%s: must be positive, got %s", name, d)
		}
	}
	if c.accessTTL < time.Second || c.refreshTTL < time.Second {
		return nil, nil, usagef("--access-token-ttl and --refresh-token-ttl must be at least 1s (tokens count whole seconds)")
	}
	if c.refreshReuseGrace < 0 {
		return nil, nil, usagef("--refresh-reuse-grace: must not be negative")
	}
	if c.auditRetention < 0 {
		return nil, nil, usagef("--audit-retention: must not be negative (0 keeps events for ever)")
	}
	if c.tokenLeeway < 0 || c.tokenLeeway > 60*time.Second {
		return nil, nil, usagef("--token-leeway: must be between 0s and 60s, got %s", c.tokenLeeway)
	}
	switch c.signingAlg {
	case "EdDSA", "ES256", "RS256":
	default:
		return nil, nil, usagef("--signing-alg: want EdDSA, ES256 or RS256, got %q", c.signingAlg)
	}
	switch c.registration {
	case "open", "closed":
	default:
		return nil, nil, usagef("--registration: want open or closed, got %q", c.registration)
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return nil, nil, usagef("--log-format: want text or json, got %q", c.logFormat)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, nil, usagef("--tls-cert and --tls-key go together")
	}
	if c.hashQueue < 0 {
		return nil, nil, usagef("--hash-queue: must not be negative, got %d", c.hashQueue)
	}
	if c.ipv6Prefix < 1 || c.ipv6Prefix > 128 {
		return nil, nil, usagef("--ipv6-prefix: want 1 to 128, got %d", c.ipv6Prefix)
	}
	if c.maxConnections < 1 {
		return nil, nil, usagef("--max-connections: must be at least 1, got %d", c.maxConnections)
	}
	if c.hashConcurrency < 0 || c.accountFailures < 1 || c.addressFailures < 1 {
		return nil, nil, usagef("--hash-concurrency, --login-account-limit and --login-address-limit must be positive")
	}
	for _, o := range splitList(c.allowedOrigins) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return nil, nil, usagef("--allowed-origins: %q is not an origin like https://app.example.com", o)
		}
		origins = append(origins, o)
	}
	for _, p := range splitList(c.trustedProxies) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, nil, usagef("--trusted-proxies: %q is not a CIDR like 10.0.0.0/8", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, pfx.Masked())
	}
	if c.issuer != "" {
		if u, err := url.Parse(c.issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, usagef("--issuer: %q is not an http(s) URL", c.issuer)
		}
	}
	return origins, proxies, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: want debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// serve runs the server until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return serveWith(ctx, args, getenv, stderr, nil)
}

// serveWith is serve that calls listening, if not nil, with the issuer
// once the server answers ("sesame demo" starts its bank then).
func serveWith(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, listening func(issuer string)) error {
	var c serveConfig
	if err := parseFlags(c.flagSet(stderr), args, getenv); err != nil {
		return err
	}
	origins, proxies, err := c.check()
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	var cert tls.Certificate
	if c.tlsCert != "" {
		if cert, err = tls.LoadX509KeyPair(c.tlsCert, c.tlsKey); err != nil {
			return usagef("--tls-cert/--tls-key: %v", err)
		}
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return usagef("--addr: %v", err)
	}
	defer ln.Close()
	var metricsLn net.Listener
	if c.metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", c.metricsAddr); err != nil {
			return usagef("--metrics-addr: %v", err)
		}
		defer metricsLn.Close()
	}

	st, err := c.storeFlags.open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing stores", "err", err)
		}
	}()
	setLogRetention(st.sessions, c.accessTTL+c.tokenLeeway+time.Minute)

	issuer := c.issuer
	if issuer == "" {
		issuer = defaultIssuer(ln.Addr(), c.tlsCert != "")
	}
	audience := c.audience
	if audience == "" {
		audience = issuer
	}
	cookieDomain, err := checkCookieDomain(c.cookieDomain, issuer)
	if err != nil {
		return err
	}
	rules, err := loadAccessRules(c.accessRules, log)
	if err != nil {
		return err
	}
	master, err := masterKey(c.dataDir, getenv)
	if err != nil {
		return err
	}
	succKey, err := successorKey(master)
	if err != nil {
		return err
	}
	// A retired key stays published as long as a token it signed may live:
	// the access-token TTL, the leeway, and the time other nodes may still
	// sign with it after it was retired (until the new key signs, plus a
	// poll for a node whose timer or read was late).
	retain := c.accessTTL + c.tokenLeeway + keySignsWithin + keyPollInterval
	keySet, err := loadKeySet(ctx, st.keys, master, c.signingAlg, retain, true, log)
	if errors.Is(err, token.ErrSealedKey) {
		return masterKeyMismatch(err)
	}
	if err != nil {
		return fmt.Errorf("signing keys (--db): %w", err)
	}
	keys := token.NewKeys(keySet)
	loader := &keyLoader{store: st.keys, holder: keys, master: master, alg: c.signingAlg, retain: retain, log: log}
	// The node's one revocation set: every bearer and cookie verdict asks
	// it, with no store read; the store's feed keeps it current (see Run
	// below). Entries stay until their last access token has expired; a set
	// more than revocationLag behind the store answers 503, not a guess.
	revs := sesame.NewRevocationSet(st.sessions, c.accessTTL+c.tokenLeeway+time.Minute, revocationLag, nil)
	if err := revs.Sync(ctx); err != nil {
		return fmt.Errorf("--session-store: reading revocations: %w", err)
	}
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed() // before the stores close
	go revs.Run(feedCtx, func(err error) { log.Warn("revocation feed", "err", err) })
	verifier, err := token.NewVerifier(keys, issuer, audience,
		token.WithLeeway(c.tokenLeeway), token.WithRevocation(revs.Revoked), token.WithCache(16384),
		token.WithUnknownKID(loader.unknownKID))
	if err != nil {
		return err
	}

	hopts := []password.Option{password.MaxQueue(c.hashQueue)}
	if c.hashConcurrency > 0 {
		hopts = append(hopts, password.Concurrency(c.hashConcurrency))
	}
	hasher := password.NewHasher(password.Params{}, hopts...)
	auth := sesame.New(sesame.Config{
		Users: st.users, Sessions: st.sessions, Audit: st.audit, Limiter: st.limiter, Hasher: hasher,
		IdleTimeout: c.idleTimeout, AbsoluteTimeout: c.absoluteTimeout,
		AccountMaxFailures: c.accountFailures, AccountWindow: c.accountWindow,
		AddressMaxFailures: c.addressFailures, AddressWindow: c.addressWindow, IPv6Prefix: c.ipv6Prefix,
		Revocations: revs, SessionCache: sessionCacheSize(st.sessions),
		Logger: log,
	})
	if err := auth.Prepare(ctx); err != nil {
		return fmt.Errorf("preparing the password hasher: %w", err)
	}
	tokenIssuer := &token.Issuer{Keys: keys, Issuer: issuer, Audience: []string{audience}, TTL: c.accessTTL}
	grants, err := sesame.NewGrants(auth, sesame.GrantsConfig{
		Backend: st.sessions, Issuer: tokenIssuer, Verifier: verifier,
		RefreshTokenTTL: c.refreshTTL, RefreshReuseGrace: c.refreshReuseGrace, SuccessorKey: succKey,
	})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	conns := server.NewConnLimit(c.maxConnections)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sesame_http_connections_open",
			Help: "Client connections open (at most --max-connections).",
		}, func() float64 { return float64(conns.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sesame_http_connections_idle_closed_total",
			Help: "Idle keep-alive connections closed because --max-connections was reached.",
		}, func() float64 { return float64(conns.IdleClosed()) }),
	)
	h, err := server.NewServer(server.Deps{
		Auth: auth, Grants: grants, LiveSessions: liveSessions(st.sessions), Hasher: hasher,
		Logger: log, Registry: reg, MetricsElsewhere: metricsLn != nil, Ready: append(st.pingers, revs), Registration: c.registration,
		AllowedOrigins: origins, TrustedProxies: proxies, TLS: c.tlsCert != "",
		Verifier: verifier, JWKS: func() []byte { return keys.Load().JWKS() },
		Issuer: issuer, SigningAlg: c.signingAlg,
		TokenIssuer: tokenIssuer, CookieDomain: cookieDomain, AccessRules: rules.Load,
	})
	if err != nil {
		return usagef("--allowed-origins: %v", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    server.MaxHeaderBytesHard, // the handler refuses above 64 KiB, with a JSON body
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnState:         conns.ConnState,
	}
	capped := conns.Listener(ln)
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go sweep(sweepCtx, log, st.sweepers, st.audit, c.auditRetention, c.sweepInterval)
	go loader.run(sweepCtx)
	rules.reloadOnHUP(sweepCtx, log)

	errc := make(chan error, 1)
	go func() {
		if c.tlsCert != "" {
			errc <- srv.ServeTLS(capped, "", "")
		} else {
			errc <- srv.Serve(capped)
		}
	}()
	if metricsLn != nil {
		stopMetrics := serveMetrics(metricsLn, reg, log)
		defer stopMetrics()
	}
	log.Info("sesame listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(), "version", versionString(),
		"issuer", issuer, "signing_alg", c.signingAlg, "kid", keySet.Current().ID,
		"db", st.db, "session_store", st.sessionStore, "master_key", masterKeySource(c.dataDir, getenv), "registration", c.registration)
	if c.tlsCert == "" {
		if warning := cookieWarning(issuer, ln.Addr()); warning != "" {
			log.Warn("browsers will drop the session cookie", "why", warning,
				"fix", "serve HTTPS with --tls-cert and --tls-key, or put a TLS proxy in front and set --issuer https://<the host browsers use>")
		}
	}
	if listening != nil {
		listening(issuer)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", c.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("server stopped", "err", err)
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves /metrics (only) on ln until the returned function is
// called. The listener is plain HTTP: put it on a private address.
func serveMetrics(ln net.Listener, reg *prometheus.Registry, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", server.MetricsHandler(reg))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { srv.Close() }
}

// sessionCacheSize is how many sessions a node keeps in memory for the
// cookie path: for the SQL stores, which have no cache of their own (the
// memory store is one; redisstore keeps Redis's client-side cache).
func sessionCacheSize(s sesame.SessionStore) int {
	switch s.(type) {
	case *sqlitestore.Store, *pgstore.Store:
		return 65536
	}
	return 0
}

// revocationLag is how far behind the store a node's revocation set may
// fall before the node answers 503: API.md's "within a second on every
// other node".
const revocationLag = time.Second

// defaultIssuer is http(s):// + the address listened on; an unspecified
// host (":8080", "0.0.0.0:8080") becomes localhost.
func defaultIssuer(a net.Addr, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return scheme + a.String()
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + net.JoinHostPort(host, port)
}

// setLogRetention makes the revocation log keep a revocation at least as
// long as an access token of its session may live (and never less than the
// stores' 24 h default): a node started later must still learn of it.
func setLogRetention(log sesame.RevocationLog, atLeast time.Duration) {
	r := max(sesame.DefaultRevocationRetention, atLeast)
	switch s := log.(type) {
	case *sqlitestore.Store:
		s.RevocationRetention = r
	case *pgstore.Store:
		s.RevocationRetention = r
	case *redisstore.Store:
		s.RevocationRetention = r
	case *memstore.Store:
		s.RevocationRetention = r
	}
}

// liveSessions is the session store's counter, if it has one.
func liveSessions(s sesame.SessionBackend) sesame.SessionCounter {
	c, _ := s.(sesame.SessionCounter)
	return c
}

// sweep asks the stores to forget what has expired, and the audit log the
// events older than retention (unless it is 0), every interval.
func sweep(ctx context.Context, log *slog.Logger, sweepers []sesame.Sweeper, audit sesame.AuditLog, retention, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range sweepers {
			if n, err := s.DeleteExpired(ctx); err != nil {
				log.Warn("sweeping expired records", "err", err)
			} else if n > 0 {
				log.Debug("swept expired records", "n", n)
			}
		}
		if retention <= 0 {
			continue
		}
		if n, err := audit.DeleteEventsBefore(ctx, time.Now().Add(-retention)); err != nil {
			log.Warn("deleting audit events past --audit-retention", "err", err)
		} else if n > 0 {
			log.Debug("deleted audit events past --audit-retention", "n", n)
		}
	}
}

// masterKeySource says where the master key comes from, for the log.
func masterKeySource(dataDir string, getenv func(string) string) string {
	if getenv("SESAME_MASTER_KEY") != "" {
		return "SESAME_MASTER_KEY"
	}
	abs, err := filepath.Abs(filepath.Join(dataDir, "master.key"))
	if err != nil {
		return filepath.Join(dataDir, "master.key")
	}
	return abs
}

// cookieWarning explains why browsers will refuse the session cookie, or
// returns "" when they will take it. The cookie is Secure (its __Host-
// prefix demands it), and browsers keep a Secure cookie sent over plain
// http only from a loopback host (localhost, 127.0.0.0/8, ::1): reached
// through any other name or address, a login answers 201 and the browser
// silently drops its cookie. Without TLS of its own, the server is safe
// only when the issuer (the URL people use) is https (a TLS proxy in
// front) or names a loopback host that it listens on alone.
func cookieWarning(issuer string, listen net.Addr) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	if !loopbackHost(u.Hostname()) {
		return "the issuer " + issuer + " is plain http on a host that is not loopback: browsers keep Secure cookies over http only from localhost and 127.0.0.1"
	}
	if host, _, err := net.SplitHostPort(listen.String()); err == nil && !loopbackHost(host) {
		return "listening on " + listen.String() + " over plain http: a browser that reaches it by any address but localhost or 127.0.0.1 drops the Secure session cookie"
	}
	return ""
}

// loopbackHost reports whether browsers treat host as loopback (a
// "potentially trustworthy" origin even over http).
func loopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}
