package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// healthcheck asks a running server's /healthz and succeeds only on 200:
// a container's HEALTHCHECK, where a FROM scratch image has no curl.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		target   string
		timeout  time.Duration
		insecure bool
	)
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&target, "url", "", "what to ask (default http://127.0.0.1:8080/healthz, or the port of SESAME_ADDR, https with SESAME_TLS_CERT)")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	fs.BoolVar(&insecure, "insecure", false, "accept any TLS certificate (for a check over loopback of a certificate issued for another name)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if target == "" {
		target = defaultHealthURL(getenv)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("healthcheck: --url %q is not an http(s) URL", target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usagef("healthcheck: --url: %v", err)
	}
	req.Header.Set("User-Agent", "sesame-healthcheck")
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %s: %w", target, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", target, resp.Status)
	}
	fmt.Fprintf(stdout, "ok: %s answered %s\n", target, resp.Status)
	return nil
}

// defaultHealthURL is /healthz on this machine at the port serve would
// listen on, given the same environment.
func defaultHealthURL(getenv func(string) string) string {
	scheme := "http"
	if getenv("SESAME_TLS_CERT") != "" {
		scheme = "https"
	}
	host, port := "127.0.0.1", "8080"
	if addr := getenv("SESAME_ADDR"); addr != "" {
		if h, p, err := net.SplitHostPort(addr); err == nil {
			port = p
			if ip, err := netip.ParseAddr(h); err == nil && !ip.IsUnspecified() {
				host = h
			} else if err != nil && h != "" {
				host = h
			}
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
}
