package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/sesameauth/sesame"
)

// apiError is an error with its place in the API: status, code and a
// description that is safe to show the client.
type apiError struct {
	status int
	code   string
	desc   string
}

func (e *apiError) Error() string { return e.code + ": " + e.desc }

var (
	errUnauthenticated = &apiError{http.StatusUnauthorized, "unauthenticated", "no live session or valid token was presented"}
	errForbidden       = &apiError{http.StatusForbidden, "forbidden", "this requires the admin role"}
	errCSRF            = &apiError{http.StatusForbidden, "csrf", "cross-origin request refused"}
	errNotFound        = &apiError{http.StatusNotFound, "not_found", "no such resource"}
	errMethod          = &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this resource"}
	errRegClosed       = &apiError{http.StatusForbidden, "registration_closed", "registration is closed"}
)

// errorBody is the one shape of every error response.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// writeError maps err to its status, code and description, the one place
// that does. Anything it does not recognise is a store or internal failure:
// it is logged, and the client gets 503 unavailable, never the error's text,
// since nothing may be authenticated when the store that decides it fails.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var (
		ae *apiError
		rl *sesame.RateLimitError
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(rl.RetryAfter))
		ae = &apiError{http.StatusTooManyRequests, "rate_limited", "too many attempts; retry later"}
	case errors.Is(err, sesame.ErrInvalidEmail):
		ae = &apiError{http.StatusBadRequest, "invalid_request", "email is not a valid address"}
	case errors.Is(err, sesame.ErrInvalidPassword):
		ae = &apiError{http.StatusBadRequest, "invalid_request", "password must be 8 to 1024 bytes of UTF-8"}
	case errors.Is(err, sesame.ErrInvalidRole):
		ae = &apiError{http.StatusBadRequest, "invalid_request", "a role name is 1 to 64 ASCII letters, digits, '-', '_', '.' or ':'"}
	case errors.Is(err, sesame.ErrEmailTaken):
		ae = &apiError{http.StatusConflict, "conflict", "that email cannot be registered"}
	case errors.Is(err, sesame.ErrInvalidCredentials):
		ae = &apiError{http.StatusUnauthorized, "invalid_credentials", "email or password is wrong"}
	case errors.Is(err, sesame.ErrSessionNotFound):
		ae = errUnauthenticated
	case errors.Is(err, sesame.ErrNotFound), errors.Is(err, sesame.ErrUserNotFound):
		ae = errNotFound
	case errors.Is(err, sesame.ErrBusy):
		w.Header().Set("Retry-After", "1")
		ae = &apiError{http.StatusServiceUnavailable, "unavailable", "the server is busy; retry shortly"}
	case errors.Is(err, sesame.ErrRevocationsBehind):
		// The node's revocation feed is past its bound: it vouches for no
		// session until it catches up (/readyz shows the lag). Its own
		// words, so that a client or an operator tells it from a store
		// that fails.
		log.WarnContext(r.Context(), "request refused: revocations behind", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		ae = &apiError{http.StatusServiceUnavailable, "unavailable", "this node is behind on revocations; retry shortly"}
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		// The client went away; nobody reads this answer.
		log.DebugContext(r.Context(), "client gone", "method", r.Method, "path", r.URL.Path)
		ae = &apiError{http.StatusServiceUnavailable, "unavailable", "request cancelled"}
	default:
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "2")
		ae = &apiError{http.StatusServiceUnavailable, "unavailable", "a store is unavailable; retry shortly"}
	}
	if ae == errInvalidToken || ae == errUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, ae.status, errorBody{Error: ae.code, Description: ae.desc})
}
