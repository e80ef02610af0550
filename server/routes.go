package server

import (
	"net/http"

	"github.com/sesameauth/sesame"
)

// routes lists every endpoint the server serves, and which credentials
// each takes: cookie only (s.auth.RequireSession), cookie or bearer token
// (s.auth.RequireAny), and the admin role on top (admin). The handlers
// read the caller with caller(r). Every route is registered here, through
// mux.Handle, and described in openapi.json (served at /v1/openapi.json);
// TestOpenAPIDescribesEveryRoute fails when the two differ, and says what
// to add.
func (s *server) routes(mux *routeMux) {
	// Every answer about a signed-in user is marked no-store, so that no
	// shared cache keeps one that a misconfigured proxy could hand on.
	cookie := func(h http.Handler) http.Handler { return private(s.auth.RequireSession(h)) }
	signedIn := func(h http.Handler) http.Handler { return private(s.auth.RequireAny(h)) }
	adminRole := s.auth.RequireRole(sesame.RoleAdmin)
	admin := func(h http.Handler) http.Handler { return signedIn(adminRole(h)) }

	mux.Handle("POST /v1/users", private(s.handleRegister()))
	mux.Handle("POST /v1/password", signedIn(s.handleChangePassword()))

	mux.Handle("POST /v1/session", private(s.handleLogin()))
	mux.Handle("GET /v1/session", cookie(s.handleSession()))
	mux.Handle("DELETE /v1/session", s.handleLogout()) // reads the cookie itself: it ends even a session Authenticate would refuse, and clears the cookie
	mux.Handle("GET /v1/sessions", signedIn(s.handleListSessions()))
	mux.Handle("DELETE /v1/sessions/{id}", signedIn(s.handleRevokeSession()))
	mux.Handle("DELETE /v1/sessions", signedIn(s.handleRevokeOtherSessions()))

	mux.Handle("POST /v1/token", s.handleToken())
	mux.Handle("POST /v1/token/revoke", s.handleRevokeToken())
	mux.Handle("GET /v1/userinfo", signedIn(s.handleUserinfo()))
	mux.Handle("GET /.well-known/jwks.json", s.handleJWKS())
	mux.Handle("GET /.well-known/openid-configuration", s.handleDiscovery())

	// Any method: the proxy may ask with the original request's.
	mux.Handle("/v1/forward-auth", s.handleForwardAuth(forwardAuthProxy))
	mux.Handle("/v1/auth-request", s.handleForwardAuth(authRequestProxy))

	mux.Handle("GET /v1/admin/users", admin(s.handleAdminUsers()))
	mux.Handle("PATCH /v1/admin/users/{id}", admin(s.handleAdminUpdateUser()))
	mux.Handle("DELETE /v1/admin/users/{id}", admin(s.handleAdminDeleteUser()))
	mux.Handle("DELETE /v1/admin/users/{id}/sessions", admin(s.handleAdminRevoke()))
	mux.Handle("GET /v1/admin/audit", admin(s.handleAdminAudit()))

	// The sign-in portal: pages for people (package web). Every form post
	// goes through the same cross-origin check as the API.
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Referrer-Policy"] = sameOriginReferrer
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	}))
	mux.Handle("GET /login", s.pages.LoginForm())
	mux.Handle("POST /login", s.pages.Login())
	mux.Handle("GET /register", s.pages.RegisterForm())
	mux.Handle("POST /register", s.pages.Register())
	mux.Handle("GET /account", s.pages.Account())
	mux.Handle("POST /account/sessions/end", s.pages.EndSession())
	mux.Handle("POST /account/sessions/end-others", s.pages.EndOtherSessions())
	mux.Handle("POST /account/password", s.pages.ChangePassword())
	mux.Handle("GET /logout", s.pages.LogoutForm())
	mux.Handle("POST /logout", s.pages.Logout())
	mux.Handle("GET /admin", s.pages.Admin())
	mux.Handle("POST /admin/sessions/end", s.pages.AdminEndSessions())
	mux.Handle("POST /admin/users/disabled", s.pages.AdminSetDisabled())
	mux.Handle("POST /admin/users/admin-role", s.pages.AdminSetAdmin())
	mux.Handle("POST /admin/users/delete", s.pages.AdminDeleteUser())
	mux.Handle("GET /static/", s.pages.Static())

	mux.Handle("GET /v1/openapi.json", s.handleOpenAPI())
	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	if !s.MetricsElsewhere {
		mux.Handle("GET /metrics", s.handleMetrics())
	}
	// Unknown paths and methods get net/http's 404 and 405 (with Allow),
	// which observe turns into the API's JSON error body.
}

// private marks every answer of h Cache-Control: no-store.
func private(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Cache-Control"] = noStore
		h.ServeHTTP(w, r)
	})
}
