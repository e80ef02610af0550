package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/sesameauth/sesame"
)

// DefaultCookieName is the session cookie Sesame sets. The __Host- prefix
// makes browsers insist on Secure, Path=/ and no Domain, so no sibling
// subdomain can set or shadow it.
const DefaultCookieName = "__Host-sesame"

// How a Principal was authenticated: the values of Principal.Via.
const (
	ViaSession = "session" // the session cookie
	ViaToken   = "token"   // a bearer access token
)

// Errors the middleware hands to Config.OnError. Besides these it hands
// on, unchanged, what the verifiers return: an error matching
// sesame.ErrInvalidToken for a bearer token that does not verify (also for
// an Authorization header that is not a bearer token),
// sesame.ErrSessionNotFound for a cookie of no live session, and any other
// error when a store or the revocation state cannot be read, which is not
// the caller's fault and must not be answered as if it were.
var (
	// ErrNoCredentials means the request carries none of the credentials
	// the middleware accepts: no session cookie, no Authorization header.
	ErrNoCredentials = errors.New("httpauth: no credentials")
	// ErrCrossOrigin means an unsafe request authenticated by the session
	// cookie came from another origin (cross-site request forgery).
	ErrCrossOrigin = errors.New("httpauth: cross-origin request refused")
	// ErrForbidden means the caller is authenticated but lacks the role
	// the handler requires.
	ErrForbidden = errors.New("httpauth: forbidden")
)

// Principal is who a request is authenticated as.
type Principal struct {
	// User is the signed-in user. For a bearer token it is what the token
	// says (ID, Email and Roles), with no store read; for a cookie it is
	// the stored user.
	User sesame.User
	// Session is the session the request belongs to. For a bearer token
	// only ID (the token's sid), UserID and Kind are set.
	Session sesame.Session
	// Claims are the verified access token's claims; nil for a cookie.
	Claims *sesame.Claims
	// Via is ViaSession or ViaToken.
	Via string
}

// HasRole reports whether the principal's user carries role.
func (p Principal) HasRole(role string) bool { return p.User.HasRole(role) }

type contextKey struct{}

// NewContext returns a copy of ctx carrying p, as the middleware attaches
// it. Handlers rarely need it; tests of handlers do.
func NewContext(ctx context.Context, p Principal) context.Context {
	return &principalContext{Context: ctx, p: p}
}

// principalContext is context.WithValue for the principal in one
// allocation instead of two (the context and the boxed Principal): it is
// made on every authenticated request.
type principalContext struct {
	context.Context
	p Principal
}

func (c *principalContext) Value(key any) any {
	if key == (contextKey{}) {
		return &c.p
	}
	return c.Context.Value(key)
}

// FromContext returns the principal the middleware attached to ctx, and
// false if there is none (an anonymous request through Optional, or a
// handler not behind any of the middleware).
func FromContext(ctx context.Context) (Principal, bool) {
	if p, ok := ctx.Value(contextKey{}).(*Principal); ok {
		return *p, true
	}
	return Principal{}, false
}

// SessionAuthenticator finds the live session a session secret (the
// cookie's value) belongs to. *sesame.Authenticator implements it.
type SessionAuthenticator interface {
	// Authenticate returns the live session carried by secret and its
	// user. It returns sesame.ErrSessionNotFound for an unknown, ended or
	// expired secret, and another error when the store cannot answer.
	Authenticate(ctx context.Context, secret string) (sesame.Session, sesame.User, error)
}

var _ SessionAuthenticator = (*sesame.Authenticator)(nil)

// Config configures an Auth. Zero fields get the defaults New documents.
type Config struct {
	// Sessions authenticates session cookies. If nil, cookies are not
	// looked at: a request with only a cookie has no credentials.
	Sessions SessionAuthenticator
	// Tokens verifies bearer access tokens: a *token.Verifier next to
	// Sesame's stores, or a *RemoteVerifier anywhere else. If nil, every
	// bearer token is refused as invalid.
	Tokens sesame.TokenVerifier
	// CookieName is the session cookie's name (default DefaultCookieName).
	CookieName string
	// CrossOrigin reports whether a request comes from another origin in
	// a way that must not be honoured with the cookie. It is asked only
	// for requests that carry the session cookie, before the store is.
	// The default refuses unsafe methods (anything but GET, HEAD and
	// OPTIONS) that net/http's CrossOriginProtection refuses, judged by
	// Sec-Fetch-Site and Origin against Host; a request with neither
	// header, such as curl's, is not cross-origin.
	CrossOrigin func(r *http.Request) bool
	// OnError answers a request the middleware refuses (default
	// WriteError). err is one of this package's errors or one handed on
	// from Sessions or Tokens, as the package's Err variables describe.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// Auth is the middleware over one Config. It is safe for concurrent use.
type Auth struct {
	sessions    SessionAuthenticator
	tokens      sesame.TokenVerifier
	cookieName  string
	crossOrigin func(*http.Request) bool
	onError     func(http.ResponseWriter, *http.Request, error)
}

// New returns the middleware for cfg, with its defaults filled in.
func New(cfg Config) *Auth {
	a := &Auth{
		sessions:    cfg.Sessions,
		tokens:      cfg.Tokens,
		cookieName:  cfg.CookieName,
		crossOrigin: cfg.CrossOrigin,
		onError:     cfg.OnError,
	}
	if a.cookieName == "" {
		a.cookieName = DefaultCookieName
	}
	if a.crossOrigin == nil {
		cop := http.NewCrossOriginProtection()
		a.crossOrigin = func(r *http.Request) bool { return cop.Check(r) != nil }
	}
	if a.onError == nil {
		a.onError = WriteError
	}
	return a
}

// The credentials a middleware accepts.
type accept int

const (
	cookieOnly accept = iota
	bearerOnly
	either
)

// RequireSession passes on requests authenticated by the session cookie,
// with the Principal in their context, and answers every other with
// OnError. An Authorization header is ignored.
func (a *Auth) RequireSession(next http.Handler) http.Handler { return a.require(cookieOnly, next) }

// RequireToken passes on requests authenticated by a bearer access token
// in the Authorization header, with the Principal in their context, and
// answers every other with OnError. The cookie is ignored.
func (a *Auth) RequireToken(next http.Handler) http.Handler { return a.require(bearerOnly, next) }

// RequireAny passes on requests authenticated by a bearer token if they
// have an Authorization header, and by the session cookie if they do not;
// it answers every other with OnError. A request with a bad bearer token
// is refused even if it also carries a good cookie: the header says which
// credential the client means.
func (a *Auth) RequireAny(next http.Handler) http.Handler { return a.require(either, next) }

// Optional attaches a Principal to requests that have valid credentials
// (as RequireAny reads them) and passes on the others anonymously,
// including those with an ended session or an invalid token. It refuses
// only what must not go through either way: an unsafe cross-origin request
// with the cookie (ErrCrossOrigin), and a request whose credentials could
// not be checked because a store is down.
func (a *Auth) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r, either)
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		case errors.Is(err, ErrNoCredentials), errors.Is(err, sesame.ErrSessionNotFound), errors.Is(err, sesame.ErrInvalidToken):
			next.ServeHTTP(w, r)
		default:
			a.onError(w, r, err)
		}
	})
}

// RequireRole passes on requests whose Principal (attached by one of the
// other middleware, which must wrap it) carries role. It answers a request
// with no Principal with ErrNoCredentials and one whose user lacks the role
// with ErrForbidden, through OnError.
func (a *Auth) RequireRole(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := FromContext(r.Context())
			switch {
			case !ok:
				a.onError(w, r, ErrNoCredentials)
			case !p.HasRole(role):
				a.onError(w, r, ErrForbidden)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// Authenticate returns the request's Principal as RequireAny finds it, or
// the error RequireAny would hand to OnError, and writes nothing. It is for
// handlers whose answer depends on who asks but that serve anyone.
func (a *Auth) Authenticate(r *http.Request) (Principal, error) {
	return a.authenticate(r, either)
}

func (a *Auth) require(acc accept, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r, acc)
		if err != nil {
			a.onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

func (a *Auth) authenticate(r *http.Request, acc accept) (Principal, error) {
	switch {
	case acc == bearerOnly, acc == either && r.Header.Get("Authorization") != "":
		return a.authenticateBearer(r)
	}
	return a.authenticateCookie(r)
}

// authenticateBearer verifies the access token from the Authorization
// header, the only place one is ever read from.
func (a *Auth) authenticateBearer(r *http.Request) (Principal, error) {
	tok, err := bearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	if a.tokens == nil {
		return Principal{}, fmt.Errorf("httpauth: %w: bearer tokens are not accepted", sesame.ErrInvalidToken)
	}
	c, err := a.tokens.Verify(r.Context(), tok)
	if err != nil {
		return Principal{}, err
	}
	return Principal{
		User:    sesame.User{ID: c.Subject, Email: c.Email, Roles: c.Roles},
		Session: sesame.Session{ID: c.SessionID, UserID: c.Subject, Kind: sesame.KindToken},
		Claims:  &c,
		Via:     ViaToken,
	}, nil
}

// bearerToken returns the token of an "Authorization: Bearer" header (RFC
// 6750 §2.1), ErrNoCredentials if there is no Authorization header, and an
// error matching sesame.ErrInvalidToken if it is not one bearer token.
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoCredentials
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return "", fmt.Errorf("httpauth: %w: more than one Authorization header", sesame.ErrInvalidToken)
	}
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", fmt.Errorf("httpauth: %w: Authorization is not a Bearer token", sesame.ErrInvalidToken)
	}
	return tok, nil
}

// authenticateCookie looks up the session of the cookie, after refusing
// an unsafe cross-origin request.
func (a *Auth) authenticateCookie(r *http.Request) (Principal, error) {
	secret, ok := SessionCookie(r, a.cookieName)
	if !ok || a.sessions == nil {
		return Principal{}, ErrNoCredentials
	}
	if a.crossOrigin(r) {
		return Principal{}, ErrCrossOrigin
	}
	s, u, err := a.sessions.Authenticate(r.Context(), secret)
	if err != nil {
		return Principal{}, err
	}
	return Principal{User: u, Session: s, Via: ViaSession}, nil
}

// SessionCookie returns the session secret from the request's cookie
// named name: the value of the first such cookie that has the form of a
// session secret (sesame.ValidSecret). The cookie is the only place a
// session secret is ever read from.
func SessionCookie(r *http.Request, name string) (secret string, ok bool) {
	// The cookies are read as net/http's Request.CookiesNamed reads them
	// (FuzzSessionCookie holds the two together), without building a
	// Cookie for each: this runs on every signed-in request.
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies {
		return "", false // net/http reads none either
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			// A valid secret is base64url, so it is a valid cookie value
			// too: the check net/http makes of the bytes is implied.
			if sesame.ValidSecret(v) {
				return v, true
			}
		}
	}
	return "", false
}

// maxCookies is net/http's default limit on the cookies of one request
// (GODEBUG httpcookiemaxnum): past it, net/http reads none.
const maxCookies = 3000

// WriteError is the default Config.OnError. It answers with a JSON body
// {"error": code, "error_description": text}:
//
//   - 401 unauthenticated for ErrNoCredentials and sesame.ErrSessionNotFound,
//   - 401 invalid_token for sesame.ErrInvalidToken,
//   - 403 csrf for ErrCrossOrigin,
//   - 403 forbidden for ErrForbidden,
//   - 503 unavailable, with Retry-After, for anything else: a store or the
//     revocation state could not be read. The error's text is not sent.
//
// Every 401 carries WWW-Authenticate: Bearer error="invalid_token" (RFC
// 6750 §3).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, desc := http.StatusServiceUnavailable, "unavailable", "authentication is unavailable; retry shortly"
	switch {
	case errors.Is(err, ErrNoCredentials):
		status, code, desc = http.StatusUnauthorized, "unauthenticated", "no session cookie or bearer token was presented"
	case errors.Is(err, sesame.ErrSessionNotFound):
		status, code, desc = http.StatusUnauthorized, "unauthenticated", "the session has ended or expired"
	case errors.Is(err, sesame.ErrInvalidToken):
		status, code, desc = http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked"
	case errors.Is(err, ErrCrossOrigin):
		status, code, desc = http.StatusForbidden, "csrf", "cross-origin request refused"
	case errors.Is(err, ErrForbidden):
		status, code, desc = http.StatusForbidden, "forbidden", "the caller lacks the role this requires"
	default:
		w.Header().Set("Retry-After", "2")
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}
