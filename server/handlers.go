package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
)

type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

func toUserJSON(u sesame.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userJSON{ID: u.ID, Email: u.Email, Roles: roles, CreatedAt: u.CreatedAt.UTC()}
}

type sessionJSON struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type sessionResponse struct {
	User    userJSON    `json:"user"`
	Session sessionJSON `json:"session"`
}

func toSessionResponse(u sesame.User, s sesame.Session) sessionResponse {
	return sessionResponse{
		User:    toUserJSON(u),
		Session: sessionJSON{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()},
	}
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// handleRegister creates an account. With registration closed only an
// admin (signed in) may create one.
func (s *server) handleRegister() http.Handler {
	type response struct {
		ID        string    `json:"id"`
		Email     string    `json:"email"`
		CreatedAt time.Time `json:"created_at"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.clientOf(r)
		if s.Registration == "closed" {
			p, err := s.auth.Authenticate(r)
			if err != nil && !errors.Is(err, httpauth.ErrNoCredentials) && !errors.Is(err, sesame.ErrSessionNotFound) {
				s.fail(w, r, err)
				return
			}
			if err != nil || !p.HasRole(sesame.RoleAdmin) {
				s.fail(w, r, errRegClosed)
				return
			}
			c.Actor = p.User.ID // an administrative action
		} else if _, ok := s.sessionCookie(r); ok && s.origins.crossOrigin(r) {
			s.fail(w, r, errCSRF)
			return
		}
		in, err := decodeJSON[credentials](r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		u, err := s.Auth.AddUser(r.Context(), in.Email, in.Password, nil, c)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.Logger.InfoContext(r.Context(), "user registered", "user_id", u.ID)
		writeJSON(w, http.StatusCreated, response{ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt.UTC()})
	})
}

// handleLogin signs in with email and password and sets the session
// cookie. A live session cookie sent along is ended: every login gets a new
// identifier.
func (s *server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prev, hasPrev := s.sessionCookie(r)
		if hasPrev && s.origins.crossOrigin(r) {
			s.fail(w, r, errCSRF)
			return
		}
		in, err := decodeJSON[credentials](r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		login, err := s.Auth.Login(r.Context(), sesame.LoginRequest{
			Email: in.Email, Password: in.Password, Client: s.clientOf(r), PreviousSecret: prev,
		})
		s.countLogin(err)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.setSessionCookie(w, login.Secret, login.Session.AbsoluteExpiresAt, login.Session.CreatedAt)
		writeJSON(w, http.StatusCreated, toSessionResponse(login.User, login.Session))
	})
}

func (s *server) countLogin(err error) {
	outcome := "succeeded"
	switch {
	case err == nil:
	case errors.Is(err, sesame.ErrInvalidCredentials):
		outcome = "failed"
	case errors.Is(err, sesame.ErrRateLimited):
		outcome = "rate_limited"
	case errors.Is(err, sesame.ErrBusy):
		outcome = "busy"
	default:
		outcome = "error"
	}
	s.metrics.logins.WithLabelValues(outcome).Inc()
}

func (s *server) handleSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		writeHot(w, http.StatusOK, toSessionResponse(p.User, p.Session))
	})
}

// handleLogout ends the cookie's session server-side and clears the cookie.
func (s *server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := s.sessionCookie(r)
		if !ok {
			s.fail(w, r, errUnauthenticated)
			return
		}
		if s.origins.crossOrigin(r) {
			s.fail(w, r, errCSRF)
			return
		}
		if err := s.Auth.Logout(r.Context(), secret, s.clientOf(r)); err != nil {
			if errors.Is(err, sesame.ErrSessionNotFound) {
				s.clearSessionCookie(w)
			}
			s.fail(w, r, err)
			return
		}
		s.clearSessionCookie(w)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *server) handleListSessions() http.Handler {
	type item struct {
		ID         string    `json:"id"`
		CreatedAt  time.Time `json:"created_at"`
		LastSeenAt time.Time `json:"last_seen_at"`
		ExpiresAt  time.Time `json:"expires_at"`
		IP         string    `json:"ip"`
		UserAgent  string    `json:"user_agent"`
		Current    bool      `json:"current"`
		Kind       string    `json:"kind"` // "cookie" or "token" (a refresh-token family)
	}
	type response struct {
		Sessions []item `json:"sessions"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		list, err := s.Auth.Sessions(r.Context(), p.User.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := response{Sessions: make([]item, 0, len(list))}
		for _, x := range list {
			if x.ID == p.Session.ID && p.Via == httpauth.ViaSession {
				x = p.Session // carries the use this very request made
			}
			out.Sessions = append(out.Sessions, item{
				ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastSeenAt: x.LastSeenAt.UTC(), ExpiresAt: x.ExpiresAt.UTC(),
				IP: x.IP, UserAgent: x.UserAgent, Current: x.ID == p.Session.ID, Kind: kindOf(x),
			})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func kindOf(s sesame.Session) string {
	if s.Kind == "" {
		return sesame.KindCookie
	}
	return s.Kind
}

func (s *server) handleRevokeSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		id := r.PathValue("id")
		if err := s.Auth.RevokeSession(r.Context(), p.User.ID, id, s.clientOf(r)); err != nil {
			s.fail(w, r, err)
			return
		}
		if id == p.Session.ID && p.Via == httpauth.ViaSession {
			s.clearSessionCookie(w)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *server) handleRevokeOtherSessions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		if _, err := s.Auth.RevokeSessions(r.Context(), p.User.ID, p.Session.ID, s.clientOf(r)); err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleChangePassword replaces the caller's password; every other session
// of the user ends, and so does every refresh family (API.md): a caller
// signed in with a cookie keeps that session, a caller with a bearer token
// keeps nothing and signs in again with the new password.
func (s *server) handleChangePassword() http.Handler {
	type request struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		in, err := decodeJSON[request](r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.Auth.ChangePassword(r.Context(), sesame.PasswordChange{
			User: p.User, SessionID: p.Session.ID, KeepSession: p.Session.Kind != sesame.KindToken,
			Current: in.Current, New: in.New, Client: s.clientOf(r),
		}); err != nil {
			s.fail(w, r, err)
			return
		}
		s.Logger.InfoContext(r.Context(), "password changed", "user_id", p.User.ID)
		w.WriteHeader(http.StatusNoContent)
	})
}

// adminUserJSON is a user as the admin API shows it.
type adminUserJSON struct {
	userJSON
	Disabled bool `json:"disabled"`
}

func toAdminUserJSON(u sesame.User) adminUserJSON {
	return adminUserJSON{userJSON: toUserJSON(u), Disabled: u.Disabled}
}

// adminClient is the request's client with the admin as the actor, for the
// audit log.
func (s *server) adminClient(r *http.Request) sesame.Client {
	c := s.clientOf(r)
	c.Actor = caller(r).User.ID
	return c
}

func (s *server) handleAdminUsers() http.Handler {
	type response struct {
		Users []adminUserJSON `json:"users"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Auth.Users(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := response{Users: make([]adminUserJSON, 0, len(list))}
		for _, u := range list {
			out.Users = append(out.Users, toAdminUserJSON(u))
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (s *server) handleAdminRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		id := r.PathValue("id")
		if _, err := s.Auth.User(r.Context(), id); err != nil {
			s.fail(w, r, err)
			return
		}
		n, err := s.Auth.RevokeSessions(r.Context(), id, "", s.adminClient(r))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.Logger.InfoContext(r.Context(), "admin ended user's sessions", "admin_id", p.User.ID, "user_id", id, "sessions", n)
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleAdminUpdateUser changes a user's email, roles and disabled flag:
// those of the three the body names. The email goes first, so that a 409
// changes nothing; disabling, or removing a role, ends every session and
// refresh family of the user.
func (s *server) handleAdminUpdateUser() http.Handler {
	type request struct {
		Email    *string   `json:"email"`
		Roles    *[]string `json:"roles"`
		Disabled *bool     `json:"disabled"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		in, err := decodeJSON[request](r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if in.Email == nil && in.Roles == nil && in.Disabled == nil {
			s.fail(w, r, badRequest(`the body names nothing to change: give "email", "roles" or "disabled"`))
			return
		}
		if in.Roles != nil {
			for _, role := range *in.Roles {
				if !sesame.ValidRole(role) {
					s.fail(w, r, sesame.ErrInvalidRole)
					return
				}
			}
		}
		u, err := s.Auth.User(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		c := s.adminClient(r)
		if in.Email != nil {
			if u, err = s.Auth.SetEmail(r.Context(), id, *in.Email, c); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if in.Roles != nil {
			if u, err = s.Auth.SetRoles(r.Context(), id, *in.Roles, c); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if in.Disabled != nil {
			if u, err = s.Auth.SetDisabled(r.Context(), id, *in.Disabled, c); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.Logger.InfoContext(r.Context(), "admin changed a user", "admin_id", c.Actor, "user_id", id)
		writeJSON(w, http.StatusOK, toAdminUserJSON(u))
	})
}

// handleAdminDeleteUser deletes a user, ending every session and refresh
// family first.
func (s *server) handleAdminDeleteUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		c := s.adminClient(r)
		if err := s.Auth.DeleteUser(r.Context(), id, c); err != nil {
			s.fail(w, r, err)
			return
		}
		s.Logger.InfoContext(r.Context(), "admin deleted a user", "admin_id", c.Actor, "user_id", id)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *server) handleAdminAudit() http.Handler {
	type event struct {
		Time      time.Time `json:"time"`
		Type      string    `json:"type"`
		UserID    string    `json:"user_id"`
		IP        string    `json:"ip"`
		UserAgent string    `json:"user_agent"`
		SessionID string    `json:"session_id"`
		Actor     string    `json:"actor,omitempty"` // administrative events: the admin's user id, or "cli"
	}
	type response struct {
		Events []event `json:"events"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := sesame.EventQuery{UserID: r.URL.Query().Get("user_id"), Limit: 1000}
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > 10000 {
				s.fail(w, r, badRequest("limit must be a whole number from 1 to 10000"))
				return
			}
			q.Limit = n
		}
		list, err := s.Auth.Events(r.Context(), q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := response{Events: make([]event, 0, len(list))}
		for _, e := range list {
			out.Events = append(out.Events, event{Time: e.Time.UTC(), Type: e.Type, UserID: e.UserID, IP: e.IP, UserAgent: e.UserAgent, SessionID: e.SessionID, Actor: e.Actor})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz asks every store at once, each within two seconds.
// readyBody is /readyz's answer.
type readyBody struct {
	Status      string `json:"status,omitempty"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	FeedLagMS   *int64 `json:"revocation_feed_lag_ms,omitempty"`
}

func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		errs := make([]error, len(s.pingers))
		var wg sync.WaitGroup
		for i, p := range s.pingers {
			wg.Go(func() { errs[i] = p.Ping(ctx) })
		}
		wg.Wait()
		// The revocation feed's lag: how far this node may be behind the
		// store's revocations (it turns not ready past its bound).
		var lag *int64
		for _, p := range s.pingers {
			if l, ok := p.(interface{ Lag() time.Duration }); ok {
				ms := l.Lag().Milliseconds()
				lag = &ms
			}
		}
		if err := errors.Join(errs...); err != nil {
			s.Logger.WarnContext(r.Context(), "not ready", "err", err)
			w.Header().Set("Retry-After", "2")
			writeJSON(w, http.StatusServiceUnavailable, readyBody{Error: "unavailable", Description: "a store is not answering, or this node is behind on revocations", FeedLagMS: lag})
			return
		}
		writeJSON(w, http.StatusOK, readyBody{Status: "ready", FeedLagMS: lag})
	})
}

func (s *server) handleMetrics() http.Handler { return MetricsHandler(s.Registry) }

// MetricsHandler serves reg in the Prometheus text format: what /metrics
// answers, for a listener of its own (Deps.MetricsElsewhere).
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
