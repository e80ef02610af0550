package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/forwardauth"
)

// proxyKind is which proxy convention a forward-auth endpoint speaks.
type proxyKind int

const (
	// forwardAuthProxy: Traefik forwardAuth, Caddy forward_auth, Envoy
	// ext_authz. The original request is in X-Forwarded-Method, -Proto,
	// -Host and -Uri; not signed in is a redirect for a browser.
	forwardAuthProxy proxyKind = iota
	// authRequestProxy: nginx auth_request. The original request is in
	// X-Original-Method and X-Original-URL; not signed in is always 401,
	// with the sign-in URL in Location for nginx to redirect to.
	authRequestProxy
)

// Decision results, the "result" label of sesame_forward_auth_decisions_total.
const (
	resultAllowed         = "allowed"
	resultRedirected      = "redirected"
	resultUnauthenticated = "unauthenticated"
	resultForbidden       = "forbidden"
	resultInvalid         = "invalid"     // 400: no original request, or a path that does not canonicalize
	resultUntrusted       = "untrusted"   // 403: the peer is not a proxy
	resultUnavailable     = "unavailable" // 503: a store could not answer
)

// upstreamTokenTTL is the longest lifetime of a token minted for an
// upstream, and upstreamTokenReuse how long before its expiry a cached one
// stops being handed out (so the upstream always gets at least that long).
const (
	upstreamTokenTTL   = 60 * time.Second
	upstreamTokenReuse = 15 * time.Second
)

var (
	errUntrustedPeer = &apiError{http.StatusForbidden, "forbidden", "forward authentication answers only the proxies in --trusted-proxies and loopback"}
	errRuleForbids   = &apiError{http.StatusForbidden, "forbidden", "the access rules do not let this request through"}
	errNoOriginal    = &apiError{http.StatusBadRequest, "invalid_request", "the proxy did not say which request it asks about"}
	errBadOriginal   = &apiError{http.StatusBadRequest, "invalid_request", "the original request's URL is not one the rules can judge"}
)

// original is the request a proxy asks about.
type original struct {
	method string // upper case
	proto  string // "http" or "https"
	host   string // as sent, port included
	uri    string // path and query, as sent
}

func (o original) url() string { return o.proto + "://" + o.host + o.uri }

// handleForwardAuth answers a proxy's question: may this request through?
// See API.md "Forward authentication".
func (s *server) handleForwardAuth(kind proxyKind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Cache-Control"] = noStore
		if !s.proxyPeer(r) {
			s.decided(r, resultUntrusted, "none", nil, "")
			s.fail(w, r, errUntrustedPeer)
			return
		}
		o, err := readOriginal(kind, r)
		if err != nil {
			s.decided(r, resultInvalid, "none", nil, "")
			s.fail(w, r, err)
			return
		}
		path, err := forwardauth.CanonicalPath(o.uri)
		if err != nil {
			s.decided(r, resultInvalid, "none", nil, "")
			s.fail(w, r, errBadOriginal)
			return
		}
		d := s.rules().Decide(forwardauth.NormalizeHost(o.host), o.method, path)
		log := func(result string) { s.decided(r, result, d.Name(), &o, path) }
		if d.Policy == forwardauth.Deny {
			log(resultForbidden)
			s.fail(w, r, errRuleForbids)
			return
		}
		who, signedIn, err := s.forwardCaller(r)
		if err != nil {
			log(resultUnavailable)
			s.fail(w, r, err)
			return
		}
		if !signedIn && d.Policy != forwardauth.Bypass {
			login := strings.TrimSuffix(s.Issuer, "/") + "/login?return_to=" + url.QueryEscape(o.url())
			if kind == forwardAuthProxy && (o.method == http.MethodGet || o.method == http.MethodHead) && acceptsHTML(r.Header.Values("Accept")) {
				log(resultRedirected)
				w.Header().Set("Location", login)
				w.Header()["Referrer-Policy"] = sameOriginReferrer // the browser follows it
				w.WriteHeader(http.StatusFound)
				return
			}
			log(resultUnauthenticated)
			if kind == authRequestProxy {
				w.Header().Set("Location", login)
			}
			s.fail(w, r, errUnauthenticated)
			return
		}
		if d.Policy == forwardauth.Roles && !hasAnyRole(who.user, d.Rule.Roles) {
			log(resultForbidden)
			s.fail(w, r, errRuleForbids)
			return
		}
		// Every 200 carries all five headers, empty when nobody is signed
		// in (a bypass): a proxy that copies them then always overwrites
		// what the client sent, and Caddy 2.6's copy_headers, which writes
		// a missing header as its literal placeholder, writes "" instead.
		ids := &anonymous
		if signedIn {
			aud := o.proto + "://" + originHost(o.proto, o.host)
			if d.Rule != nil && d.Rule.Audience != "" {
				aud = d.Rule.Audience
			}
			if ids, err = s.upstream.identity(who, aud); err != nil {
				log(resultUnavailable)
				s.fail(w, r, err)
				return
			}
		}
		h := w.Header()
		for i, k := range identityHeaders {
			h[k] = ids[i] // shared by every answer for this session and audience; never written to
		}
		// Only the proxy reads an allowed answer: none of nginx, Caddy,
		// Traefik and Envoy hands a 2xx of the auth server to the browser
		// (each continues with the original request), so the headers that
		// tell a browser how to treat a document go. A refusal keeps them:
		// Caddy, Traefik and Envoy send it to the browser as it is.
		delete(h, "X-Content-Type-Options")
		delete(h, "X-Frame-Options")
		delete(h, "Content-Security-Policy")
		delete(h, "Strict-Transport-Security")
		log(resultAllowed)
		w.WriteHeader(http.StatusOK)
	})
}

// decided counts a decision, and logs it at debug level. Nothing in it is
// a cookie, a token or a query string.
func (s *server) decided(r *http.Request, result, rule string, o *original, path string) {
	s.metrics.forwardDecision(result, rule)
	if !s.Logger.Enabled(r.Context(), slog.LevelDebug) {
		return // and build no attributes
	}
	if o == nil {
		s.Logger.DebugContext(r.Context(), "forward auth", "result", result, "rule", rule)
		return
	}
	s.Logger.DebugContext(r.Context(), "forward auth", "result", result, "rule", rule, "host", o.host, "method", o.method, "path", path)
}

func (s *server) rules() *forwardauth.Rules {
	if s.AccessRules != nil {
		if rs := s.AccessRules(); rs != nil {
			return rs
		}
	}
	return signedInDefault
}

var signedInDefault = forwardauth.SignedInDefault()

// proxyPeer reports whether the request comes straight from loopback or a
// trusted proxy: only they may ask, since the answer carries identities and
// tokens and the question names any URL.
func (s *server) proxyPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsLoopback() || s.trusted(a)
}

// readOriginal reads the original request from the endpoint's own headers,
// and no others: a client can send the other proxy's set through its proxy.
// Each header must be there exactly once (a proxy that appends instead of
// replacing would let the client's copy through).
func readOriginal(kind proxyKind, r *http.Request) (original, error) {
	one := func(name string) (string, bool) {
		v := r.Header.Values(name)
		if len(v) != 1 || v[0] == "" {
			return "", false
		}
		return v[0], true
	}
	var o original
	var ok [4]bool
	if kind == forwardAuthProxy {
		o.method, ok[0] = one("X-Forwarded-Method")
		o.proto, ok[1] = one("X-Forwarded-Proto")
		o.host, ok[2] = one("X-Forwarded-Host")
		o.uri, ok[3] = one("X-Forwarded-Uri")
		if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
			return original{}, errNoOriginal
		}
		o.proto = strings.ToLower(o.proto)
	} else {
		var raw string
		o.method, ok[0] = one("X-Original-Method")
		raw, ok[1] = one("X-Original-Url") // X-Original-URL, in the canonical spelling net/http keys it by
		if !ok[0] || !ok[1] {
			return original{}, errNoOriginal
		}
		scheme, rest, found := strings.Cut(raw, "://")
		if !found {
			return original{}, errBadOriginal
		}
		o.proto = strings.ToLower(scheme)
		o.host, o.uri = rest, "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			o.host, o.uri = rest[:i], rest[i:]
			if o.uri[0] == '?' {
				o.uri = "/" + o.uri
			}
		}
	}
	if o.proto != "http" && o.proto != "https" || !validHost(o.host) || !isToken(o.method) {
		return original{}, errBadOriginal
	}
	o.method = upperASCII(o.method)
	return o, nil
}

// validHost accepts a host[:port] of letters, digits, ".", "-", ":" and
// brackets: no user information, no percent-encoding, nothing a browser
// and the rules could read differently.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// upperASCII upper-cases a method, allocating only if it has lower case:
// a rule for GET also judges "get", which some applications accept.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

// originHost is host as an origin names it: normalised as the rules see
// it, with its port unless that is the scheme's default.
func originHost(proto, host string) string {
	name := forwardauth.NormalizeHost(host)
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	port := ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && (strings.Count(host, ":") == 1 || strings.HasPrefix(host, "[") && host[i-1] == ']') {
		port = host[i+1:]
	}
	if port == "" || proto == "https" && port == "443" || proto == "http" && port == "80" {
		return name
	}
	return name + ":" + port
}

// acceptsHTML reports whether an Accept header names text/html.
func acceptsHTML(accept []string) bool {
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				continue
			}
			if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok && strings.Trim(q, "0.") == "" {
				continue // q=0: explicitly not acceptable
			}
			return true
		}
	}
	return false
}

func hasAnyRole(u sesame.User, roles []string) bool {
	for _, r := range roles {
		if u.HasRole(r) {
			return true
		}
	}
	return false
}

// forwardUser is who a forwarded request is signed in as.
type forwardUser struct {
	user    sesame.User
	session string    // the session's public handle
	until   time.Time // the credential's end: minted tokens end no later
}

// forwardCaller finds who the original request is signed in as: by its
// bearer access token if it has an "Authorization: Bearer" header, else by
// the session cookie. A missing, ended or invalid credential is not an
// error (signedIn is false); a store that cannot answer is. There is no
// cross-origin check here: the question comes from the proxy, not from a
// browser, and the application behind it judges its own requests.
func (s *server) forwardCaller(r *http.Request) (who forwardUser, signedIn bool, err error) {
	if scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		if s.Verifier == nil || len(r.Header.Values("Authorization")) != 1 {
			return forwardUser{}, false, nil
		}
		c, err := s.Verifier.Verify(r.Context(), strings.TrimSpace(tok))
		switch {
		case errors.Is(err, sesame.ErrInvalidToken):
			return forwardUser{}, false, nil
		case err != nil:
			return forwardUser{}, false, err
		}
		return forwardUser{user: sesame.User{ID: c.Subject, Email: c.Email, Roles: c.Roles}, session: c.SessionID, until: c.ExpiresAt}, true, nil
	}
	secret, ok := s.sessionCookie(r)
	if !ok {
		return forwardUser{}, false, nil
	}
	sess, u, err := s.Auth.Authenticate(r.Context(), secret)
	switch {
	case errors.Is(err, sesame.ErrSessionNotFound):
		return forwardUser{}, false, nil
	case err != nil:
		return forwardUser{}, false, err
	}
	return forwardUser{user: u, session: sess.ID, until: sess.ExpiresAt}, true, nil
}

// upstreamTokens mints the access tokens forward auth hands to upstreams,
// and keeps each for reuse by the same session and audience until shortly
// before it expires, so most decisions sign nothing. Ending the session
// ends the tokens wherever Sesame checks them (the revocation set); the
// cache only ever hands one out after the session was found live.
type upstreamTokens struct {
	issuer sesame.TokenIssuer
	now    func() time.Time

	mu sync.Mutex
	m  map[upstreamKey]upstreamToken
}

type upstreamKey struct{ session, audience string }

type upstreamToken struct {
	headers *identity
	user    string
	exp     time.Time
}

// identityHeaders are the headers of an allowed answer, in identity's
// order.
var identityHeaders = [...]string{"Remote-User", "Remote-Email", "Remote-Groups", "Remote-Session", "Authorization"}

// identity is the values of identityHeaders for one session and audience,
// built once when its token is minted: the decisions that reuse the token
// set them without building anything.
type identity [len(identityHeaders)][]string

// anonymous is the identity of a bypass with nobody signed in: every
// header present and empty.
var anonymous = identity{{""}, {""}, {""}, {""}, {""}}

func newIdentity(who forwardUser, authorization string) *identity {
	return &identity{{who.user.ID}, {who.user.Email}, {strings.Join(who.user.Roles, ",")}, {who.session}, {authorization}}
}

// current reports whether ids names who as who is now: the same user,
// email, roles and session.
func (ids *identity) current(who forwardUser) bool {
	return ids[0][0] == who.user.ID && ids[1][0] == who.user.Email && ids[3][0] == who.session &&
		joinedIs(ids[2][0], who.user.Roles)
}

// joinedIs reports whether s is strings.Join(parts, ","), without joining.
func joinedIs(s string, parts []string) bool {
	for i, p := range parts {
		if i > 0 {
			if s == "" || s[0] != ',' {
				return false
			}
			s = s[1:]
		}
		if !strings.HasPrefix(s, p) {
			return false
		}
		s = s[len(p):]
	}
	return s == ""
}

// maxUpstreamTokens bounds the cache; when full, expired entries go, and if
// that is not enough it starts again empty.
const maxUpstreamTokens = 1 << 16

func newUpstreamTokens(issuer sesame.TokenIssuer, now func() time.Time) *upstreamTokens {
	if now == nil {
		now = time.Now
	}
	return &upstreamTokens{issuer: issuer, now: now, m: map[upstreamKey]upstreamToken{}}
}

// identity returns the identity headers for who at audience aud, with an
// Authorization of "Bearer " and a token lasting at most upstreamTokenTTL
// and no longer than who's credential; an empty Authorization if there is
// no issuer or the credential ends too soon to mint one.
func (u *upstreamTokens) identity(who forwardUser, aud string) (*identity, error) {
	if u.issuer == nil {
		return newIdentity(who, ""), nil
	}
	now := u.now()
	k := upstreamKey{who.session, aud}
	u.mu.Lock()
	t, ok := u.m[k]
	u.mu.Unlock()
	// Reused only while it says what the user is now: an email or roles
	// changed since (the session lives on) mint a new token, so that no
	// answer carries an old email, which may since be another user's.
	if ok && t.user == who.user.ID && t.headers.current(who) && t.exp.Sub(now) >= upstreamTokenReuse && !t.exp.After(who.until) {
		return t.headers, nil
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(upstreamTokenTTL)
	if who.until.Before(exp) {
		exp = who.until.Truncate(time.Second)
	}
	if !exp.After(iat) {
		return newIdentity(who, ""), nil
	}
	tok, c, err := u.issuer.IssueAccessToken(sesame.Claims{
		Subject: who.user.ID, Audience: []string{aud}, SessionID: who.session,
		Email: who.user.Email, Roles: who.user.Roles,
		IssuedAt: iat, ExpiresAt: exp,
	})
	if err != nil {
		return nil, err
	}
	exp = c.ExpiresAt // the issuer's lifetime may be shorter still
	u.mu.Lock()
	if len(u.m) >= maxUpstreamTokens {
		for k, t := range u.m {
			if t.exp.Sub(now) < upstreamTokenReuse {
				delete(u.m, k)
			}
		}
		if len(u.m) >= maxUpstreamTokens {
			clear(u.m)
		}
	}
	ids := newIdentity(who, "Bearer "+tok)
	u.m[k] = upstreamToken{headers: ids, user: who.user.ID, exp: exp}
	u.mu.Unlock()
	return ids, nil
}
