package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/publicsuffix"

	"github.com/sesameauth/sesame/forwardauth"
)

// checkCookieDomain validates --cookie-domain against the issuer and
// returns it in the form cookies carry (lower case, no leading dot). A
// public suffix ("com", "co.uk", "github.io") is refused: a cookie for it
// would reach every site under it, and browsers drop it anyway. So is a
// domain the issuer's host does not lie under: the browser would not store
// a cookie Sesame sets for it.
func checkCookieDomain(domain, issuer string) (string, error) {
	d := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(domain), "."))
	if d == "" {
		return "", nil
	}
	if strings.HasSuffix(d, ".") || strings.ContainsAny(d, ":/@ \t") || net.ParseIP(d) != nil {
		return "", usagef("--cookie-domain: %q is not a domain name like example.com", domain)
	}
	if ps, _ := publicsuffix.PublicSuffix(d); ps == d {
		return "", usagef("--cookie-domain: %q is a public suffix; give a domain you own under it, like example.%s", domain, d)
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return "", usagef("--issuer: %q is not a URL", issuer)
	}
	host := strings.ToLower(u.Hostname())
	if host != d && !strings.HasSuffix(host, "."+d) {
		return "", usagef("--cookie-domain: the issuer's host %q does not lie under %q (set --issuer to Sesame's URL under that domain)", host, d)
	}
	return d, nil
}

// accessRules holds the forward-auth rules in force: those of
// --access-rules, reloaded on SIGHUP, or the signed-in default.
type accessRules struct {
	path string
	cur  atomic.Pointer[forwardauth.Rules]
}

// loadAccessRules reads --access-rules; an error names the file, line and
// reason, and stops serve. Warnings about the file are logged.
func loadAccessRules(path string, log *slog.Logger) (*accessRules, error) {
	ar := &accessRules{path: path}
	if path == "" {
		ar.cur.Store(forwardauth.SignedInDefault())
		return ar, nil
	}
	rs, err := forwardauth.Load(path)
	if err != nil {
		return nil, usagef("--access-rules: %v", err)
	}
	ar.use(rs, log)
	return ar, nil
}

func (ar *accessRules) use(rs *forwardauth.Rules, log *slog.Logger) {
	for _, w := range rs.Warnings {
		log.Warn("access rules: " + w)
	}
	ar.cur.Store(rs)
	log.Info("access rules loaded", "file", ar.path, "rules", len(rs.Rules), "default", rs.Default.String())
}

// Load returns the rules in force.
func (ar *accessRules) Load() *forwardauth.Rules { return ar.cur.Load() }

// reloadOnHUP reloads the file on every SIGHUP until ctx ends; a file that
// does not load is refused with a log line and the rules in force stay.
// Without --access-rules it does nothing (SIGHUP keeps its default).
func (ar *accessRules) reloadOnHUP(ctx context.Context, log *slog.Logger) {
	if ar.path == "" {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			rs, err := forwardauth.Load(ar.path)
			if err != nil {
				log.Error("access rules not reloaded; the rules in force stay", "file", ar.path, "err", fmt.Sprint(err))
				continue
			}
			ar.use(rs, log)
		}
	}()
}
