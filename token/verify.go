package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sesameauth/sesame"
)

// MaxTokenBytes is the longest token Verify parses. Sesame's tokens are
// well under 2 KiB even with RS256 and many roles.
const MaxTokenBytes = 8 << 10

// Leeway bounds: the default clock skew tolerated for exp, nbf and iat, and
// the most a Verifier accepts.
const (
	DefaultLeeway = 5 * time.Second
	MaxLeeway     = 60 * time.Second
)

// Verifier checks access tokens that an Issuer over the same keys made. It
// accepts exactly one shape: a JWS compact JWT of three canonical base64url
// segments, signed with the KeySet's algorithm by a key of the KeySet named
// by kid, with the header members alg, kid and typ ("at+jwt") and no
// others, and the claims iss (exact), aud (containing the audience), sub,
// sid, jti, exp, nbf and iat, checked against the clock with the leeway.
// A Verifier is safe for concurrent use.
type Verifier struct {
	keys     *Keys
	alg      string
	issuer   string
	audience string
	parser   *jwt.Parser

	leeway  time.Duration
	now     func() time.Time
	revoked func(sid string, issuedAt time.Time) (bool, error)
	reload  func(ctx context.Context, kid string) bool
	cacheN  int
	cache   *cache
}

// VerifyOption configures a Verifier; see NewVerifier.
type VerifyOption func(*Verifier)

// WithLeeway sets the clock skew tolerated when checking exp, nbf and iat:
// a token is accepted until exp + d, and from nbf - d and iat - d. The
// default is DefaultLeeway; NewVerifier refuses d < 0 or d > MaxLeeway.
func WithLeeway(d time.Duration) VerifyOption {
	return func(v *Verifier) { v.leeway = d }
}

// WithNow sets the clock. The default is time.Now.
func WithNow(now func() time.Time) VerifyOption {
	return func(v *Verifier) { v.now = now }
}

// WithRevocation sets the check that refuses tokens of ended sessions. It
// is called on every Verify of an otherwise valid token, cached or not,
// with the token's sid and iat (sesame.RevocationSet.Revoked fits, and
// also refuses tokens issued before its store's epoch). If it reports the
// session revoked, Verify returns an error wrapping sesame.ErrInvalidToken.
// If it returns an error, Verify returns an error wrapping
// sesame.ErrUnavailable and that error, and not sesame.ErrInvalidToken: the
// token may be fine, but nothing is authenticated while the revocation
// state is unknown. The check must be fast (an in-memory set): it runs on
// every request.
func WithRevocation(revoked func(sid string, issuedAt time.Time) (revoked bool, err error)) VerifyOption {
	return func(v *Verifier) { v.revoked = revoked }
}

// WithCache keeps up to n verified tokens, keyed by the whole token
// string, so that presenting the same token again skips the parsing and
// the signature check (a hit costs well under a microsecond, against some
// 50 µs for an EdDSA verification). The cache holds the tokens themselves:
// at most n × MaxTokenBytes, in practice n times a token's size (about 10
// MiB for 16,384 of Sesame's EdDSA tokens). A
// cached token is accepted only until its exp + leeway, only
// while its kid is still in the KeySet, and only after the revocation check,
// which still runs on every Verify. When the cache is full a few entries
// are sampled and the expired ones, or else one of them, are evicted. n = 0,
// the default, disables the cache.
func WithCache(n int) VerifyOption {
	return func(v *Verifier) { v.cacheN = n }
}

// WithUnknownKID gives Verify a way to learn of a key it does not know yet:
// when a token's kid is not in the key set, reload is called with it, and
// if it reports true (it installed a new KeySet in the Keys) the token is
// checked once more against the new set. reload is called with any kid an
// attacker chooses: it must bound how often it really reloads.
func WithUnknownKID(reload func(ctx context.Context, kid string) bool) VerifyOption {
	return func(v *Verifier) { v.reload = reload }
}

// NewVerifier returns a Verifier for tokens signed with keys' algorithm
// (the algorithm of the KeySet it holds now) whose iss is issuer and whose
// aud contains audience. It returns an error for an empty issuer or
// audience, a leeway out of range, a negative cache size or a nil function
// option.
func NewVerifier(keys *Keys, issuer string, audience string, opts ...VerifyOption) (*Verifier, error) {
	if keys == nil || keys.Load() == nil {
		return nil, errors.New("token: NewVerifier: no keys")
	}
	if issuer == "" || audience == "" {
		return nil, errors.New("token: NewVerifier: empty issuer or audience")
	}
	v := &Verifier{
		keys:     keys,
		alg:      keys.Load().Alg(),
		issuer:   issuer,
		audience: audience,
		leeway:   DefaultLeeway,
		now:      time.Now,
	}
	for _, opt := range opts {
		opt(v)
	}
	switch {
	case v.leeway < 0 || v.leeway > MaxLeeway:
		return nil, fmt.Errorf("token: NewVerifier: leeway %v out of range [0, %v]", v.leeway, MaxLeeway)
	case v.now == nil:
		return nil, errors.New("token: NewVerifier: WithNow(nil)")
	case v.cacheN < 0:
		return nil, fmt.Errorf("token: NewVerifier: cache size %d < 0", v.cacheN)
	}
	if v.cacheN > 0 {
		v.cache = newCache(v.cacheN)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{v.alg}),
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
	)
	return v, nil
}

// Verify checks token and returns its claims. Every error wraps
// sesame.ErrInvalidToken except when the revocation check fails (see
// WithRevocation). Verify does no I/O of its own (but WithUnknownKID's
// function may): its cost is one signature verification plus a few
// microseconds, or, for a cached token, a map lookup and the revocation check.
// ctx is passed to WithUnknownKID's function only.
func (v *Verifier) Verify(ctx context.Context, token string) (sesame.Claims, error) {
	if len(token) > MaxTokenBytes {
		return sesame.Claims{}, invalid(errTooLong)
	}
	ks := v.keys.Load()

	var now time.Time
	var claims sesame.Claims
	hit := false
	if v.cache != nil {
		now = v.now()
		var kid string
		claims, kid, hit = v.cache.get(token, now)
		if hit {
			_, hit = ks.publicKey(kid)
		}
	}
	if !hit {
		// Only a token not seen before is checked for its form: a hit
		// is exactly a token that passed.
		if err := wellFormed(token); err != nil {
			return sesame.Claims{}, invalid(err)
		}
		var w wireClaims
		var kid string
		unknown := ""
		parse := func() error {
			_, err := v.parser.ParseWithClaims(token, &w, func(t *jwt.Token) (any, error) {
				pub, id, err := v.keyFor(ks, t)
				kid = id
				if errors.Is(err, errUnknownKID) {
					unknown, _ = t.Header["kid"].(string)
				}
				return pub, err
			})
			return err
		}
		err := parse()
		if err != nil && unknown != "" && v.reload != nil && v.reload(ctx, unknown) {
			ks, unknown = v.keys.Load(), ""
			w = wireClaims{}
			err = parse()
		}
		if err != nil {
			return sesame.Claims{}, invalid(err)
		}
		claims = w.claims()
		if v.cache != nil {
			from, until := v.validity(claims)
			v.cache.put(token, cacheEntry{claims: claims, kid: kid, from: from, until: until}, now)
		}
	}

	if v.revoked != nil {
		revoked, err := v.revoked(claims.SessionID, claims.IssuedAt)
		if err != nil {
			return sesame.Claims{}, fmt.Errorf("token: revocation check: %w: %w", sesame.ErrUnavailable, err)
		}
		if revoked {
			return sesame.Claims{}, invalid(errors.New("session revoked"))
		}
	}
	return claims, nil
}

func invalid(err error) error {
	return fmt.Errorf("%w: %w", sesame.ErrInvalidToken, err)
}

// validity returns the span in which the claims are accepted, as the
// parser's checks define it: from max(nbf, iat) - leeway (inclusive) until
// exp + leeway (exclusive).
func (v *Verifier) validity(c sesame.Claims) (from, until time.Time) {
	from = c.NotBefore
	if c.IssuedAt.After(from) {
		from = c.IssuedAt
	}
	return from.Add(-v.leeway), c.ExpiresAt.Add(v.leeway)
}

var errUnknownKID = errors.New("unknown kid")

// allowedHeader is every header member Sesame's tokens have. Anything
// else is refused rather than ignored: jku, jwk, x5u and x5c would name a
// key, crit and b64 would change how the token is read, and no token of
// ours carries them, so a token that does is not ours.
var allowedHeader = map[string]bool{"alg": true, "kid": true, "typ": true}

// keyFor is the keyfunc: golang-jwt has already checked that alg is v.alg.
// It checks the rest of the header and returns the key named by kid, only
// ever from ks.
func (v *Verifier) keyFor(ks *KeySet, t *jwt.Token) (crypto.PublicKey, string, error) {
	for name := range t.Header {
		if !allowedHeader[name] {
			return nil, "", errors.New("header member not accepted")
		}
	}
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(typ, TypeAccessToken) && !strings.EqualFold(typ, "application/"+TypeAccessToken) {
		return nil, "", errors.New(`typ is not "at+jwt"`)
	}
	if ks.alg != v.alg {
		return nil, "", errors.New("key set is for another algorithm")
	}
	kid, _ := t.Header["kid"].(string)
	pub, ok := ks.publicKey(kid)
	if !ok {
		return nil, "", errUnknownKID
	}
	return pub, kid, nil
}

// tokenByte maps each byte a compact JWS may hold (base64url and the
// dots) to itself, and every other byte to 0: one load per byte.
var tokenByte = func() (t [256]byte) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = c
	}
	return t
}()

var errTooLong = fmt.Errorf("token longer than %d bytes", MaxTokenBytes)

// wellFormed checks what golang-jwt does not: the length, and that the
// token is exactly three segments of base64url characters. The standard
// library's base64 decoder skips CR and LF even in strict mode, so without
// this check a signature segment with a line break in it would verify.
// Padding is refused here too; golang-jwt's strict decoding then refuses
// non-zero trailing bits, so each segment has one spelling only.
// Verify checks it on every token it has not cached.
func wellFormed(token string) error {
	if len(token) > MaxTokenBytes {
		return errTooLong
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		switch tokenByte[token[i]] {
		case 0:
			return errors.New("token is not base64url")
		case '.':
			dots++
		}
	}
	switch dots {
	case 2:
		return nil
	case 4:
		return errors.New("encrypted tokens (JWE) are not accepted")
	}
	return errors.New("token is not three segments")
}
