package server

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesameauth/sesame"
)

// tokenRequest is the union of the token endpoint's parameters (RFC 6749
// §4.3 and §6), from a form or a JSON body.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	ClientID     string `json:"client_id"`
	Token        string `json:"token"`
	TokenHint    string `json:"token_type_hint"`
	// RefreshTokenIn is "cookie" to receive the refresh token in the
	// HttpOnly refresh cookie instead of the body (API.md "Tokens in a
	// browser without a readable secret").
	RefreshTokenIn string `json:"refresh_token_in"`
}

// oauthError is an RFC 6749 §5.2 error: 400 unless said otherwise.
func oauthError(code, desc string) error {
	return &apiError{status: http.StatusBadRequest, code: code, desc: desc}
}

// decodeTokenRequest reads a form (RFC 6749) or JSON body. Parameters are
// read from the body only, never the query string, and none may repeat.
func decodeTokenRequest(r *http.Request) (tokenRequest, error) {
	if isJSON(r) {
		in, err := decodeJSON[tokenRequest](r)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusBadRequest {
				return in, oauthError("invalid_request", ae.desc)
			}
		}
		return in, err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return tokenRequest{}, oauthError("invalid_request", "Content-Type must be application/x-www-form-urlencoded or application/json")
	}
	b, err := readBody(r)
	if err != nil {
		return tokenRequest{}, err
	}
	vals, err := url.ParseQuery(string(b))
	if err != nil {
		return tokenRequest{}, oauthError("invalid_request", "the form body is malformed")
	}
	var in tokenRequest
	fields := map[string]*string{
		"grant_type": &in.GrantType, "username": &in.Username, "password": &in.Password,
		"refresh_token": &in.RefreshToken, "scope": &in.Scope, "client_id": &in.ClientID,
		"token": &in.Token, "token_type_hint": &in.TokenHint, "refresh_token_in": &in.RefreshTokenIn,
	}
	for k, v := range vals {
		if len(v) > 1 {
			return tokenRequest{}, oauthError("invalid_request", "parameter "+truncate(k, 64)+" is repeated")
		}
		if p, ok := fields[k]; ok {
			*p = v[0]
		}
	}
	return in, nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"` // absent when it went into the cookie
}

// RefreshCookieName is the cookie a browser's refresh token lives in with
// refresh_token_in=cookie. The __Host- prefix would demand Path=/; the
// __Secure- prefix still makes browsers insist on Secure.
const RefreshCookieName = "__Secure-sesame-refresh"

// refreshCookiePath scopes the refresh cookie to the token endpoint (and
// /v1/token/revoke under it): no other request carries it.
const refreshCookiePath = "/v1/token"

// refreshCookie returns the refresh token from the refresh cookie: the
// first one that could be a token (base64url, at most 1 KiB); the grant
// decides whether it is one.
func refreshCookie(r *http.Request) (string, bool) {
	for _, c := range r.CookiesNamed(RefreshCookieName) {
		if v := c.Value; v != "" && len(v) <= 1024 && !strings.ContainsFunc(v, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
		}) {
			return v, true
		}
	}
	return "", false
}

// setRefreshCookie sends the refresh token in the HttpOnly cookie, expiring
// with its family, never with a Domain (it stays with this host even with
// --cookie-domain).
func setRefreshCookie(w http.ResponseWriter, t sesame.Tokens, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: RefreshCookieName, Value: t.RefreshToken, Path: refreshCookiePath,
		MaxAge: max(int(t.RefreshExpiresAt.Sub(now)/time.Second), 1),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// clearRefreshCookie tells the browser to forget the refresh cookie.
func clearRefreshCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: RefreshCookieName, Value: "", Path: refreshCookiePath, MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// handleToken is the OAuth 2.0 token endpoint: the password and
// refresh_token grants.
func (s *server) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		in, err := decodeTokenRequest(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		c := s.clientOf(r)
		// The refresh cookie is used when a refresh names no token, and
		// asked for with refresh_token_in=cookie; either way a request
		// from another origin is refused, so that no other site can use
		// the browser's sign-in or plant its own in it.
		toCookie := false
		switch in.RefreshTokenIn {
		case "":
		case "cookie":
			toCookie = true
		default:
			s.fail(w, r, oauthError("invalid_request", "refresh_token_in must be cookie"))
			return
		}
		if in.GrantType == "refresh_token" && in.RefreshToken == "" {
			tok, ok := refreshCookie(r)
			if !ok {
				s.fail(w, r, oauthError("invalid_request", "refresh_token is required (no refresh cookie was sent)"))
				return
			}
			in.RefreshToken, toCookie = tok, true
		}
		if toCookie && s.origins.crossOrigin(r) {
			s.fail(w, r, errCSRF)
			return
		}
		var t sesame.Tokens
		switch in.GrantType {
		case "password":
			if in.Username == "" || in.Password == "" {
				s.fail(w, r, oauthError("invalid_request", "username and password are required"))
				return
			}
			if s.Grants == nil {
				s.fail(w, r, sesame.ErrUnavailable)
				return
			}
			t, err = s.Grants.Password(r.Context(), in.Username, in.Password, c)
			s.countLogin(err)
		case "refresh_token":
			if in.RefreshToken == "" {
				s.fail(w, r, oauthError("invalid_request", "refresh_token is required"))
				return
			}
			if s.Grants == nil {
				s.fail(w, r, sesame.ErrUnavailable)
				return
			}
			t, err = s.Grants.Refresh(r.Context(), in.RefreshToken, c)
		case "":
			s.fail(w, r, oauthError("invalid_request", "grant_type is required"))
			return
		default:
			s.fail(w, r, oauthError("unsupported_grant_type", "grant_type must be password or refresh_token"))
			return
		}
		switch {
		case err == nil:
		case errors.Is(err, sesame.ErrInvalidCredentials):
			s.fail(w, r, oauthError("invalid_grant", "the credentials are wrong"))
			return
		case errors.Is(err, sesame.ErrInvalidGrant), errors.Is(err, sesame.ErrRefreshReused):
			if toCookie && in.GrantType == "refresh_token" {
				clearRefreshCookie(w) // it will never work again
			}
			s.fail(w, r, oauthError("invalid_grant", "the refresh token is invalid, expired or revoked"))
			return
		default:
			s.fail(w, r, err)
			return
		}
		out := tokenResponse{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn, RefreshToken: t.RefreshToken}
		if toCookie {
			setRefreshCookie(w, t, time.Now())
			out.RefreshToken = ""
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// handleRevokeToken is RFC 7009 revocation: 200 whatever the token was.
func (s *server) handleRevokeToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		in, err := decodeTokenRequest(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		fromCookie := false
		if in.Token == "" {
			// Without a token, the refresh cookie's family ends (and the
			// cookie goes), when the request comes from a permitted origin.
			tok, ok := refreshCookie(r)
			if !ok {
				s.fail(w, r, oauthError("invalid_request", "token is required (no refresh cookie was sent)"))
				return
			}
			if s.origins.crossOrigin(r) {
				s.fail(w, r, errCSRF)
				return
			}
			in.Token = tok
			fromCookie = true
		}
		if s.Grants == nil {
			s.fail(w, r, sesame.ErrUnavailable)
			return
		}
		if err := s.Grants.Revoke(r.Context(), in.Token, s.clientOf(r)); err != nil {
			s.fail(w, r, err)
			return
		}
		if fromCookie {
			clearRefreshCookie(w)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("{}\n"))
	})
}

// userinfoResponse is the body of GET /v1/userinfo.
type userinfoResponse struct {
	Sub   string   `json:"sub"`
	Email string   `json:"email"`
	Roles []string `json:"roles"`
	Auth  string   `json:"auth"` // "session" or "token": httpauth.ViaSession, ViaToken
	SID   string   `json:"sid,omitempty"`
}

func (s *server) handleUserinfo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r) // signedIn marks the answer no-store
		roles := p.User.Roles
		if roles == nil {
			roles = []string{}
		}
		writeHot(w, http.StatusOK, userinfoResponse{Sub: p.User.ID, Email: p.User.Email, Roles: roles, Auth: p.Via, SID: p.Session.ID})
	})
}

func (s *server) handleJWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.JWKS == nil {
			s.fail(w, r, sesame.ErrUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// Short: a rotated key must reach verifiers quickly, and they
		// refetch on an unknown kid anyway.
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write(s.JWKS())
	})
}

func (s *server) handleDiscovery() http.Handler {
	type doc struct {
		Issuer                 string   `json:"issuer"`
		JWKSURI                string   `json:"jwks_uri"`
		TokenEndpoint          string   `json:"token_endpoint"`
		UserinfoEndpoint       string   `json:"userinfo_endpoint"`
		RevocationEndpoint     string   `json:"revocation_endpoint"`
		IDTokenAlgs            []string `json:"id_token_signing_alg_values_supported"`
		GrantTypes             []string `json:"grant_types_supported"`
		ResponseTypes          []string `json:"response_types_supported"`
		SubjectTypes           []string `json:"subject_types_supported"`
		TokenAuthMethods       []string `json:"token_endpoint_auth_methods_supported"`
		RevocationAuthMethods  []string `json:"revocation_endpoint_auth_methods_supported"`
		ClaimsSupported        []string `json:"claims_supported"`
		AccessTokenSigningAlgs []string `json:"access_token_signing_alg_values_supported"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss := strings.TrimRight(s.Issuer, "/")
		algs := []string{s.SigningAlg}
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(w, http.StatusOK, doc{
			Issuer: s.Issuer, JWKSURI: iss + "/.well-known/jwks.json", TokenEndpoint: iss + "/v1/token",
			UserinfoEndpoint: iss + "/v1/userinfo", RevocationEndpoint: iss + "/v1/token/revoke",
			IDTokenAlgs: algs, AccessTokenSigningAlgs: algs,
			GrantTypes: []string{"password", "refresh_token"}, ResponseTypes: []string{"token"},
			SubjectTypes: []string{"public"}, TokenAuthMethods: []string{"none"}, RevocationAuthMethods: []string{"none"},
			ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "email", "roles"},
		})
	})
}
