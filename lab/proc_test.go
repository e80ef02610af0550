package lab

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestListeningAddr(t *testing.T) {
	for _, tt := range []struct {
		line, msg, want string
		ok              bool
	}{
		{`time=2026-11-23T02:56:12.992Z level=INFO msg="sesame listening" addr=127.0.0.1:40489 url=http://127.0.0.1:40489 version=dev`, "sesame listening", "127.0.0.1:40489", true},
		{`time=2026-11-23T02:56:12.992Z level=INFO msg="bare listening" addr=127.0.0.1:1234`, "bare listening", "127.0.0.1:1234", true},
		{`time=2026-11-23T02:56:12.988Z level=INFO msg="made a signing key" kid=abc alg=EdDSA`, "sesame listening", "", false},
		{`level=INFO msg="bare listening" addr=127.0.0.1:1234`, "sesame listening", "", false},
		{`level=INFO msg="sesame listening" url=http://x`, "sesame listening", "", false},
	} {
		got, ok := listeningAddr(tt.line, tt.msg)
		if got != tt.want || ok != tt.ok {
			t.Errorf("listeningAddr(%q, %q) = %q, %v; want %q, %v", tt.line, tt.msg, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 50.
	line := "4242 (sesame (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 100 1000000 2000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (sesame) S 1 2")); err == nil {
		t.Error("parseStatCPU of a short line: no error")
	}
	self, err := procCPU(os.Getpid())
	if err != nil || self < 0 {
		t.Errorf("procCPU(self) = %v, %v", self, err)
	}
}

func TestReadAll(t *testing.T) {
	want := strings.Repeat("sesame ", 1000)
	for _, buf := range [][]byte{nil, make([]byte, 0, 3), make([]byte, 0, 1<<14)} {
		got, err := readAll(strings.NewReader(want), buf)
		if err != nil || string(got) != want {
			t.Errorf("readAll with cap %d: %d bytes, %v", cap(buf), len(got), err)
		}
	}
}

func TestLuaCycle(t *testing.T) {
	s := luaCycle("Authorization", "/tmp/x/values")
	for _, want := range []string{`io.lines("/tmp/x/values")`, `"Authorization"`, "i % #values + 1", "wrk.format(nil, nil, {[header] = values[i]})"} {
		if !strings.Contains(s, want) {
			t.Errorf("luaCycle: no %q in\n%s", want, s)
		}
	}
}

// TestBare starts the bare command in this process and asks it once.
func TestBare(t *testing.T) {
	body := []byte(`{"user":{"id":"x"}}`)
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	// The headers of a Sesame answer, as the headers baseline passes them:
	// those net/http writes itself are left out.
	sesameHeaders := http.Header{"Date": {"x"}, "Content-Length": {"9"}, "Content-Type": {"text/plain"},
		"X-Frame-Options": {"DENY"}, "Vary": {"Origin"}, "Cache-Control": {"no-store"}}
	var hb bytes.Buffer
	fixedHeaders(sesameHeaders).Write(&hb)
	hfile := filepath.Join(t.TempDir(), "headers")
	if err := os.WriteFile(hfile, hb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- bare(ctx, []string{"-body", file, "-headers", hfile}, pw); pw.Close() }()
	addr := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var line []byte
		for {
			n, err := pr.Read(buf)
			line = append(line, buf[:n]...)
			if a, ok := listeningAddr(string(line), "bare listening"); ok {
				addr <- a
				io.Copy(io.Discard, pr)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("bare: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("bare did not log its address")
	}
	resp, err := http.Get("http://" + a + "/v1/anything")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("bare answered %s %q %q", resp.Status, resp.Header.Get("Content-Type"), got)
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Vary": "Origin", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("bare -headers: %s is %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Date") == "x" || resp.ContentLength != int64(len(body)) {
		t.Errorf("bare -headers sent Sesame's Date or Content-Length: %v", resp.Header)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("bare after cancel: %v", err)
	}
}

// TestLoadSpec sends a handful of requests (a count, not a load) and
// checks what is counted, and that got sees every ok body.
func TestLoadSpec(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			http.Error(w, "no", http.StatusTeapot)
			return
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer srv.Close()
	var mu sync.Mutex
	seen := 0
	spec := loadSpec{
		conns: 2, d: time.Minute, max: 10, want: http.StatusOK,
		newReq: func(w int) (*http.Request, error) {
			return http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/w", nil)
		},
		got: func(w int, body []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if string(body) != "ok /w" {
				t.Errorf("worker %d got %q", w, body)
			}
			seen++
			return nil
		},
	}
	if r := spec.run(t.Context()); r.ok != 10 || r.errs != 0 || seen != 10 || len(r.lat) != 10 {
		t.Errorf("run: ok %d, errs %d, seen %d, %d latencies; want 10, 0, 10, 10", r.ok, r.errs, seen, len(r.lat))
	}
	spec.newReq = func(int) (*http.Request, error) {
		return http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/bad", nil)
	}
	if r := spec.run(t.Context()); r.ok != 0 || r.errs != 10 || r.firstErr != "418 I'm a teapot" {
		t.Errorf("run of /bad: ok %d, errs %d, first %q", r.ok, r.errs, r.firstErr)
	}
	spec.newReq = func(int) (*http.Request, error) { return nil, nil }
	if r := spec.run(t.Context()); r.ok != 0 || r.errs != 0 {
		t.Errorf("run of stopped workers: ok %d, errs %d", r.ok, r.errs)
	}
}

func TestStops(t *testing.T) {
	var got []int
	func() {
		var undo stops
		defer undo.run()
		undo.add(func() { got = append(got, 1) })
		undo.add(func() { got = append(got, 2) })
	}()
	if len(got) != 2 || got[0] != 2 || got[1] != 1 {
		t.Errorf("deferred stops ran %v, want [2 1]", got)
	}
}
