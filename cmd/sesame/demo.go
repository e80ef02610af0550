package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sesameauth/sesame/demo/bank"
	"github.com/sesameauth/sesame/httpauth"
)

// The demo account "sesame demo" creates.
const (
	demoEmail    = "demo@abc-bank.test"
	demoPassword = "open sesame, demo"
)

// demo runs the seed's ABC Bank: Sesame on in-memory stores on a port of
// its own, and the bank at --addr relying on it, until ctx ends.
func demo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "the bank's listen address (Sesame takes a free port on the same host)")
	if err := fs.Parse(args); err != nil {
		return usagef("demo: %v", err)
	}
	if fs.NArg() > 0 {
		return usagef("demo: unexpected argument %q", fs.Arg(0))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return usagef("--addr: %v", err)
	}
	defer ln.Close()
	// Sesame and the bank share the host name: cookies do not see ports,
	// and browsers treat only localhost and 127.0.0.1 as secure over http.
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	self := "http://" + net.JoinHostPort(host, port)

	var master [32]byte
	rand.Read(master[:])
	env := func(k string) string {
		if k == "SESAME_MASTER_KEY" {
			return base64.StdEncoding.EncodeToString(master[:])
		}
		return ""
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	issuerc := make(chan string, 1)
	servec := make(chan error, 1)
	go func() {
		servec <- serveWith(ctx, []string{
			"--addr", net.JoinHostPort(host, "0"), "--db", "memory", "--session-store", "memory",
			"--allowed-origins", self, "--access-token-ttl", "2m", "--log-level", "warn",
		}, env, stderr, func(issuer string) { issuerc <- issuer })
	}()
	var issuer string
	select {
	case issuer = <-issuerc:
	case err := <-servec:
		return fmt.Errorf("demo: starting Sesame: %w", err)
	case <-ctx.Done():
		return nil
	}

	client := &http.Client{Timeout: 5 * time.Second}
	if err := demoSeed(ctx, client, issuer); err != nil {
		return err
	}
	rv, err := httpauth.NewRemoteVerifier(ctx, issuer, issuer, httpauth.WithInsecureHTTP(), httpauth.WithHTTPClient(client))
	if err != nil {
		return fmt.Errorf("demo: the bank fetching Sesame's keys: %w", err)
	}
	b, err := bank.New(bank.Config{Sesame: issuer, Self: self, Tokens: rv, Client: client,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 5 * time.Second}
	bankc := make(chan error, 1)
	go func() { bankc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "ABC Bank:  %s/\nSesame:    %s/login\nSign in as %s with the password %q\nCtrl-C stops both (nothing is kept).\n",
		self, issuer, demoEmail, demoPassword)

	select {
	case err = <-servec:
		err = fmt.Errorf("demo: Sesame stopped: %w", err)
	case err = <-bankc:
		err = fmt.Errorf("demo: the bank stopped: %w", err)
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	cancel()
	if serr := <-servec; err == nil && serr != nil {
		err = serr
	}
	return err
}

// demoSeed creates the demo account through Sesame's API, as any client
// would.
func demoSeed(ctx context.Context, client *http.Client, issuer string) error {
	body, _ := json.Marshal(map[string]string{"email": demoEmail, "password": demoPassword})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/v1/users", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("demo: creating the demo account: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return errors.New("demo: creating the demo account: " + res.Status + ": " + strings.TrimSpace(string(msg)))
	}
	return nil
}
