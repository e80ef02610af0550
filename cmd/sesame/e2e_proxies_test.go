package main

// Forward authentication behind the real proxies: Debian's nginx
// (auth_request) and Caddy (forward_auth), each started here on loopback
// with its own configuration, pid and temporary files in t.TempDir(), run
// from the copy-paste configurations of examples/forward-auth, in front of
// a small upstream that records what reaches it.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame/httpauth"
)

// needProgram returns the path of a program the test needs; outside CI a
// missing one skips the test, in CI it fails it.
func needProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed; skipping (apt-get install %s)", name, name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProgram runs cmd until the test ends and waits until addr accepts
// connections.
func startProgram(t *testing.T, cmd *exec.Cmd, addr, logPath string) {
	t.Helper()
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), b)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited before listening on %s:\n%s", cmd.Path, addr, b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %s after 20s", cmd.Path, addr)
		}
	}
}

// upstreamHit is one request the application received.
type upstreamHit struct {
	path   string
	header http.Header
	claims string // the verified token's sub/sid/aud, or the error
}

// recordingUpstream is the application behind the proxy: it records every
// request and verifies its bearer token through Sesame's JWKS alone.
type recordingUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []upstreamHit
}

func newRecordingUpstream(t *testing.T, v *httpauth.RemoteVerifier) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := upstreamHit{path: r.URL.RequestURI(), header: r.Header.Clone()}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if c, err := v.Verify(r.Context(), tok); err != nil {
				h.claims = "error: " + err.Error()
			} else {
				h.claims = fmt.Sprintf("sub=%s sid=%s aud=%s", c.Subject, c.SessionID, strings.Join(c.Audience, ","))
			}
		}
		u.mu.Lock()
		u.hits = append(u.hits, h)
		u.mu.Unlock()
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// take returns and forgets what the upstream received so far.
func (u *recordingUpstream) take() []upstreamHit {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.hits
	u.hits = nil
	return h
}

// proxyCase is one proxy under test.
type proxyCase struct {
	name  string
	start func(t *testing.T, sesame, upstream string) string // returns the proxy's address
}

// readExample returns a file of examples/forward-auth with the example's
// addresses replaced by the test's.
func readExample(t *testing.T, name, sesame, upstream string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "forward-auth", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "127.0.0.1:9091", sesame)
	return strings.ReplaceAll(s, "127.0.0.1:8081", upstream)
}

func startNginx(t *testing.T, sesame, upstream string) string {
	addr := freeAddr(t)
	site := readExample(t, "nginx-app.conf", sesame, upstream)
	runNginx(t, needProgram(t, "nginx"), t.TempDir(), strings.Replace(site, "listen 80;", "listen "+addr+";", 1), addr)
	return addr
}

// runNginx runs the nginx at bin in the foreground from dir, serving site
// (a server block, as in examples/forward-auth) inside a minimal http
// block whose files all stay in dir, and waits until addr answers.
func runNginx(t *testing.T, bin, dir, site, addr string) {
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path %[1]s/client;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/app.conf;
}
`, dir)
	for name, body := range map[string]string{"app.conf": site, "nginx.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startProgram(t, exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", filepath.Join(dir, "nginx.conf")), addr, filepath.Join(dir, "out.log"))
}

func startCaddy(t *testing.T, sesame, upstream string) string {
	bin := needProgram(t, "caddy")
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	site := readExample(t, "Caddyfile", sesame, upstream)
	site = strings.Replace(site, "\napp.example.test {\n", "\nhttp://app.example.test:"+port+" {\n\tbind 127.0.0.1\n", 1)
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s/data\n}\n", dir) + site
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", filepath.Join(dir, "Caddyfile"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	startProgram(t, cmd, addr, filepath.Join(dir, "out.log"))
	return addr
}

func TestForwardAuthBehindProxies(t *testing.T) {
	for _, pc := range []proxyCase{{"nginx", startNginx}, {"caddy", startCaddy}} {
		t.Run(pc.name, func(t *testing.T) {
			rules, err := os.ReadFile(filepath.Join("..", "..", "examples", "forward-auth", "access-rules.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			s := e2eStart(t, "--access-rules", writeRules(t, string(rules)))
			up := newRecordingUpstream(t, fwdVerifier(t, s, "https://app.example.test"))
			proxy := pc.start(t, s.host, up.addr())
			testBehindProxy(t, s, up, proxy)
		})
	}
}

// testBehindProxy is the scenario of issue 10 through one proxy.
func testBehindProxy(t *testing.T, s *e2eServer, up *recordingUpstream, proxy string) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(method, uri string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, "http://"+proxy+uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "app.example.test"
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	forged := []string{
		"Remote-User", "forged-user", "Remote-Email", "root@forged.test", "Remote-Groups", "admin",
		"Remote-Session", "forged-session", "X-Forwarded-Host", "public.example.test",
		"X-Forwarded-Uri", "/public/", "X-Original-URL", "https://app.example.test/public/",
		// spelt with "_", which CGI, FastCGI and Rack read as the same variable
		"Remote_User", "forged-user", "Remote_Email", "root@forged.test", "Remote_Groups", "admin", "Remote_Session", "forged-session",
	}
	wantNotReached := func(what string) {
		t.Helper()
		if hits := up.take(); len(hits) != 0 {
			t.Errorf("%s: the upstream was reached: %+v", what, hits)
		}
	}

	// Not signed in: the sign-in page, and the upstream never reached.
	code, h, _ := get("GET", "/docs/?q=1", forged...)
	login := s.issuer + "/login?return_to="
	if code != http.StatusFound || !strings.HasPrefix(h.Get("Location"), login) || !strings.Contains(h.Get("Location"), "app.example.test%2Fdocs%2F%3Fq%3D1") {
		t.Errorf("not signed in: %d Location %q, want 302 to %s<original URL>", code, h.Get("Location"), login)
	}
	wantNotReached("not signed in")

	// A bypass path lets anyone through, with no identity, whatever the
	// client claimed.
	code, _, body := get("GET", "/public/x", append(forged, "Authorization", "Bearer forged")...)
	if code != http.StatusOK || body != "upstream ok" {
		t.Fatalf("bypass: %d %q", code, body)
	}
	for _, hit := range up.take() {
		for _, k := range []string{"Remote-User", "Remote-Email", "Remote-Groups", "Remote-Session", "Authorization"} {
			if v := hit.header.Get(k); v != "" {
				t.Errorf("bypass: the upstream got %s: %q from the client", k, v)
			}
		}
		for k, v := range hit.header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "remote-") && strings.Contains(k, "_") {
				t.Errorf("bypass: the upstream got %s: %q from the client", k, v)
			}
		}
	}

	// Signed in: the upstream gets the identity and a token it verifies.
	email, l := s.newUser(t, "proxy")
	cookies := []string{"Cookie", "theme=dark; " + e2eCookieName + "=" + l.cookie + "; lang=en", "Cookie", "__Secure-sesame=" + e2eRandomSecret()}
	code, _, body = get("GET", "/docs/", append(forged, cookies...)...)
	if code != http.StatusOK || body != "upstream ok" {
		t.Fatalf("signed in: %d %q", code, body)
	}
	hits := up.take()
	if len(hits) != 1 {
		t.Fatalf("signed in: the upstream got %d requests, want 1", len(hits))
	}
	hit := hits[0]
	for k, want := range map[string]string{
		"Remote-User": l.userID, "Remote-Email": email, "Remote-Groups": "user", "Remote-Session": l.sessionID,
	} {
		if got := hit.header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("signed in: the upstream got %s %q, want %q", k, got, want)
		}
	}
	if want := "sub=" + l.userID + " sid=" + l.sessionID + " aud=https://app.example.test"; hit.claims != want {
		t.Errorf("signed in: the upstream's token check: %q, want %q", hit.claims, want)
	}
	cookie := strings.Join(hit.header.Values("Cookie"), "; ")
	if strings.Contains(cookie, "sesame") || strings.Contains(cookie, l.cookie) || !strings.Contains(cookie, "theme=dark") || !strings.Contains(cookie, "lang=en") {
		t.Errorf("signed in: the upstream got Cookie %q, want the application's cookies and no Sesame cookie", cookie)
	}
	if hit.path != "/docs/" {
		t.Errorf("the upstream got %q, want /docs/", hit.path)
	}

	// The rules see the canonical path through the proxy too.
	for _, uri := range []string{"/admin/", "/public/../admin/", "//admin/"} {
		if code, _, _ := get("GET", uri, cookies...); code != http.StatusForbidden {
			t.Errorf("%s as a user without the admin role: %d, want 403", uri, code)
		}
	}
	if code, _, _ := get("GET", "/%2e%2e/admin/", cookies...); code < 400 {
		t.Errorf("/%%2e%%2e/admin/: %d, want an error", code)
	}
	wantNotReached("refused paths")

	// Signed out: refused again.
	s.do(t, "DELETE", "/v1/session", nil, e2eCookie(l.cookie)).want(t, http.StatusNoContent)
	if code, h, _ := get("GET", "/docs/", cookies...); code != http.StatusFound || !strings.HasPrefix(h.Get("Location"), login) {
		t.Errorf("signed out: %d Location %q, want 302 to the sign-in page", code, h.Get("Location"))
	}
	wantNotReached("signed out")
}
