// Package server is Sesame's HTTP API: NewServer returns an http.Handler
// that serves every endpoint of the public contract (docs/API.md) over an
// Authenticator and its stores. The routes are listed in routes.go; each
// handler is made by a function that does its setup once.
package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/forwardauth"
	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/web"
)

// CookieName is the session cookie's name. The __Host- prefix makes
// browsers insist on Secure, Path=/ and no Domain, so no sibling subdomain
// can set or shadow it.
const CookieName = httpauth.DefaultCookieName

// DomainCookieName is the session cookie's name with Deps.CookieDomain: the
// __Secure- prefix allows a Domain attribute (browsers still insist on
// Secure), so every host under the domain receives it.
const DomainCookieName = "__Secure-sesame"

// Deps is everything the server needs: the services it answers with, not
// the stores behind them. Auth is required.
type Deps struct {
	// Auth registers users, signs them in, authenticates cookies, ends
	// sessions and reads users and the audit log for the admin routes.
	Auth *sesame.Authenticator
	// Grants serve POST /v1/token and /v1/token/revoke; without them those
	// answer 503.
	Grants *sesame.Grants
	// LiveSessions counts live sessions for the sesame_sessions_live gauge
	// (optional).
	LiveSessions sesame.SessionCounter
	// Hasher, if it says how busy it is (HashStats, as password.Hasher
	// does), feeds the hashing gauges (optional).
	Hasher sesame.Hasher
	Logger *slog.Logger
	// Registry receives the server's metrics; /metrics serves it. A fresh
	// one (with the Go and process collectors) if nil.
	Registry *prometheus.Registry
	// MetricsElsewhere leaves /metrics off the API (404): the caller
	// serves the Registry on a listener of its own (MetricsHandler).
	MetricsElsewhere bool
	// Ready lists what /readyz asks: every store that implements
	// sesame.Pinger.
	Ready []sesame.Pinger
	// Registration is "open" (default) or "closed".
	Registration string
	// AllowedOrigins may make credentialed cross-origin requests.
	AllowedOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// TLS marks the server as serving HTTPS (adds HSTS).
	TLS bool
	// CookieDomain, if set, shares the sign-in with every host under it
	// (single sign-on for forward auth): the session cookie is then
	// DomainCookieName with Domain=CookieDomain, and a CookieName cookie
	// is ignored. The caller checks that it is no public suffix and that
	// the issuer lies under it.
	CookieDomain string
	// AccessRules returns the forward-auth rules in force (they may be
	// replaced while the server runs); nil, or a nil result, means
	// forwardauth.SignedInDefault.
	AccessRules func() *forwardauth.Rules

	// TokenIssuer signs access tokens outside a grant (the Grants sign
	// with the same one): forward auth mints the short-lived upstream
	// tokens with it. Without it forward auth passes the identity headers
	// but no Authorization.
	TokenIssuer sesame.TokenIssuer

	// Verifier checks bearer access tokens; without it only cookies
	// authenticate.
	Verifier sesame.TokenVerifier
	// JWKS returns the current JSON Web Key Set document.
	JWKS func() []byte
	// Issuer is the OIDC issuer URL (also every token's iss); SigningAlg
	// the one algorithm tokens are signed with.
	Issuer     string
	SigningAlg string
}

// server carries the dependencies the handler makers close over.
type server struct {
	Deps
	origins *origins
	auth    *httpauth.Auth // every authenticated route goes through it
	metrics *metrics
	pingers []sesame.Pinger
	// cookieName is CookieName, or DomainCookieName with CookieDomain.
	cookieName string
	upstream   *upstreamTokens
	pages      *web.Pages // the sign-in portal
}

// NewServer returns the API handler. It returns an error for an invalid
// allowed origin.
func NewServer(d Deps) (http.Handler, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
		registerProcess(d.Registry)
	}
	if d.Registration == "" {
		d.Registration = "open"
	}
	o, err := newOrigins(d.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	s := &server{Deps: d, origins: o, metrics: newMetrics(d.Registry, d.LiveSessions, d.Hasher, time.Now), cookieName: CookieName}
	if d.CookieDomain != "" {
		s.cookieName = DomainCookieName
	}
	s.upstream = newUpstreamTokens(d.TokenIssuer, d.Auth.Now)
	s.auth = httpauth.New(httpauth.Config{
		Sessions:    d.Auth,
		Tokens:      d.Verifier,
		CookieName:  s.cookieName,
		CrossOrigin: o.crossOrigin,
		OnError:     s.fail,
	})
	rt, err := web.NewReturnTo(d.Issuer, d.CookieDomain, d.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	s.pages, err = web.New(web.Config{
		Auth: d.Auth, Registration: d.Registration, ReturnTo: rt,
		SessionSecret: s.sessionCookie, SetSessionCookie: s.setSessionCookie, ClearSessionCookie: s.clearSessionCookie,
		Client: s.clientOf, CrossOrigin: o.crossOrigin, OnLogin: s.countLogin, Logger: d.Logger,
	})
	if err != nil {
		return nil, err
	}
	seen := map[sesame.Pinger]bool{}
	for _, p := range d.Ready {
		if p != nil && !seen[p] {
			seen[p] = true
			s.pingers = append(s.pingers, p)
		}
	}
	mux := newRouteMux()
	s.routes(mux)
	h := observe(d.Logger, s.metrics, d.TLS, o.cors(s.envoyForwardAuth(s.canonicalPaths(mux))))
	return &routedHandler{Handler: h, patterns: mux.patterns, mux: mux}, nil
}

// envoyForwardAuth answers /v1/forward-auth/<anything> as /v1/forward-auth,
// before the mux could clean or redirect it: Envoy's HTTP ext_authz asks at
// its path_prefix followed by the original request's path. The suffix is
// never read; the original request is X-Forwarded-Uri, as for every proxy.
func (s *server) envoyForwardAuth(next http.Handler) http.Handler {
	fa := s.handleForwardAuth(forwardAuthProxy)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/forward-auth/") {
			r.Pattern = "/v1/forward-auth/"
			fa.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// canonicalPaths refuses a path with an empty, "." or ".." segment (400)
// instead of letting the mux redirect it to its cleaned form: DELETE
// /v1/sessions/x/.. would otherwise be sent on to DELETE /v1/sessions,
// which ends every other session, by a client that follows redirects.
func (s *server) canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cleanPath(r.URL.Path) {
			s.fail(w, r, badRequest("the path has an empty, . or .. segment"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath reports whether p has no empty, "." or ".." segment (a
// trailing slash aside), without building a string per request.
func cleanPath(p string) bool {
	return !strings.Contains(p, "//") &&
		!strings.Contains(p, "/./") && !strings.HasSuffix(p, "/.") &&
		!strings.Contains(p, "/../") && !strings.HasSuffix(p, "/..")
}

// clientOf returns where the request came from. X-Forwarded-For is believed
// only when the peer is a trusted proxy, and then only as far back as the
// chain stays within trusted proxies: the first address from the right
// that is not one of them is the client.
func (s *server) clientOf(r *http.Request) sesame.Client {
	c := sesame.Client{UserAgent: cleanUserAgent(r.UserAgent())}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		c.IP = host
		return c
	}
	peer = peer.Unmap()
	c.IP = peer.String()
	if !s.trusted(peer) {
		return c
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := parseHop(all[i])
		if err != nil {
			break
		}
		a = a.Unmap()
		c.IP = a.String()
		if !s.trusted(a) {
			break
		}
	}
	return c
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a
// port ("1.2.3.4:5678", "[2001:db8::1]:443") as some proxies send.
func parseHop(h string) (netip.Addr, error) {
	h = strings.TrimSpace(h)
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr(), nil
	}
	return netip.ParseAddr(strings.Trim(h, "[]"))
}

// cleanUserAgent makes a client-chosen User-Agent safe to store and show:
// valid UTF-8, no control characters (C0, DEL and C1, such as U+0085 and
// the CSI U+009B that terminals read as an escape), at most 512 bytes.
func cleanUserAgent(ua string) string {
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(ua, "\uFFFD"))
	return truncate(ua, 512)
}

func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sessionCookie returns the session secret from the cookie, the only place
// it is ever read from. With a cookie domain only the domain cookie counts:
// a stray __Host-sesame is ignored.
func (s *server) sessionCookie(r *http.Request) (string, bool) {
	return httpauth.SessionCookie(r, s.cookieName)
}

// setSessionCookie sends the session secret to the browser.
func (s *server) setSessionCookie(w http.ResponseWriter, secret string, expires time.Time, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName,
		Value:    secret,
		Domain:   s.CookieDomain,
		Path:     "/",
		MaxAge:   int(expires.Sub(now) / time.Second),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// clearSessionCookie tells the browser to forget the session cookie.
func (s *server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName,
		Value:    "",
		Domain:   s.CookieDomain,
		Path:     "/",
		MaxAge:   -1,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// errInvalidToken is a bearer token that does not verify.
var errInvalidToken = &apiError{http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked"}

// caller returns who the request is authenticated as: the principal that
// the route's middleware (routes.go) attached. A handler that calls it on a
// route without the middleware is a bug, and fails closed.
func caller(r *http.Request) httpauth.Principal {
	p, ok := httpauth.FromContext(r.Context())
	if !ok {
		panic("server: " + r.Pattern + " reads the caller but has no authentication middleware")
	}
	return p
}

// fail answers with the error's status and body (writeError), after
// translating the authentication middleware's errors into the API's.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, httpauth.ErrNoCredentials):
		err = errUnauthenticated
	case errors.Is(err, httpauth.ErrCrossOrigin):
		err = errCSRF
	case errors.Is(err, httpauth.ErrForbidden):
		err = errForbidden
	case errors.Is(err, sesame.ErrInvalidToken):
		err = errInvalidToken
	}
	if errors.Is(err, errCSRF) {
		s.Logger.WarnContext(r.Context(), "cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	}
	writeError(w, r, s.Logger, err)
}
