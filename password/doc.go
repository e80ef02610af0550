// Package password hashes passwords with argon2id and keeps each hash as a
// PHC string, the format that argon2 libraries in most languages read and
// write:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// The string carries its own salt and cost parameters, so hashes made under
// old parameters still verify after the parameters are raised.
//
// Make one [Hasher] at start-up and share it; it is safe for concurrent use:
//
//	h := password.NewHasher(password.Params{}) // OWASP's minimum: 19 MiB, 2 passes
//	encoded, err := h.Hash(ctx, pw)            // store encoded with the user
//
// At login, check the password and upgrade the stored hash when the Hasher's
// parameters have been raised since it was made:
//
//	ok, rehash, err := h.Verify(ctx, u.PasswordHash, pw)
//	if ok && rehash {
//		if fresh, err := h.Hash(ctx, pw); err == nil {
//			users.SetPasswordHash(ctx, u.ID, fresh)
//		}
//	}
//
// A hash is deliberately expensive: with the default parameters it allocates
// 19 MiB and takes tens of milliseconds of one core (run the package's
// benchmarks for this machine's numbers). So that a burst of logins cannot
// exhaust memory or CPU, a Hasher runs at most [Concurrency] hashes at once;
// further callers queue for at most [MaxWait], at most [MaxQueue] of them,
// and beyond either limit get an error matching [sesame.ErrBusy], which a
// server answers with 503 and Retry-After rather than by queueing forever.
//
// Passwords are hashed byte for byte and never truncated: normalise them
// before hashing (sesame applies NFKC) so that one password typed on two
// keyboards gives the same bytes.
//
// Tests of other packages, which hash many passwords and need no security,
// use NewHasher([Fast]).
package password
