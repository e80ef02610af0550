package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestHealthcheck: exit 0 (nil) against a live server, an error otherwise.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	if out, err := e2eCLI(e2eNoEnv, "", "healthcheck", "--url", s.base+"/healthz"); err != nil || !strings.Contains(out, "200") {
		t.Errorf("healthcheck of a live server: %q, %v; want ok", out, err)
	}
	// The default URL follows SESAME_ADDR, as serve does.
	_, port, _ := net.SplitHostPort(s.host)
	if _, err := e2eCLI(e2eEnv(map[string]string{"SESAME_ADDR": ":" + port}), "", "healthcheck"); err != nil {
		t.Errorf("healthcheck with SESAME_ADDR=:%s: %v, want ok", port, err)
	}
	if _, err := e2eCLI(e2eNoEnv, "", "healthcheck", "--url", s.base+"/no-such-path"); err == nil {
		t.Errorf("healthcheck of a 404: no error")
	}
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if _, err := e2eCLI(e2eNoEnv, "", "healthcheck", "--url", "http://"+dead+"/healthz", "--timeout", "2s"); err == nil {
		t.Errorf("healthcheck of a closed port: no error")
	}
	// A server that accepts but never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	start := time.Now()
	if _, err := e2eCLI(e2eNoEnv, "", "healthcheck", "--url", "http://"+hang.Addr().String()+"/healthz", "--timeout", "300ms"); err == nil {
		t.Errorf("healthcheck of a server that never answers: no error")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("healthcheck --timeout 300ms took %s", d)
	}
	if _, err := e2eCLI(e2eNoEnv, "", "healthcheck", "--url", "ftp://x"); err == nil {
		t.Errorf("healthcheck --url ftp://x: no error")
	}
}

func TestDefaultHealthURL(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:8080/healthz"},
		{map[string]string{"SESAME_ADDR": ":9000"}, "http://127.0.0.1:9000/healthz"},
		{map[string]string{"SESAME_ADDR": "0.0.0.0:9000"}, "http://127.0.0.1:9000/healthz"},
		{map[string]string{"SESAME_ADDR": "[::1]:9000", "SESAME_TLS_CERT": "c.pem"}, "https://[::1]:9000/healthz"},
	} {
		if got := defaultHealthURL(e2eEnv(c.env)); got != c.want {
			t.Errorf("defaultHealthURL(%v) = %s, want %s", c.env, got, c.want)
		}
	}
}

// TestListOutput: list commands print one item a line, aligned, with no
// header when the output is not a terminal, one JSON object a line with
// --json, and escape what users sent; on a terminal a header comes first.
func TestListOutput(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	a, b := e2eEmail("list-a"), e2eEmail("list-bb")
	s.mustCLI(t, e2ePassword+"\n", "user", "add", "--email", a, "--role", "admin", "--password-stdin")
	// user add prints the user as user list does.
	added := s.mustCLI(t, e2ePassword+"\n", "user", "add", "--email", b, "--password-stdin")
	if strings.Count(added, "\n") != 1 || !strings.Contains(added, b) || !strings.Contains(added, "active") {
		t.Errorf("user add printed %q, want one line like user list's", added)
	}

	out := s.mustCLI(t, "", "user", "list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || strings.Contains(out, "EMAIL") {
		t.Fatalf("user list to a pipe: want two lines and no header, got\n%s", out)
	}
	// Aligned: the column after the email starts at the same place.
	col := func(line, email string) int {
		i := strings.Index(line, email) + len(email)
		return i + len(line[i:]) - len(strings.TrimLeft(line[i:], " "))
	}
	if col(lines[0], a) != col(lines[1], b) {
		t.Errorf("user list columns are not aligned:\n%s", out)
	}
	if !strings.HasPrefix(lines[0], added[:32]) && !strings.HasPrefix(lines[1], added[:32]) {
		t.Errorf("user list lines do not start with the user ids:\n%s", out)
	}

	out = s.mustCLI(t, "", "user", "list", "--json")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("user list --json: want two lines, got\n%s", out)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("user list --json line %q: %v", l, err)
		}
		e2eKeys(t, "user list --json", m, "id", "email", "roles", "created_at", "disabled")
	}

	// A user agent with a right-to-left override and a zero-width space
	// is printed escaped.
	s.login(t, b, e2ePassword, e2eHeader("User-Agent", "evil\u202egnp.exe\u200b"))
	s.grant(t, b, e2ePassword)
	out = s.mustCLI(t, "", "sessions", "list", "--email", b)
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || strings.Contains(out, "KIND") {
		t.Fatalf("sessions list to a pipe: want two lines and no header, got\n%s", out)
	}
	if !strings.Contains(lines[0], " cookie ") || !strings.Contains(lines[1], " token ") {
		t.Errorf("sessions list does not tell the cookie session from the token family:\n%s", out)
	}
	if strings.ContainsRune(out, '\u202e') || !strings.Contains(out, `\u202e`) {
		t.Errorf("sessions list prints a right-to-left override raw:\n%q", out)
	}
	out = s.mustCLI(t, "", "sessions", "list", "--email", b, "--json")
	var kinds []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("sessions list --json line %q: %v", l, err)
		}
		e2eKeys(t, "sessions list --json", m, "id", "kind", "created_at", "last_seen_at", "expires_at", "ip", "user_agent")
		k, _ := m["kind"].(string)
		kinds = append(kinds, k)
	}
	if strings.Join(kinds, ",") != "cookie,token" {
		t.Errorf("sessions list --json kinds = %v, want cookie, token", kinds)
	}

	// On a terminal, a header first.
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	var got bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&got, ptmx); close(read) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, []string{"user", "list", "--data-dir", s.dataDir}, e2eNoEnv, strings.NewReader(""), tty, io.Discard); err != nil {
		t.Fatalf("user list on a terminal: %v", err)
	}
	tty.Close()
	<-read
	term := strings.ReplaceAll(got.String(), "\r\n", "\n")
	tl := strings.Split(strings.TrimSuffix(term, "\n"), "\n")
	if len(tl) != 3 || !strings.HasPrefix(tl[0], "ID") || !strings.Contains(tl[0], "EMAIL") {
		t.Errorf("user list on a terminal: want a header and two lines, got\n%s", term)
	}
}

// TestTerminalSeam: only a terminal is a terminal.
func TestTerminalSeam(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, f := range []any{r, w, &bytes.Buffer{}, strings.NewReader(""), (*os.File)(nil)} {
		if _, ok := terminal(f); ok {
			t.Errorf("terminal(%T) = true", f)
		}
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if _, ok := terminal(tty); !ok {
		t.Errorf("terminal(a pty) = false")
	}
}

// TestPasswordFromPipe: --password-stdin reads exactly the first line.
func TestPasswordFromPipe(t *testing.T) {
	for in, want := range map[string]string{
		"secret words\n":          "secret words",
		"secret words\r\nmore\n":  "secret words",
		"no newline at the end":   "no newline at the end",
		"  spaces kept  \nnext\n": "  spaces kept  ",
	} {
		var stderr bytes.Buffer
		got, err := readPassword(strings.NewReader(in), &stderr, true)
		if err != nil || got != want || stderr.Len() != 0 {
			t.Errorf("readPassword(%q) = %q, %v (stderr %q); want %q and no prompt", in, got, err, stderr.String(), want)
		}
	}
}

// TestServeCookieWarning: serve warns at start when browsers will drop its
// Secure cookie (plain http on a host that is not loopback) and says what
// to do; it stays quiet on the loopback default and behind https.
func TestServeCookieWarning(t *testing.T) {
	t.Parallel()
	const warning = "browsers will drop the session cookie"
	quiet := e2eStart(t)
	if log := quiet.log.String(); strings.Contains(log, warning) {
		t.Errorf("serve on 127.0.0.1 over http warns:\n%s", log)
	}
	for _, issuer := range []string{"http://sesame.test:8080", "http://192.168.1.20:8080"} {
		s := e2eStart(t, "--issuer", issuer)
		log := s.log.String()
		if !strings.Contains(log, warning) || !strings.Contains(log, "--tls-cert") || !strings.Contains(log, "--issuer https://") {
			t.Errorf("serve --issuer %s over plain http: want a warning naming --tls-cert and --issuer https://, log:\n%s", issuer, log)
		}
	}
	if s := e2eStart(t, "--issuer", "https://sesame.test"); strings.Contains(s.log.String(), warning) {
		t.Errorf("serve behind a TLS proxy (--issuer https://...) warns:\n%s", s.log)
	}
}

func TestCookieWarning(t *testing.T) {
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	all := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	lan := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8080}
	for _, c := range []struct {
		issuer string
		listen net.Addr
		warn   bool
	}{
		{"http://127.0.0.1:8080", lo, false},
		{"http://localhost:8080", lo, false},
		{"http://[::1]:8080", &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, false},
		{"http://app.localhost:8080", lo, false},
		{"https://sesame.example.com", all, false},
		{"http://localhost:8080", all, true}, // reachable by a LAN address
		{"http://10.0.0.5:8080", lan, true},
		{"http://sesame.test:8080", lo, true},
		{"http://sesame:8080", all, true}, // a Docker network name
	} {
		if got := cookieWarning(c.issuer, c.listen); (got != "") != c.warn {
			t.Errorf("cookieWarning(%s, %s) = %q, want a warning: %v", c.issuer, c.listen, got, c.warn)
		}
	}
}

// TestServeLogNamesStores: the start-up log names each store and where
// its data lives, never an empty db="".
func TestServeLogNamesStores(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	f := e2eListening(s.log.String())
	db := "sqlite " + s.dataDir + "/sesame.db"
	if f["db"] != db || f["session_store"] != db || f["master_key"] != s.dataDir+"/master.key" {
		t.Errorf("listening line: db=%q session_store=%q master_key=%q; want %q, %q and the master key's path", f["db"], f["session_store"], f["master_key"], db, db)
	}
	m := e2eStart(t, "--session-store", "memory")
	if f := e2eListening(m.log.String()); !strings.HasPrefix(f["session_store"], "memory") {
		t.Errorf("listening line with --session-store memory: session_store=%q", f["session_store"])
	}
}
