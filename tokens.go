package sesame

import (
	"context"
	"crypto/hmac"
	"errors"
	"time"
)

// TokenIssuer signs access tokens (package token implements it). It alone
// decides what every access token says about where it comes from and how
// long it lives: its issuer, its default audience and its lifetime. A
// caller names whose token it is and, at most, a deadline it must not
// outlive and an audience other than the default.
type TokenIssuer interface {
	// IssueAccessToken signs an access token for c.Subject, c.SessionID,
	// c.Email and c.Roles, and returns it with the claims it carries. The
	// issuer sets iss; aud is its own unless c.Audience is set; iat and nbf
	// are c.IssuedAt (now if zero); exp is the issuer's lifetime after iat,
	// or c.ExpiresAt if that is earlier; jti is fresh. It returns an error,
	// handing out nothing, for claims a verifier would refuse (no subject or
	// session, an expiry not after the issue time).
	IssueAccessToken(c Claims) (string, Claims, error)
}

// TokenVerifier verifies access tokens (package token implements it).
type TokenVerifier interface {
	// Verify returns the claims of a valid, unrevoked access token. It
	// returns an error matching ErrInvalidToken for any token that does
	// not verify, and another error when the revocation state cannot be
	// read.
	Verify(ctx context.Context, token string) (Claims, error)
}

// Tokens is a successful token grant (RFC 6749 §5.1).
type Tokens struct {
	AccessToken  string
	ExpiresIn    int // seconds
	RefreshToken string
	// RefreshExpiresAt is when the refresh family ends: the refresh
	// token's last moment, and a refresh cookie's expiry.
	RefreshExpiresAt time.Time
	User             User
	SessionID        string
}

// GrantsConfig configures Grants. Backend, Issuer and a 32-byte
// SuccessorKey are required.
type GrantsConfig struct {
	// Backend keeps the refresh families: the session store of the
	// Authenticator the grants are built on (a family is a session record
	// of KindToken, ended like any other session).
	Backend SessionBackend
	// Issuer signs the access tokens and decides their iss, aud and
	// lifetime.
	Issuer TokenIssuer
	// Verifier lets Revoke end the family of an access token; without it,
	// Revoke ends families by refresh token only.
	Verifier TokenVerifier
	// RefreshTokenTTL is a refresh family's lifetime from login (default
	// 720h).
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long after a refresh token was used it
	// still yields the same successor instead of ending its family.
	RefreshReuseGrace time.Duration
	// SuccessorKey (at least 32 bytes) derives each refresh token's
	// successor, so that a retried refresh within the grace window gets
	// the same one without the store keeping any token in the clear, and
	// authenticates the family and generation a refresh token names (see
	// refreshtoken.go). It never leaves the Grants.
	SuccessorKey []byte
}

// Grants are the OAuth 2.0 token grants: the password grant (Password),
// the refresh-token grant (Refresh) and token revocation (Revoke, RFC
// 7009). They are built on an Authenticator, which checks passwords under
// its throttle, ends sessions (telling its revocation set) and records the
// audit events. Grants are safe for concurrent use.
type Grants struct {
	auth *Authenticator
	cfg  GrantsConfig
}

// NewGrants returns the token grants over auth and cfg, with defaults
// filled in. It returns an error if Backend or Issuer is missing or the
// successor key is shorter than 32 bytes.
func NewGrants(auth *Authenticator, cfg GrantsConfig) (*Grants, error) {
	switch {
	case auth == nil || cfg.Backend == nil || cfg.Issuer == nil:
		return nil, errors.New("sesame: NewGrants: an Authenticator, a Backend and an Issuer are required")
	case len(cfg.SuccessorKey) < 32:
		return nil, errors.New("sesame: NewGrants: the successor key must be at least 32 bytes")
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = 720 * time.Hour
	}
	cfg.SuccessorKey = append([]byte(nil), cfg.SuccessorKey...)
	return &Grants{auth: auth, cfg: cfg}, nil
}

// Password is the password grant: it checks email and password (under the
// login throttle, with the same errors as Authenticator.Login) and starts a
// refresh family: a session record of KindToken that lasts RefreshTokenTTL,
// its first refresh token and an access token. Like Login, it ends the
// family it created and returns ErrInvalidCredentials if the user's
// password changed or sessions were all ended while it was in flight.
func (g *Grants) Password(ctx context.Context, email, password string, c Client) (Tokens, error) {
	a := g.auth
	u, err := a.CheckPassword(ctx, email, password, c)
	if err != nil {
		return Tokens{}, err
	}
	now := a.cfg.Now().UTC().Truncate(time.Millisecond)
	_, unused := NewSecret() // a token family has no cookie secret
	s := Session{
		ID:                NewID(),
		SecretHash:        unused,
		UserID:            u.ID,
		CreatedAt:         now,
		LastSeenAt:        now,
		ExpiresAt:         now.Add(g.cfg.RefreshTokenTTL),
		AbsoluteExpiresAt: now.Add(g.cfg.RefreshTokenTTL),
		IP:                c.IP,
		UserAgent:         c.UserAgent,
		Kind:              KindToken,
	}
	if err := g.cfg.Backend.CreateSession(ctx, s); err != nil {
		return Tokens{}, err
	}
	refresh, hash := newRefreshToken(g.cfg.SuccessorKey, u.ID, s.ID)
	if err := g.cfg.Backend.CreateRefreshToken(ctx, RefreshToken{Hash: hash, SessionID: s.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: s.ExpiresAt}); err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			// The family was ended before its first token was stored: a
			// password change or a revocation of the user overtook this
			// grant, which is then refused like any other it overtakes.
			a.audit(ctx, Event{Type: EventLoginFailed, UserID: u.ID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
			return Tokens{}, ErrInvalidCredentials
		}
		return Tokens{}, err
	}
	// A password change or revocation of the user while this grant was in
	// flight ends the family here (and the answer is invalid_grant); the
	// access token carries the user as read after the family exists.
	if u, err = a.confirmLogin(ctx, u, s.ID, c); err != nil {
		return Tokens{}, err
	}
	access, ttl, err := g.accessToken(u, s.ID, s.ExpiresAt, now)
	if err != nil {
		return Tokens{}, err
	}
	a.audit(ctx, Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
	a.audit(ctx, Event{Type: EventTokenIssued, UserID: u.ID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
	return Tokens{AccessToken: access, ExpiresIn: ttl, RefreshToken: refresh, RefreshExpiresAt: s.ExpiresAt, User: u, SessionID: s.ID}, nil
}

// accessToken signs an access token for the session, expiring no later
// than the family does, and returns it with its lifetime in seconds.
func (g *Grants) accessToken(u User, sid string, familyEnd, now time.Time) (string, int, error) {
	tok, c, err := g.cfg.Issuer.IssueAccessToken(Claims{
		Subject: u.ID, SessionID: sid, Email: u.Email, Roles: u.Roles,
		IssuedAt: now, ExpiresAt: familyEnd,
	})
	if err != nil {
		return "", 0, err
	}
	return tok, int(c.ExpiresAt.Sub(now) / time.Second), nil
}

// Refresh is the refresh-token grant: it exchanges a refresh token for a
// new one and a new access token. It returns ErrInvalidGrant for an
// unknown, expired or ended token. A retired token presented again within
// RefreshReuseGrace, while its successor is still current, yields that
// same successor; outside it, the whole family ends at once (its access
// tokens included) and the answer is ErrInvalidGrant. That holds too for a
// retired token so old that the store has forgotten it: the token names its
// family and generation.
func (g *Grants) Refresh(ctx context.Context, refresh string, c Client) (Tokens, error) {
	a := g.auth
	if !validRefreshToken(g.cfg.SuccessorKey, refresh) {
		return Tokens{}, ErrInvalidGrant
	}
	hash := HashSecret(refresh)
	old, err := g.cfg.Backend.RefreshToken(ctx, hash)
	if errors.Is(err, ErrInvalidGrant) {
		return Tokens{}, g.forgottenRefresh(ctx, refresh, c)
	}
	if err != nil {
		return Tokens{}, err
	}
	now := a.cfg.Now().UTC().Truncate(time.Millisecond)
	// Access tokens count in whole seconds: a family with less than one
	// left can mint none, so it is over (refused before anything changes).
	if old.ExpiresAt.Sub(now) < time.Second {
		return Tokens{}, ErrInvalidGrant
	}
	u, err := a.cachedUser(ctx, old.UserID, now, old.CreatedAt)
	if errors.Is(err, ErrUserNotFound) || err == nil && u.Disabled {
		return Tokens{}, ErrInvalidGrant
	} else if err != nil {
		return Tokens{}, err
	}
	// Mint before rotating: a failure here leaves the presented token
	// current, so a retry is not mistaken for a replay.
	access, ttl, err := g.accessToken(u, old.SessionID, old.ExpiresAt, now)
	if err != nil {
		return Tokens{}, err
	}
	next := successorRefreshToken(g.cfg.SuccessorKey, refresh, refreshID{old.UserID, old.SessionID, old.Generation + 1})
	nextHash := HashSecret(next)
	err = g.cfg.Backend.RotateRefreshToken(ctx, hash, RefreshToken{Hash: nextHash, SessionID: old.SessionID, UserID: old.UserID, CreatedAt: now, ExpiresAt: old.ExpiresAt})
	var reuse *ReuseError
	switch {
	case errors.As(err, &reuse):
		inGrace := g.cfg.RefreshReuseGrace > 0 && reuse.SuccessorCurrent &&
			now.Sub(reuse.Token.RetiredAt) <= g.cfg.RefreshReuseGrace &&
			hmac.Equal(reuse.Token.SuccessorHash[:], nextHash[:])
		if !inGrace {
			return Tokens{}, g.reuseDetected(ctx, old, c)
		}
	case err != nil:
		return Tokens{}, err
	}
	// Record the use for the device list: at most one write a TouchInterval.
	if now.Sub(old.CreatedAt) >= a.cfg.TouchInterval {
		switch err := g.cfg.Backend.TouchSession(ctx, old.UserID, old.SessionID, now, old.ExpiresAt); {
		case errors.Is(err, ErrSessionNotFound):
			return Tokens{}, ErrInvalidGrant // the family ended while we rotated
		case err != nil:
			a.cfg.Logger.Warn("touch token session", "session_id", old.SessionID, "err", err)
		}
	}
	a.audit(ctx, Event{Type: EventTokenRefreshed, UserID: u.ID, SessionID: old.SessionID, IP: c.IP, UserAgent: c.UserAgent})
	return Tokens{AccessToken: access, ExpiresIn: ttl, RefreshToken: next, RefreshExpiresAt: old.ExpiresAt, User: u, SessionID: old.SessionID}, nil
}

// forgottenRefresh answers a refresh token the store does not know. One
// that names a live family whose current generation is past its own was
// retired and then forgotten (a family keeps only the newest retired
// tokens): a reuse, so the family ends. Anything else (a family that
// ended, a token of the earlier form, one from the future) is only
// ErrInvalidGrant.
func (g *Grants) forgottenRefresh(ctx context.Context, refresh string, c Client) error {
	id, ok := parseRefreshToken(g.cfg.SuccessorKey, refresh)
	if !ok {
		return ErrInvalidGrant
	}
	cur, err := g.cfg.Backend.CurrentRefreshToken(ctx, id.userID, id.sessionID)
	switch {
	case errors.Is(err, ErrInvalidGrant):
		return ErrInvalidGrant
	case err != nil:
		return err
	case id.generation >= cur.Generation:
		return ErrInvalidGrant
	}
	return g.reuseDetected(ctx, cur, c)
}

// reuseDetected ends the family of a replayed refresh token.
func (g *Grants) reuseDetected(ctx context.Context, old RefreshToken, c Client) error {
	a := g.auth
	if err := a.endSession(ctx, old.UserID, old.SessionID); err != nil {
		return err
	}
	a.cfg.Logger.Warn("refresh token reuse: family ended", "session_id", old.SessionID, "user_id", old.UserID, "ip", c.IP)
	a.audit(ctx, Event{Type: EventTokenReuse, UserID: old.UserID, SessionID: old.SessionID, IP: c.IP, UserAgent: c.UserAgent})
	return ErrInvalidGrant
}

// Revoke ends the family of a refresh token or an access token (RFC 7009).
// A token that is unknown, malformed, expired or already revoked is not an
// error: there is nothing left to end.
func (g *Grants) Revoke(ctx context.Context, token string, c Client) error {
	var sid, userID string
	if validRefreshToken(g.cfg.SuccessorKey, token) {
		rt, err := g.cfg.Backend.RefreshToken(ctx, HashSecret(token))
		switch {
		case errors.Is(err, ErrInvalidGrant):
			// A retired token the store forgot still names its family.
			if id, ok := parseRefreshToken(g.cfg.SuccessorKey, token); ok {
				switch cur, err := g.cfg.Backend.CurrentRefreshToken(ctx, id.userID, id.sessionID); {
				case errors.Is(err, ErrInvalidGrant):
				case err != nil:
					return err
				default:
					sid, userID = cur.SessionID, cur.UserID
				}
			}
		case err != nil:
			return err
		default:
			sid, userID = rt.SessionID, rt.UserID
		}
	} else if g.cfg.Verifier != nil {
		claims, err := g.cfg.Verifier.Verify(ctx, token)
		switch {
		case errors.Is(err, ErrInvalidToken):
		case err != nil:
			return err
		default:
			sid, userID = claims.SessionID, claims.Subject
		}
	}
	if sid == "" {
		return nil
	}
	if err := g.auth.endSession(ctx, userID, sid); err != nil {
		return err
	}
	g.auth.audit(ctx, Event{Type: EventTokenRevoked, UserID: userID, SessionID: sid, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}
