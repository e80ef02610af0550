// Package httpauth is net/http middleware that authenticates requests
// against Sesame: by the session cookie, by a bearer access token, or by
// either. It is what Sesame's own API uses, and it needs nothing but the
// standard library and Sesame's root and token packages.
//
// # Protecting an app
//
// Build one Auth and wrap the handlers that need a caller:
//
//	a := httpauth.New(httpauth.Config{
//		Sessions: authenticator, // a *sesame.Authenticator: cookies
//		Tokens:   verifier,      // a *token.Verifier or *httpauth.RemoteVerifier: bearer tokens
//	})
//	mux.Handle("GET /profile", a.RequireAny(profile))
//	mux.Handle("POST /admin/reset", a.RequireAny(a.RequireRole("admin")(reset)))
//
// and read the caller in the handler:
//
//	p, _ := httpauth.FromContext(r.Context())
//	fmt.Fprintf(w, "hello %s (by %s)", p.User.Email, p.Via)
//
// RequireSession accepts only the cookie, RequireToken only a bearer
// token, RequireAny a bearer token if the request has an Authorization
// header and the cookie otherwise, and Optional attaches a caller when
// there is one and lets anonymous requests through.
//
// # What the middleware guarantees
//
// The session secret is read only from the cookie, and the access token
// only from the Authorization header: never from a query string (an
// access_token parameter is ignored), a path or a body, where they would
// end up in logs, histories and Referer headers.
//
// A cookie is sent by the browser whichever site made the request, so an
// unsafe (state-changing) request authenticated by the cookie that comes
// from another origin is refused with ErrCrossOrigin before any store is
// asked. The default check is net/http's CrossOriginProtection; Sesame's
// server plugs in its own, which also honours --allowed-origins. Bearer
// tokens are not sent automatically, so they need no such check.
//
// A refresh token is not an access token: presented as a bearer token it
// fails verification like any other invalid token.
//
// A store that cannot answer is not a wrong password: when the session
// store or the revocation state cannot be read, the error passes through
// unchanged (the default OnError answers 503), never as a 401 that would
// log the user out, and never as a success.
//
// # Verifying tokens in another service
//
// A service that only needs to check Sesame's access tokens does not need
// Sesame's stores: NewRemoteVerifier fetches the issuer's JWKS, caches it
// and verifies tokens locally with exactly the checks of token.Verifier.
// It learns of a new signing key from a token whose kid it does not know,
// refetching at most once per interval. What it cannot see is revocation:
// a token of a session that ended stays valid for the rest of its short
// lifetime (the access-token TTL, 10 minutes by default). A service that
// must know at once asks GET /v1/userinfo instead, at the price of a round
// trip per request.
package httpauth
