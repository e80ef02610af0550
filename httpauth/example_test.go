package httpauth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/token"
)

// A protected app: a page for anyone signed in, and one for admins only.
func Example() {
	// Sesame's side: a user who signed in and got a session cookie.
	ctx := context.Background()
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	auth.Register(ctx, "ada@example.test", "correct horse battery", nil)
	login, _ := auth.Login(ctx, sesame.LoginRequest{Email: "ada@example.test", Password: "correct horse battery"})

	// The app.
	a := httpauth.New(httpauth.Config{Sessions: auth}) // and Tokens: a verifier, for bearer tokens
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", p.User.Email)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /hello", a.RequireAny(hello))
	mux.Handle("GET /admin", a.RequireAny(a.RequireRole(sesame.RoleAdmin)(hello)))
	app := httptest.NewServer(mux)
	defer app.Close()

	get := func(path, secret string) {
		req, _ := http.NewRequest("GET", app.URL+path, nil)
		if secret != "" {
			req.AddCookie(&http.Cookie{Name: httpauth.DefaultCookieName, Value: secret})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(path, resp.StatusCode, string(bytes.TrimSpace(body)))
	}
	get("/hello", "")
	get("/hello", login.Secret)
	get("/admin", login.Secret)
	// Output:
	// /hello 401 {"error":"unauthenticated","error_description":"no session cookie or bearer token was presented"}
	// /hello 200 hello ada@example.test
	// /admin 403 {"error":"forbidden","error_description":"the caller lacks the role this requires"}
}

// A service away from Sesame's stores verifies access tokens with the
// issuer's public keys, fetched from its JWKS.
func ExampleNewRemoteVerifier() {
	// Sesame's side: a signing key, its JWKS and discovery document, and
	// an access token.
	master := make([]byte, token.MasterKeySize)
	rand.Read(master)
	priv, k, _ := token.GenerateKey(token.EdDSA, time.Now())
	k, _ = token.SealKey(master, k, priv)
	ks, _ := token.NewKeySet([]sesame.SigningKey{k}, master, token.EdDSA, time.Now(), time.Hour)
	mux := http.NewServeMux()
	sesameServer := httptest.NewServer(mux)
	defer sesameServer.Close()
	iss := sesameServer.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, iss, iss+"/.well-known/jwks.json")
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) { w.Write(ks.JWKS()) })
	issuer := &token.Issuer{Keys: token.NewKeys(ks), Issuer: iss, Audience: []string{iss}}
	tok, _ := issuer.Issue(sesame.Claims{Subject: "user-1", SessionID: "sess-1", Email: "ada@example.test", Roles: []string{"user"}})

	// The service.
	rv, err := httpauth.NewRemoteVerifier(context.Background(), iss, iss)
	if err != nil {
		panic(err)
	}
	a := httpauth.New(httpauth.Config{Tokens: rv})
	h := a.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s, session %s", p.User.Email, p.Claims.SessionID)
	}))
	for _, authz := range []string{"", "Bearer " + tok, "Bearer " + tok[:len(tok)-2]} {
		r := httptest.NewRequest("GET", "/hello", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 401 {"error":"unauthenticated","error_description":"no session cookie or bearer token was presented"}
	// 200 hello ada@example.test, session sess-1
	// 401 {"error":"invalid_token","error_description":"the access token is invalid, expired or revoked"}
}
