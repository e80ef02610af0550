package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
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
	headerFile := fs.String("headers", "", `file of "Name: value" lines, headers every answer carries besides Content-Type`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	var extra http.Header
	if *headerFile != "" {
		b, err := os.ReadFile(*headerFile)
		if err != nil {
			return err
		}
		mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(b, '\r', '\n')))).ReadMIMEHeader()
		if err != nil {
			return fmt.Errorf("-headers: %w", err)
		}
		extra = http.Header(mh)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)) // serve's default: text, info
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for k, v := range extra {
				h[k] = v // shared, as Sesame shares its fixed header values
			}
			h.Set("Content-Type", "application/json")
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
	return startBareWithHeaders(ctx, body, nil)
}

// fixedHeaders is the headers of a Sesame answer that any handler sending
// the same headers would write too: all but those net/http adds itself.
func fixedHeaders(h http.Header) http.Header {
	h = h.Clone()
	for _, k := range []string{"Date", "Content-Length", "Content-Type"} {
		delete(h, k)
	}
	return h
}

// startBareWithHeaders is startBare, the answers also carrying headers:
// the baseline of a handler that sends the headers Sesame sends.
func startBareWithHeaders(ctx context.Context, body []byte, headers http.Header) (p process, stop func(), err error) {
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
	argv := []string{exe, "lab", "bare", "-body", file}
	if len(headers) > 0 {
		var b bytes.Buffer
		if err := headers.Write(&b); err != nil {
			os.RemoveAll(dir)
			return process{}, nil, err
		}
		hf := filepath.Join(dir, "headers")
		if err := os.WriteFile(hf, b.Bytes(), 0o600); err != nil {
			os.RemoveAll(dir)
			return process{}, nil, err
		}
		argv = append(argv, "-headers", hf)
	}
	p, stopProc, err := startProcess(ctx, argv, nil, "bare listening", nil)
	if err != nil {
		os.RemoveAll(dir)
		return process{}, nil, err
	}
	return p, func() { stopProc(); os.RemoveAll(dir) }, nil
}
