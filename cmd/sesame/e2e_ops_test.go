package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EOperations covers /healthz, /readyz, /metrics and the JSON bodies
// of unknown paths and wrong methods.
func TestE2EOperations(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	s.newUser(t, "ops")

	s.do(t, "GET", "/healthz", nil).want(t, http.StatusOK)
	ready := s.do(t, "GET", "/readyz", nil).want(t, http.StatusOK).json(t)
	// The revocation feed's lag: how far behind the store this node may
	// be (SQLite: polled every 100 ms), never past its one-second bound
	// on a ready node.
	if lag, ok := ready["revocation_feed_lag_ms"].(float64); !ok || lag < 0 || lag > 1000 {
		t.Errorf("/readyz: revocation_feed_lag_ms %v, want a number of milliseconds within the 1 s bound; body %v", ready["revocation_feed_lag_ms"], ready)
	}

	r := s.do(t, "GET", "/metrics", nil).want(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("/metrics Content-Type %q, want Prometheus text", ct)
	}
	for _, name := range []string{"sesame_http_requests_total", "sesame_logins_total", "sesame_sessions_live", "sesame_password_hashes_waiting"} {
		if !bytes.Contains(r.body, []byte("\n"+name)) && !bytes.HasPrefix(r.body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
		if !bytes.Contains(r.body, []byte("# TYPE "+name+" ")) {
			t.Errorf("/metrics lacks a # TYPE line for %s", name)
		}
	}
	if !bytes.Contains(r.body, []byte(`sesame_logins_total{outcome="succeeded"} 1`)) {
		t.Errorf("/metrics: want one successful login counted")
	}

	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"GET", "/v1/nope", 404, "not_found"},
		{"GET", "/v1/sessions/x/y", 404, "not_found"},
		{"DELETE", "/nope", 404, "not_found"},
		{"DELETE", "/", 405, ""}, // GET / sends a browser to /account
		{"PUT", "/v1/session", 405, ""},
		{"GET", "/v1/users", 405, ""},
		{"PATCH", "/healthz", 405, ""},
		{"GET", "/v1/password", 405, ""},
	} {
		r := s.do(t, c.method, c.path, nil).want(t, c.status)
		if c.code != "" && r.errorCode() != c.code {
			t.Errorf("%s %s: error %q, want %q", c.method, c.path, r.errorCode(), c.code)
		}
		if c.status == 405 && r.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

// TestE2EOversizedHeaders sends a request whose headers are too large
// (a 100 KB cookie): it is refused with a 4xx that, like every error,
// carries the JSON error body.
func TestE2EOversizedHeaders(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	r := s.do(t, "GET", "/v1/session", nil, e2eHeader("Cookie", e2eCookieName+"="+strings.Repeat("A", 100<<10)))
	if r.status < 400 || r.status > 499 {
		t.Errorf("100 KB Cookie header: status %d, want a 4xx", r.status)
	}
	s.do(t, "GET", "/healthz", nil).want(t, http.StatusOK)
}

// TestE2EBadFlags checks that a bad flag or an unusable store makes run
// fail quickly with an error naming it, without serving.
func TestE2EBadFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--addr", "nonsense:xx:yy"}, want: "--addr"},
		{args: []string{"--signing-alg", "HS256"}, want: "signing-alg"},
		{args: []string{"--signing-alg", "none"}, want: "signing-alg"},
		{args: []string{"--registration", "maybe"}, want: "registration"},
		{args: []string{"--token-leeway", "2m"}, want: "token-leeway"},
		{args: []string{"--session-idle-timeout", "soon"}, want: "session-idle-timeout"},
		{args: []string{"--session-absolute-timeout", "-1s"}, want: "session-absolute-timeout"},
		{args: []string{"--allowed-origins", "*"}, want: "allowed-origins"},
		{args: []string{"--trusted-proxies", "everyone"}, want: "trusted-proxies"},
		{args: []string{"--no-such-flag"}, want: "no-such-flag"},
		{args: []string{"--db", "sqlite:/proc/forbidden/x.db"}, want: "--db"},
		{args: []string{"--db", "mysql://x"}, want: "--db"},
		{env: map[string]string{"SESAME_REGISTRATION": "maybe"}, want: "registration|REGISTRATION"},
		{env: map[string]string{"SESAME_TOKEN_LEEWAY": "2m"}, want: "token-leeway|TOKEN_LEEWAY"},
		{env: map[string]string{"SESAME_SESSION_IDLE_TIMEOUT": "soon"}, want: "session-idle-timeout|SESSION_IDLE_TIMEOUT"},
	} {
		t.Run(strings.Join(c.args, " ")+strings.Join(e2eMapKeys(c.env), " "), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr e2eLog
			args := append([]string{"serve", "--data-dir", t.TempDir()}, c.args...)
			if !e2eHasFlag(c.args, "--addr") {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			start := time.Now()
			err := run(ctx, args, e2eEnv(c.env), strings.NewReader(""), &bytes.Buffer{}, &stderr)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("run took %v to fail, want within seconds", took)
			}
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error naming %s", args, c.want)
			}
			named := false
			for _, w := range strings.Split(c.want, "|") {
				named = named || strings.Contains(err.Error(), w)
			}
			if !named {
				t.Errorf("run(%q) = %q, want it to name %s", args, err, c.want)
			}
			for _, bad := range []string{"goroutine", "panic", ".go:"} {
				if strings.Contains(err.Error(), bad) || strings.Contains(stderr.String(), bad) {
					t.Errorf("error output contains %q: %v\n%s", bad, err, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "sesame listening") {
				t.Errorf("run logged that it was listening despite the bad configuration")
			}
		})
	}
}

func e2eMapKeys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func e2eHasFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f || strings.HasPrefix(a, f+"=") {
			return true
		}
	}
	return false
}

// TestE2EEnvironment checks the SESAME_ environment fallback and that a
// flag beats it.
func TestE2EEnvironment(t *testing.T) {
	t.Parallel()
	t.Run("SESAME_ADDR and SESAME_DATA_DIR used", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := e2eStartWith(t, "", dir, []string{"serve"}, e2eEnv(map[string]string{
			"SESAME_ADDR": "127.0.0.1:0", "SESAME_DATA_DIR": dir,
		}))
		if strings.HasSuffix(s.host, ":8080") {
			t.Errorf("listening on %s: SESAME_ADDR=127.0.0.1:0 was not used", s.host)
		}
		s.do(t, "GET", "/healthz", nil).want(t, http.StatusOK)
		if _, err := os.Stat(filepath.Join(dir, "sesame.db")); err != nil {
			t.Errorf("SESAME_DATA_DIR not used: %v", err)
		}
	})
	t.Run("flag beats environment", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := e2eStartWith(t, "", dir, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--registration", "open"},
			e2eEnv(map[string]string{"SESAME_ADDR": "nonsense:xx:yy", "SESAME_REGISTRATION": "closed"}))
		s.do(t, "GET", "/healthz", nil).want(t, http.StatusOK)
		s.do(t, "POST", "/v1/users", map[string]string{"email": "x@x.test", "password": "short"}).
			want(t, http.StatusBadRequest, "invalid_request") // not 403 registration_closed
	})
	t.Run("SESAME_REGISTRATION used", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := e2eStartWith(t, "", dir, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir},
			e2eEnv(map[string]string{"SESAME_REGISTRATION": "closed"}))
		s.do(t, "POST", "/v1/users", map[string]string{"email": "x@x.test", "password": "short"}).
			want(t, http.StatusForbidden, "registration_closed")
	})
}
