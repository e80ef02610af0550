// Package sesame is the domain of the Sesame authentication server: users,
// the sessions they sign in with, and the stores that keep both.
//
// A user signs in on a device; that sign-in is a [Session]. The browser holds
// only an opaque random secret (the session cookie); the server stores the
// SHA-256 of that secret, so a copy of the store holds no usable cookie. The
// [Authenticator] ties the stores together: it registers users, checks
// passwords (through a [Hasher], bounded and constant-cost), creates sessions,
// enforces the idle and absolute timeouts, throttles failed logins and records
// every security event in the [AuditLog].
//
// A minimal program on the in-memory stores:
//
//	st := memstore.New()
//	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st,
//		Limiter: st, Hasher: password.NewHasher(password.Params{})})
//	u, _ := auth.Register(ctx, "ada@example.test", "correct horse", nil)
//	login, _ := auth.Login(ctx, sesame.LoginRequest{Email: u.Email, Password: "correct horse"})
//	// login.Secret goes into the cookie; later:
//	sess, user, _ := auth.Authenticate(ctx, login.Secret)
//
// Everything with a dependency lives in a subpackage: password (argon2id),
// memstore and sqlitestore (stores), storetest (the contract every store
// passes), server (the HTTP API) and cmd/sesame (the binary).
package sesame
