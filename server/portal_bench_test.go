package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
)

// BenchmarkPortal compares each page with its JSON equivalent in the same
// run (docs/BENCHMARKS.md): GET /account against GET /v1/sessions (both
// signed in as the same user, the same three sessions listed, through the
// whole server with its middleware), and POST /login against POST
// /v1/session (password.Fast, so the hash does not hide the rest; with
// SESAME_BENCH_ARGON2=1, the default argon2id parameters a server uses).
//
// Answers go to a writer that keeps the status and counts the body, as a
// server's connection does with its reused buffer: httptest's recorder
// would add, to each side, a growing body buffer and a copy of every
// header, which costs the bigger answer (the page) more.
func BenchmarkPortal(b *testing.B) {
	st := memstore.New()
	params := password.Fast
	if os.Getenv("SESAME_BENCH_ARGON2") != "" {
		params = password.Params{}
	}
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(params),
		AccountMaxFailures: 1 << 30, AddressMaxFailures: 1 << 30})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	auth.Register(ctx, "a@x.test", "password one", nil)
	var secret string
	for _, c := range []sesame.Client{
		{IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"},
		{IP: "2001:db8::1", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		{IP: "127.0.0.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
	} {
		l, err := auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one", Client: c})
		if err != nil {
			b.Fatal(err)
		}
		secret = l.Secret
	}
	get := func(path string) func(b *testing.B) {
		return func(b *testing.B) {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Cookie", server.CookieName+"="+secret)
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				w := &discardWriter{header: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.n == 0 {
					b.Fatal(w.code, w.n)
				}
			}
			reportCPU(b, cpu)
		}
	}
	post := func(path, ct, body string, want int) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				req := httptest.NewRequest("POST", path, strings.NewReader(body))
				req.Header.Set("Content-Type", ct)
				w := &discardWriter{header: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != want {
					b.Fatal(w.code)
				}
			}
			reportCPU(b, cpu)
		}
	}
	b.Run("GET_v1_sessions", get("/v1/sessions"))
	b.Run("GET_account", get("/account"))
	b.Run("POST_v1_session", post("/v1/session", "application/json", `{"email":"a@x.test","password":"password one"}`, http.StatusCreated))
	b.Run("POST_login", post("/login", "application/x-www-form-urlencoded", "email=a%40x.test&password=password+one", http.StatusSeeOther))
}

// processCPU is the CPU time (user and system) this process has used:
// on a shared machine, the CPU a request costs varies far less than the
// time it takes, and it counts the collector's work on other threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since from.
func reportCPU(b *testing.B, from time.Duration) {
	b.ReportMetric(float64(processCPU()-from)/float64(b.N), "cpu-ns/op")
}

// discardWriter is an http.ResponseWriter that keeps the status and the
// number of body bytes.
type discardWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
