package server

import "net/http"

// routes lists every endpoint the server serves.
func (s *server) routes(mux *http.ServeMux) {
	mux.Handle("POST /v1/users", s.handleRegister())
	mux.Handle("POST /v1/password", s.authed(s.handleChangePassword()))

	mux.Handle("POST /v1/session", s.handleLogin())
	mux.Handle("GET /v1/session", s.cookieAuthed(s.handleSession()))
	mux.Handle("DELETE /v1/session", s.handleLogout())
	mux.Handle("GET /v1/sessions", s.authed(s.handleListSessions()))
	mux.Handle("DELETE /v1/sessions/{id}", s.authed(s.handleRevokeSession()))
	mux.Handle("DELETE /v1/sessions", s.authed(s.handleRevokeOtherSessions()))

	mux.Handle("POST /v1/token", s.handleToken())
	mux.Handle("POST /v1/token/revoke", s.handleRevokeToken())
	mux.Handle("GET /v1/userinfo", s.authed(s.handleUserinfo()))
	mux.Handle("GET /.well-known/jwks.json", s.handleJWKS())
	mux.Handle("GET /.well-known/openid-configuration", s.handleDiscovery())

	mux.Handle("GET /v1/admin/users", s.admin(s.handleAdminUsers()))
	mux.Handle("DELETE /v1/admin/users/{id}/sessions", s.admin(s.handleAdminRevoke()))
	mux.Handle("GET /v1/admin/audit", s.admin(s.handleAdminAudit()))

	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	mux.Handle("GET /metrics", s.handleMetrics())
	// Unknown paths and methods get net/http's 404 and 405 (with Allow),
	// which observe turns into the API's JSON error body.
}
