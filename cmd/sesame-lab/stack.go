package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
	"github.com/sesameauth/sesame/sqlitestore"
)

// newSesame assembles Sesame as "sesame serve --data-dir dir
// --session-store S" does (cmd/sesame/serve.go and flags.go): users and the
// audit log in SQLite at dir/sesame.db; sessions in memory ("memory") or in
// that same SQLite file ("sqlite"); login throttling counters in memory;
// the default argon2id hasher at one hash per CPU; Prometheus metrics with
// the Go and process collectors. tune, if not nil, adjusts the
// Authenticator's Config as serve's flags would. closeStores releases the
// stores.
//
// Left out, because no request measured here reaches it: the access-token
// machinery (signing keys, verifier, refresh families, revocation set),
// which only bearer tokens and the token endpoints use, and the periodic
// sweep of expired records, which runs once a minute. The wiring is
// copied because serve's lives in package main: when serve changes, this
// must follow.
func newSesame(ctx context.Context, dir, store string, log *slog.Logger, tune func(*sesame.Config)) (h http.Handler, closeStores func() error, err error) {
	db, err := sqlitestore.Open(ctx, filepath.Join(dir, "sesame.db"))
	if err != nil {
		return nil, nil, err
	}
	var sessions sesame.SessionStore
	switch store {
	case "memory":
		sessions = memstore.New()
	case "sqlite":
		sessions = db
	default:
		db.Close()
		return nil, nil, fmt.Errorf("-store: want memory or sqlite, got %q", store)
	}
	hasher := password.NewHasher(password.Params{})
	cfg := sesame.Config{
		Users: db, Sessions: sessions, Audit: db, Limiter: memstore.New(), Hasher: hasher,
		Logger: log,
	}
	if tune != nil {
		tune(&cfg)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err = server.NewServer(server.Deps{
		Auth: sesame.New(cfg), Users: db, Sessions: sessions, Audit: db, Hasher: hasher,
		Logger: log, Registry: reg, Ready: []sesame.Pinger{db}, Registration: "open",
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return h, db.Close, nil
}

// startServer serves h on a fresh loopback port with the http.Server
// settings of cmd/sesame/serve.go, and returns its base URL. stop closes
// the server at once.
func startServer(h http.Handler, log *slog.Logger) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    server.MaxHeaderBytesHard,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// signIn registers email with password at the Sesame server at base (201, or
// 409 if it exists already), logs in, and returns the session cookie as a
// Cookie header value and the body of GET /v1/session with it.
func signIn(ctx context.Context, base, email, pw string) (cookie string, body []byte, err error) {
	creds, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	post := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(creds))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		return http.DefaultClient.Do(req)
	}
	resp, err := post("/v1/users")
	if err != nil {
		return "", nil, fmt.Errorf("register: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		return "", nil, fmt.Errorf("register: %s", resp.Status)
	}
	if resp, err = post("/v1/session"); err != nil {
		return "", nil, fmt.Errorf("login: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", nil, fmt.Errorf("login: %s", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == server.CookieName {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		return "", nil, errors.New("login: no session cookie in the answer")
	}
	// The cookie is __Host- and Secure, which a client keeps off plain
	// HTTP; it is sent by hand, as wrk sends it.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/session", nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Cookie", cookie)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		return "", nil, fmt.Errorf("get session: %w", err)
	}
	defer resp.Body.Close()
	if body, err = io.ReadAll(resp.Body); err != nil {
		return "", nil, fmt.Errorf("get session: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("get session: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return cookie, body, nil
}
