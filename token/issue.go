package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sesameauth/sesame"
)

// TypeAccessToken is the typ header of every access token (RFC 9068 §2.1).
const TypeAccessToken = "at+jwt"

// DefaultTTL is the lifetime of an access token when neither the claims
// nor the Issuer say otherwise.
const DefaultTTL = 10 * time.Minute

// Issuer signs access tokens with the current key of Keys. Its fields are
// the defaults for claims the caller leaves zero; set them before the first
// Issue and do not change them afterwards. An Issuer is safe for concurrent
// use.
type Issuer struct {
	Keys     *Keys
	Issuer   string           // iss, e.g. "https://auth.example.com"
	Audience []string         // aud; usually one entry, the issuer itself
	TTL      time.Duration    // exp - iat; DefaultTTL if zero
	Now      func() time.Time // time.Now if nil
}

// Issue returns a signed access token for c: a JWS compact JWT whose header
// is {"alg", "kid", "typ":"at+jwt"} and whose claims are iss, sub, aud (a
// string if there is one audience, else an array), exp, iat, nbf, jti, sid,
// email (omitted if empty) and roles (an array, possibly empty). Zero
// fields of c are filled in: Issuer and Audience from the Issuer, IssuedAt
// and NotBefore with the current time, ExpiresAt with IssuedAt + TTL, and
// ID with 128 random bits in base64url. Times are truncated to whole
// seconds. It returns an error, handing out nothing, for claims the
// Verifier would refuse: no subject, no session id, no issuer or audience,
// an expiry not after the issue time, or so many roles that the token is
// longer than MaxTokenBytes. Keys must be set.
func (is *Issuer) Issue(c sesame.Claims) (string, error) {
	ks := is.Keys.Load()
	now := time.Now
	if is.Now != nil {
		now = is.Now
	}
	if c.Issuer == "" {
		c.Issuer = is.Issuer
	}
	if len(c.Audience) == 0 {
		c.Audience = is.Audience
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.ExpiresAt.IsZero() {
		ttl := is.TTL
		if ttl == 0 {
			ttl = DefaultTTL
		}
		c.ExpiresAt = c.IssuedAt.Add(ttl)
	}
	if c.ID == "" {
		c.ID = newJTI()
	}
	switch {
	case c.Issuer == "":
		return "", errors.New("token: issue: no issuer")
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return "", errors.New("token: issue: no audience")
	case c.Subject == "":
		return "", errors.New("token: issue: no subject")
	case c.SessionID == "":
		return "", errors.New("token: issue: no session id")
	case c.ExpiresAt.Unix() <= c.IssuedAt.Unix():
		return "", errors.New("token: issue: expiry not after issue time")
	}

	t := jwt.NewWithClaims(ks.method, newWireClaims(c))
	t.Header["typ"] = TypeAccessToken
	t.Header["kid"] = ks.current.ID
	s, err := t.SignedString(ks.signer)
	if err != nil {
		return "", fmt.Errorf("token: issue: %w", err)
	}
	if len(s) > MaxTokenBytes {
		return "", fmt.Errorf("token: issue: token of %d bytes is longer than MaxTokenBytes", len(s))
	}
	return s, nil
}

var _ sesame.TokenIssuer = (*Issuer)(nil)

// IssueAccessToken signs an access token whose issuer and lifetime are the
// Issuer's alone (sesame.TokenIssuer): iss is always Issuer, aud is
// Audience unless c names one, iat and nbf are c.IssuedAt (now if zero),
// exp is TTL after iat or c.ExpiresAt if that is earlier, and jti is fresh.
// It returns the token with the claims it carries; errors as Issue.
func (is *Issuer) IssueAccessToken(c sesame.Claims) (string, sesame.Claims, error) {
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
		if is.Now != nil {
			c.IssuedAt = is.Now()
		}
	}
	ttl := is.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	exp := c.IssuedAt.Add(ttl)
	if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(exp) {
		exp = c.ExpiresAt
	}
	c.Issuer, c.NotBefore, c.ExpiresAt, c.ID = is.Issuer, c.IssuedAt, exp, newJTI()
	if len(c.Audience) == 0 {
		c.Audience = is.Audience
	}
	tok, err := is.Issue(c)
	if err != nil {
		return "", sesame.Claims{}, err
	}
	return tok, c, nil
}

// newJTI returns 128 random bits in base64url.
func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// wireClaims is the JSON form of sesame.Claims in an access token. It
// implements jwt.Claims so that golang-jwt checks exp, nbf, iat, iss and
// aud, and jwt.ClaimsValidator for the claims Sesame also requires.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	ExpiresAt *date    `json:"exp"`
	IssuedAt  *date    `json:"iat"`
	NotBefore *date    `json:"nbf"`
	ID        string   `json:"jti"`
	SessionID string   `json:"sid"`
	Email     string   `json:"email,omitempty"`
	Roles     []string `json:"roles"`
}

func newWireClaims(c sesame.Claims) *wireClaims {
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	return &wireClaims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  audience(c.Audience),
		ExpiresAt: newDate(c.ExpiresAt),
		IssuedAt:  newDate(c.IssuedAt),
		NotBefore: newDate(c.NotBefore),
		ID:        c.ID,
		SessionID: c.SessionID,
		Email:     c.Email,
		Roles:     roles,
	}
}

// claims returns w as sesame.Claims. Only call it on claims that passed
// Validate, so that the dates are set.
func (w *wireClaims) claims() sesame.Claims {
	return sesame.Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  []string(w.Audience),
		ExpiresAt: w.ExpiresAt.time(),
		IssuedAt:  w.IssuedAt.time(),
		NotBefore: w.NotBefore.time(),
		ID:        w.ID,
		SessionID: w.SessionID,
		Email:     w.Email,
		Roles:     w.Roles,
	}
}

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return w.ExpiresAt.numeric(), nil }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return w.IssuedAt.numeric(), nil }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return w.NotBefore.numeric(), nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return w.Subject, nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(w.Audience), nil
}

// Validate requires the claims that golang-jwt's options cannot: exp, nbf,
// iss and aud are required by the parser options, sub, sid, jti and iat
// here (the parser checks iat's value, not its presence).
func (w *wireClaims) Validate() error {
	var missing []string
	if w.IssuedAt == nil {
		missing = append(missing, "iat")
	}
	if w.Subject == "" {
		missing = append(missing, "sub")
	}
	if w.SessionID == "" {
		missing = append(missing, "sid")
	}
	if w.ID == "" {
		missing = append(missing, "jti")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v", jwt.ErrTokenRequiredClaimMissing, missing)
	}
	return nil
}

// audience is the aud claim: a string when there is one audience, an array
// otherwise (RFC 7519 §4.1.3 allows both). It does not use
// jwt.ClaimStrings, whose encoding is a package-wide setting and whose
// decoder goes through an any.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings; null leaves a
// unchanged (so the claim counts as missing).
func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// date is a NumericDate (RFC 7519 §2) in whole seconds. The Issuer writes
// nothing else, so a fractional, exponent or string form is refused rather
// than rounded; decoding it is also several times cheaper than
// jwt.NumericDate's.
type date int64

func newDate(t time.Time) *date {
	d := date(t.Unix())
	return &d
}

func (d *date) time() time.Time { return time.Unix(int64(*d), 0) }

// numeric returns d for golang-jwt's checks, nil if d is nil (absent).
func (d *date) numeric() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &jwt.NumericDate{Time: d.time()}
}

func (d date) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(d), 10), nil
}

// UnmarshalJSON is only called for a non-null value: the fields are
// pointers, which null leaves nil.
func (d *date) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errors.New("NumericDate is not an integer")
	}
	*d = date(n)
	return nil
}
