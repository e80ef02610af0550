package sesame

import (
	"context"
	"crypto/hmac"
	"errors"
	"time"
)

// TokenIssuer signs access tokens (package token implements it).
type TokenIssuer interface {
	// Issue returns the signed compact JWT for c; it sets c.ID (jti) if
	// empty.
	Issue(c Claims) (string, error)
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

func (a *Authenticator) tokensEnabled() error {
	if a.cfg.Refresh == nil || a.cfg.Tokens == nil || len(a.cfg.SuccessorKey) < 32 {
		return errors.New("sesame: token grants are not configured")
	}
	return nil
}

// IssueTokens checks email and password (under the login throttle, with
// the same errors as Login) and starts a refresh family: a session record
// of KindToken that lasts RefreshTokenTTL, its first refresh token and an
// access token.
func (a *Authenticator) IssueTokens(ctx context.Context, email, password string, c Client) (Tokens, error) {
	if err := a.tokensEnabled(); err != nil {
		return Tokens{}, err
	}
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
		ExpiresAt:         now.Add(a.cfg.RefreshTokenTTL),
		AbsoluteExpiresAt: now.Add(a.cfg.RefreshTokenTTL),
		IP:                c.IP,
		UserAgent:         c.UserAgent,
		Kind:              KindToken,
	}
	if err := a.cfg.Sessions.CreateSession(ctx, s); err != nil {
		return Tokens{}, err
	}
	refresh, hash := newRefreshToken(a.cfg.SuccessorKey, u.ID, s.ID)
	if err := a.cfg.Refresh.CreateRefreshToken(ctx, RefreshToken{Hash: hash, SessionID: s.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: s.ExpiresAt}); err != nil {
		return Tokens{}, err
	}
	access, ttl, err := a.accessToken(u, s.ID, s.ExpiresAt, now)
	if err != nil {
		return Tokens{}, err
	}
	a.audit(ctx, Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
	a.audit(ctx, Event{Type: EventTokenIssued, UserID: u.ID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
	return Tokens{AccessToken: access, ExpiresIn: ttl, RefreshToken: refresh, RefreshExpiresAt: s.ExpiresAt, User: u, SessionID: s.ID}, nil
}

// accessToken signs an access token for the session, expiring no later
// than the family does.
func (a *Authenticator) accessToken(u User, sid string, familyEnd, now time.Time) (string, int, error) {
	exp := now.Add(a.cfg.AccessTokenTTL)
	if familyEnd.Before(exp) {
		exp = familyEnd
	}
	aud := a.cfg.Audience
	if aud == "" {
		aud = a.cfg.Issuer
	}
	tok, err := a.cfg.Tokens.Issue(Claims{
		Issuer: a.cfg.Issuer, Subject: u.ID, Audience: []string{aud},
		ExpiresAt: exp, IssuedAt: now, NotBefore: now,
		SessionID: sid, Email: u.Email, Roles: u.Roles,
	})
	return tok, int(exp.Sub(now) / time.Second), err
}

// Refresh exchanges a refresh token for a new one and a new access token.
// It returns ErrInvalidGrant for an unknown, expired or ended token. A
// retired token presented again within RefreshReuseGrace, while its
// successor is still current, yields that same successor; outside it, the
// whole family ends at once (its access tokens included) and the answer is
// ErrInvalidGrant. That holds too for a retired token so old that the store
// has forgotten it: the token names its family and generation.
func (a *Authenticator) Refresh(ctx context.Context, refresh string, c Client) (Tokens, error) {
	if err := a.tokensEnabled(); err != nil {
		return Tokens{}, err
	}
	if !validRefreshToken(a.cfg.SuccessorKey, refresh) {
		return Tokens{}, ErrInvalidGrant
	}
	hash := HashSecret(refresh)
	old, err := a.cfg.Refresh.RefreshToken(ctx, hash)
	if errors.Is(err, ErrInvalidGrant) {
		return Tokens{}, a.forgottenRefresh(ctx, refresh, c)
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
	access, ttl, err := a.accessToken(u, old.SessionID, old.ExpiresAt, now)
	if err != nil {
		return Tokens{}, err
	}
	next := successorRefreshToken(a.cfg.SuccessorKey, refresh, refreshID{old.UserID, old.SessionID, old.Generation + 1})
	nextHash := HashSecret(next)
	err = a.cfg.Refresh.RotateRefreshToken(ctx, hash, RefreshToken{Hash: nextHash, SessionID: old.SessionID, UserID: old.UserID, CreatedAt: now, ExpiresAt: old.ExpiresAt})
	var reuse *ReuseError
	switch {
	case errors.As(err, &reuse):
		inGrace := a.cfg.RefreshReuseGrace > 0 && reuse.SuccessorCurrent &&
			now.Sub(reuse.Token.RetiredAt) <= a.cfg.RefreshReuseGrace &&
			hmac.Equal(reuse.Token.SuccessorHash[:], nextHash[:])
		if !inGrace {
			return Tokens{}, a.reuseDetected(ctx, old, c)
		}
	case err != nil:
		return Tokens{}, err
	}
	// Record the use for the device list: at most one write a TouchInterval.
	if now.Sub(old.CreatedAt) >= a.cfg.TouchInterval {
		switch err := a.cfg.Sessions.TouchSession(ctx, old.UserID, old.SessionID, now, old.ExpiresAt); {
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
func (a *Authenticator) forgottenRefresh(ctx context.Context, refresh string, c Client) error {
	id, ok := parseRefreshToken(a.cfg.SuccessorKey, refresh)
	if !ok {
		return ErrInvalidGrant
	}
	cur, err := a.cfg.Refresh.CurrentRefreshToken(ctx, id.userID, id.sessionID)
	switch {
	case errors.Is(err, ErrInvalidGrant):
		return ErrInvalidGrant
	case err != nil:
		return err
	case id.generation >= cur.Generation:
		return ErrInvalidGrant
	}
	return a.reuseDetected(ctx, cur, c)
}

// reuseDetected ends the family of a replayed refresh token.
func (a *Authenticator) reuseDetected(ctx context.Context, old RefreshToken, c Client) error {
	if err := a.endSession(ctx, old.UserID, old.SessionID); err != nil {
		return err
	}
	a.cfg.Logger.Warn("refresh token reuse: family ended", "session_id", old.SessionID, "user_id", old.UserID, "ip", c.IP)
	a.audit(ctx, Event{Type: EventTokenReuse, UserID: old.UserID, SessionID: old.SessionID, IP: c.IP, UserAgent: c.UserAgent})
	return ErrInvalidGrant
}

// RevokeToken ends the family of a refresh token or an access token (RFC
// 7009). A token that is unknown, malformed, expired or already revoked is
// not an error: there is nothing left to end.
func (a *Authenticator) RevokeToken(ctx context.Context, token string, c Client) error {
	if err := a.tokensEnabled(); err != nil {
		return err
	}
	var sid, userID string
	if validRefreshToken(a.cfg.SuccessorKey, token) {
		rt, err := a.cfg.Refresh.RefreshToken(ctx, HashSecret(token))
		switch {
		case errors.Is(err, ErrInvalidGrant):
			// A retired token the store forgot still names its family.
			if id, ok := parseRefreshToken(a.cfg.SuccessorKey, token); ok {
				switch cur, err := a.cfg.Refresh.CurrentRefreshToken(ctx, id.userID, id.sessionID); {
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
	} else if a.cfg.Verifier != nil {
		claims, err := a.cfg.Verifier.Verify(ctx, token)
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
	if err := a.endSession(ctx, userID, sid); err != nil {
		return err
	}
	a.audit(ctx, Event{Type: EventTokenRevoked, UserID: userID, SessionID: sid, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}
