package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// Remote verification defaults and bounds.
const (
	// DefaultRefreshInterval is the least time between two fetches of the
	// JWKS; WithRefreshInterval accepts MinRefreshInterval to
	// MaxRefreshInterval.
	DefaultRefreshInterval = 10 * time.Second
	MinRefreshInterval     = time.Second
	MaxRefreshInterval     = time.Hour
	// DefaultMaxAge is how long a fetched JWKS is used before it is
	// fetched again in the background, so that keys the issuer dropped
	// stop verifying here too.
	DefaultMaxAge = 5 * time.Minute
	// MaxDocumentBytes caps the discovery document and the JWKS.
	MaxDocumentBytes = 1 << 20
	// FetchTimeout bounds one fetch, connection and body included.
	FetchTimeout = 10 * time.Second
)

// RemoteVerifier verifies Sesame access tokens away from Sesame's stores,
// with the public keys of the issuer's JWKS, fetched over HTTP and cached.
// Each token gets exactly the checks of a token.Verifier (algorithm, header,
// kid, iss, aud, times), with no network hop, except when it names a kid
// the cached set does not hold: then the JWKS is fetched again, at most
// once per refresh interval however many such tokens arrive (those that
// arrive during a fetch wait for it and share it). The set is also fetched
// again in the background once it is older than the maximum age. A fetch
// that fails, or returns a set that ParseJWKS refuses (say, one without a
// key for the configured algorithm), leaves the cached set in use.
//
// A RemoteVerifier has no view of revocation: a token of a session that
// ended, or of a refresh family whose reuse was detected, verifies here
// until it expires (the issuer's access-token TTL, 10 minutes by default).
// A service that must refuse such a token at once asks the issuer's
// /v1/userinfo with it instead, which costs a round trip per request.
//
// It implements sesame.TokenVerifier, for Config.Tokens, and is safe for
// concurrent use.
type RemoteVerifier struct {
	cfg  remoteConfig
	keys *token.Keys
	v    *token.Verifier

	mu       sync.Mutex
	lastTry  time.Time     // when the last fetch started
	lastOK   time.Time     // when the last successful fetch started
	inflight chan struct{} // closed when the fetch in flight ends; nil if none
	// nextCheck (UnixNano) is when Verify next starts a background fetch:
	// the maximum age after the last success, but not within the interval
	// after the last try. It lets Verify skip the lock.
	nextCheck atomic.Int64
}

type remoteConfig struct {
	issuer, audience string
	jwksURL          string
	alg              string
	client           *http.Client
	interval         time.Duration
	maxAge           time.Duration
	insecure         bool
	now              func() time.Time
	log              *slog.Logger
	verifyOpts       []token.VerifyOption
}

// RemoteOption configures a RemoteVerifier; see NewRemoteVerifier.
type RemoteOption func(*remoteConfig)

// WithJWKSURL fetches the JWKS from u instead of the jwks_uri of the
// issuer's discovery document, which is then not fetched.
func WithJWKSURL(u string) RemoteOption { return func(c *remoteConfig) { c.jwksURL = u } }

// WithAlgorithm sets the one algorithm tokens may be signed with: EdDSA
// (the default, as Sesame's --signing-alg), ES256 or RS256. It must be the
// issuer's: keys of other types in the JWKS are never used.
func WithAlgorithm(alg string) RemoteOption { return func(c *remoteConfig) { c.alg = alg } }

// WithHTTPClient sets the client that fetches the documents. Each fetch is
// bounded by FetchTimeout whatever the client's own timeouts. The default
// client refuses redirects to plain HTTP.
func WithHTTPClient(hc *http.Client) RemoteOption { return func(c *remoteConfig) { c.client = hc } }

// WithRefreshInterval sets the least time between two fetches of the JWKS
// (default DefaultRefreshInterval). A token signed with a key newer than
// the cached set may be refused for up to this long after a fetch.
func WithRefreshInterval(d time.Duration) RemoteOption {
	return func(c *remoteConfig) { c.interval = d }
}

// WithMaxAge sets how long a fetched JWKS is used before a background
// fetch replaces it (default DefaultMaxAge; at least the refresh interval).
func WithMaxAge(d time.Duration) RemoteOption { return func(c *remoteConfig) { c.maxAge = d } }

// WithInsecureHTTP allows plain-HTTP URLs to hosts other than loopback
// ones. Without it the issuer, the jwks_uri and the JWKS URL must be https
// (or http to localhost, 127.0.0.0/8 or ::1), since whoever can alter the
// JWKS in transit can sign tokens the verifier accepts.
func WithInsecureHTTP() RemoteOption { return func(c *remoteConfig) { c.insecure = true } }

// WithNow sets the clock that both the token checks and the refresh
// schedule read (default time.Now).
func WithNow(now func() time.Time) RemoteOption { return func(c *remoteConfig) { c.now = now } }

// WithLogger sets where failed background fetches are reported (default
// slog.Default()).
func WithLogger(l *slog.Logger) RemoteOption { return func(c *remoteConfig) { c.log = l } }

// WithVerifyOptions passes options to the token.Verifier, such as
// token.WithLeeway or token.WithCache.
func WithVerifyOptions(opts ...token.VerifyOption) RemoteOption {
	return func(c *remoteConfig) { c.verifyOpts = append(c.verifyOpts, opts...) }
}

// NewRemoteVerifier returns a verifier of tokens whose iss is issuer and
// whose aud contains audience (Sesame's --issuer and --audience). It reads
// issuer + "/.well-known/openid-configuration" (whose issuer must be
// exactly issuer, and whose advertised algorithms, if any, must include the
// configured one) for the jwks_uri, unless WithJWKSURL names the JWKS, and
// fetches the JWKS. It returns an error, within FetchTimeout or ctx, if
// either cannot be fetched, is over MaxDocumentBytes, or holds no usable
// key for the algorithm, and for invalid options.
func NewRemoteVerifier(ctx context.Context, issuer, audience string, opts ...RemoteOption) (*RemoteVerifier, error) {
	c := remoteConfig{
		issuer:   issuer,
		audience: audience,
		alg:      token.EdDSA,
		interval: DefaultRefreshInterval,
		maxAge:   DefaultMaxAge,
		now:      time.Now,
	}
	for _, opt := range opts {
		opt(&c)
	}
	switch {
	case issuer == "" || audience == "":
		return nil, errors.New("httpauth: NewRemoteVerifier: empty issuer or audience")
	case c.alg != token.EdDSA && c.alg != token.ES256 && c.alg != token.RS256:
		return nil, fmt.Errorf("httpauth: NewRemoteVerifier: unsupported signing algorithm %q", c.alg)
	case c.interval < MinRefreshInterval || c.interval > MaxRefreshInterval:
		return nil, fmt.Errorf("httpauth: NewRemoteVerifier: refresh interval %v out of range [%v, %v]", c.interval, MinRefreshInterval, MaxRefreshInterval)
	case c.maxAge < c.interval:
		return nil, fmt.Errorf("httpauth: NewRemoteVerifier: max age %v is less than the refresh interval %v", c.maxAge, c.interval)
	case c.now == nil:
		return nil, errors.New("httpauth: NewRemoteVerifier: WithNow(nil)")
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.client == nil {
		c.client = &http.Client{
			Timeout: FetchTimeout,
			CheckRedirect: func(r *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return checkURL(r.URL, c.insecure)
			},
		}
	}

	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	if c.jwksURL == "" {
		u, err := c.discover(ctx)
		if err != nil {
			return nil, err
		}
		c.jwksURL = u
	}
	u, err := url.Parse(c.jwksURL)
	if err == nil {
		err = checkURL(u, c.insecure)
	}
	if err != nil {
		return nil, fmt.Errorf("httpauth: JWKS URL: %w", err)
	}

	rv := &RemoteVerifier{cfg: c}
	started := c.now()
	ks, err := rv.load(ctx)
	if err != nil {
		return nil, err
	}
	rv.keys = token.NewKeys(ks)
	rv.v, err = token.NewVerifier(rv.keys, issuer, audience, append([]token.VerifyOption{token.WithNow(c.now)}, c.verifyOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("httpauth: %w", err)
	}
	rv.lastTry, rv.lastOK = started, started
	rv.nextCheck.Store(started.Add(c.maxAge).UnixNano())
	return rv, nil
}

// Verify checks token with the cached keys and returns its claims. Every
// error matches sesame.ErrInvalidToken unless a revocation check passed
// with WithVerifyOptions fails. A token naming an unknown kid may wait for
// a fetch of the JWKS (at most FetchTimeout, or until ctx is done), but
// only if none started within the refresh interval.
func (rv *RemoteVerifier) Verify(ctx context.Context, tok string) (sesame.Claims, error) {
	if rv.cfg.now().UnixNano() >= rv.nextCheck.Load() {
		rv.refresh(ctx, false)
	}
	before := rv.keys.Load()
	c, err := rv.v.Verify(ctx, tok)
	if err == nil || !errors.Is(err, sesame.ErrInvalidToken) {
		return c, err
	}
	kid, ok := token.KeyID(tok)
	if !ok || slices.Contains(before.KIDs(), kid) {
		return c, err // the key was there: it is the token that is wrong
	}
	if !slices.Contains(rv.keys.Load().KIDs(), kid) {
		rv.refresh(ctx, true)
		if !slices.Contains(rv.keys.Load().KIDs(), kid) {
			return c, err
		}
	}
	return rv.v.Verify(ctx, tok)
}

// KIDs returns the kids of the keys in the cached set.
func (rv *RemoteVerifier) KIDs() []string { return rv.keys.Load().KIDs() }

// refresh starts a fetch of the JWKS unless one is in flight or one
// started less than the refresh interval ago; if wait, it then waits for
// the fetch in flight, if any, to end (or ctx to be done).
func (rv *RemoteVerifier) refresh(ctx context.Context, wait bool) {
	rv.mu.Lock()
	done := rv.inflight
	if now := rv.cfg.now(); done == nil && now.Sub(rv.lastTry) >= rv.cfg.interval {
		done = make(chan struct{})
		rv.inflight, rv.lastTry = done, now
		rv.nextCheck.Store(later(rv.lastOK.Add(rv.cfg.maxAge), now.Add(rv.cfg.interval)).UnixNano())
		// Detached from ctx: the fetch is shared, and one caller giving
		// up must not fail it for the others.
		go rv.fetch(done, now)
	}
	rv.mu.Unlock()
	if done != nil && wait {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// fetch replaces the cached set with a freshly fetched one, or logs why
// it could not and keeps the old one.
func (rv *RemoteVerifier) fetch(done chan struct{}, started time.Time) {
	defer func() {
		rv.mu.Lock()
		rv.inflight = nil
		rv.mu.Unlock()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), FetchTimeout)
	defer cancel()
	ks, err := rv.load(ctx)
	if err != nil {
		rv.cfg.log.Warn("httpauth: JWKS refresh failed; keeping the cached keys", "url", rv.cfg.jwksURL, "err", err)
		return
	}
	rv.keys.Store(ks)
	rv.mu.Lock()
	rv.lastOK = started
	rv.nextCheck.Store(started.Add(rv.cfg.maxAge).UnixNano())
	rv.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// load fetches and parses the JWKS.
func (rv *RemoteVerifier) load(ctx context.Context) (*token.KeySet, error) {
	b, err := rv.cfg.get(ctx, rv.cfg.jwksURL)
	if err != nil {
		return nil, err
	}
	ks, err := token.ParseJWKS(b, rv.cfg.alg)
	if err != nil {
		return nil, fmt.Errorf("httpauth: JWKS from %s: %w", rv.cfg.jwksURL, err)
	}
	return ks, nil
}

// discover returns the jwks_uri of the issuer's OpenID Provider
// Configuration (OpenID Connect Discovery 1.0 §4).
func (c *remoteConfig) discover(ctx context.Context) (string, error) {
	u, err := url.Parse(c.issuer)
	if err == nil {
		err = checkURL(u, c.insecure)
	}
	if err != nil {
		return "", fmt.Errorf("httpauth: issuer: %w", err)
	}
	where := strings.TrimSuffix(c.issuer, "/") + "/.well-known/openid-configuration"
	b, err := c.get(ctx, where)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer         string   `json:"issuer"`
		JWKSURI        string   `json:"jwks_uri"`
		AccessTokenAlg []string `json:"access_token_signing_alg_values_supported"`
		IDTokenAlg     []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("httpauth: discovery document %s: %w", where, err)
	}
	algs := doc.AccessTokenAlg
	if len(algs) == 0 {
		algs = doc.IDTokenAlg
	}
	switch {
	case doc.Issuer != c.issuer:
		return "", fmt.Errorf("httpauth: discovery document %s names issuer %q, not %q", where, doc.Issuer, c.issuer)
	case doc.JWKSURI == "":
		return "", fmt.Errorf("httpauth: discovery document %s has no jwks_uri", where)
	case len(algs) > 0 && !slices.Contains(algs, c.alg):
		return "", fmt.Errorf("httpauth: issuer %s signs with %q, not %s (see WithAlgorithm)", c.issuer, algs, c.alg)
	}
	return doc.JWKSURI, nil
}

// get fetches a JSON document of at most MaxDocumentBytes.
func (c *remoteConfig) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("httpauth: fetch %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("httpauth: fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("httpauth: fetch %s: status %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("httpauth: fetch %s: %w", u, err)
	}
	if len(b) > MaxDocumentBytes {
		return nil, fmt.Errorf("httpauth: fetch %s: larger than %d bytes", u, MaxDocumentBytes)
	}
	return b, nil
}

// checkURL allows https, and http to loopback hosts or if insecure.
func checkURL(u *url.URL, insecure bool) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme != "http":
		return fmt.Errorf("%q is not an http(s) URL", u.Redacted())
	case insecure || u.Hostname() == "localhost":
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is plain HTTP to a host other than loopback (see WithInsecureHTTP)", u.Redacted())
}
