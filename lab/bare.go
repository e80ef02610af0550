package lab

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sesameauth/sesame/server"
)

// bare is the hidden command "bare -body FILE": the baseline server. It
// answers every request with 200 and the bytes of FILE as
// application/json, with cmd/sesame/serve.go's http.Server settings, on a
// loopback port it logs as serve does (msg="bare listening" addr=...), until
// interrupted. Running it as a process of its own, as Sesame runs, lets the
// lab measure both servers' CPU time the same way.
func bare(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bodyFile := fs.String("body", "", "file whose bytes every answer carries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)) // serve's default: text, info
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    server.MaxHeaderBytesHard,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("bare listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.Close()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startBare starts this program's bare command, answering body, as a
// child process. stop ends it.
func startBare(ctx context.Context, body []byte) (p process, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return process{}, nil, err
	}
	dir, err := os.MkdirTemp("", "sesame-lab-bare-")
	if err != nil {
		return process{}, nil, err
	}
	file := filepath.Join(dir, "body")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		os.RemoveAll(dir)
		return process{}, nil, err
	}
	p, stopProc, err := startProcess(ctx, []string{exe, "lab", "bare", "-body", file}, nil, "bare listening", nil)
	if err != nil {
		os.RemoveAll(dir)
		return process{}, nil, err
	}
	return p, func() { stopProc(); os.RemoveAll(dir) }, nil
}
