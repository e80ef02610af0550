package sesame

import (
	"errors"
	"fmt"
)

// Sentinel errors. Stores translate their driver's errors into these, and
// callers test for them with errors.Is.
var (
	// ErrNotFound is returned for a record that does not exist, has expired,
	// or (for sessions) belongs to another user than the one asking.
	ErrNotFound = errors.New("sesame: not found")
	// ErrSessionNotFound is returned when no live session matches: the
	// secret is unknown, the session ended, or one of its deadlines passed.
	ErrSessionNotFound = errors.New("sesame: session not found")
	// ErrUserNotFound is returned when no user has the id or email asked for.
	ErrUserNotFound = errors.New("sesame: user not found")
	// ErrEmailTaken is returned when a user with the same normalised email
	// already exists.
	ErrEmailTaken = errors.New("sesame: email already registered")
	// ErrInvalidCredentials is returned for a wrong password or unknown
	// email; the two are deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("sesame: invalid credentials")
	// ErrInvalidEmail is returned for an email that is not a plain address.
	ErrInvalidEmail = errors.New("sesame: invalid email")
	// ErrInvalidPassword is returned for a password shorter than
	// MinPasswordBytes or longer than MaxPasswordBytes after normalisation.
	ErrInvalidPassword = errors.New("sesame: invalid password")
	// ErrInvalidRole is returned for a role name that ValidRole refuses.
	ErrInvalidRole = errors.New("sesame: invalid role")
	// ErrRateLimited is returned when too many recent logins failed for the
	// account or the client address; see RateLimitError for how long to wait.
	ErrRateLimited = errors.New("sesame: rate limited")
	// ErrBusy is returned when the server is at its bound of concurrent
	// password hashes and the wait for a slot timed out.
	ErrBusy = errors.New("sesame: too many concurrent password hashes")
	// ErrUnavailable is returned when a store cannot be reached: nothing is
	// authenticated without the store that decides it.
	ErrUnavailable = errors.New("sesame: store unavailable")
	// ErrRevocationsBehind is returned when this process's RevocationSet
	// is further behind the store's revocation log than its bound (the
	// feed broke or lags): no session is vouched for until it catches up.
	// It matches ErrUnavailable too.
	ErrRevocationsBehind = fmt.Errorf("sesame: revocations behind the log: %w", ErrUnavailable)
)

// RateLimitError carries how long a throttled client should wait. It
// matches ErrRateLimited with errors.Is.
type RateLimitError struct {
	RetryAfter int // seconds, at least 1
}

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }
