package sesame

import (
	"context"
	"time"
)

// UserStore keeps accounts. Emails are stored normalised (NormalizeEmail),
// and unique.
type UserStore interface {
	// CreateUser stores u. It returns ErrEmailTaken if a user with the same
	// email exists, and stores nothing in that case.
	CreateUser(ctx context.Context, u User) error
	// UserByID returns the user with that id, or ErrUserNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// UserByEmail returns the user with that normalised email, or
	// ErrUserNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers returns every user, oldest first.
	ListUsers(ctx context.Context) ([]User, error)
	// SetPasswordHash replaces the user's password hash and advances its
	// CredentialGen in the same write, or returns ErrUserNotFound.
	SetPasswordHash(ctx context.Context, userID, hash string) error
	// SetRoles replaces the user's roles with a copy of roles, or returns
	// ErrUserNotFound.
	SetRoles(ctx context.Context, userID string, roles []string) error
	// SetDisabled sets the user's Disabled flag, or returns
	// ErrUserNotFound.
	SetDisabled(ctx context.Context, userID string, disabled bool) error
	// SetEmail replaces the user's (normalised) email. It returns
	// ErrUserNotFound, or ErrEmailTaken if another user has that email,
	// and then changes nothing. Setting the email a user already has is
	// not an error.
	SetEmail(ctx context.Context, userID, email string) error
	// DeleteUser removes the user, or returns ErrUserNotFound. The user's
	// sessions are the caller's business (end them first); the email is
	// free again afterwards.
	DeleteUser(ctx context.Context, userID string) error
	// ChangePasswordHash replaces the user's password hash with next and
	// advances its CredentialGen, in one atomic write, only if the hash is
	// still old (compare-and-swap), and reports whether it did. It returns
	// ErrUserNotFound if there is no such user.
	ChangePasswordHash(ctx context.Context, userID, old, next string) (bool, error)
	// UpgradePasswordHash replaces the user's password hash with next only
	// if it is still old (compare-and-swap), leaving CredentialGen as it
	// is, and reports whether it did: a login re-hashing the password it
	// verified under stronger parameters must never undo a change made
	// meanwhile. It returns ErrUserNotFound if there is no such user.
	UpgradePasswordHash(ctx context.Context, userID, old, next string) (bool, error)
	// AdvanceCredentialGen advances the user's CredentialGen, or returns
	// ErrUserNotFound.
	AdvanceCredentialGen(ctx context.Context, userID string) error
}

// SessionStore keeps sessions, found by the hash of their secret. A session
// whose ExpiresAt is not after the store's clock is as good as absent: no
// method returns it, and the store may forget it at any time.
type SessionStore interface {
	// CreateSession stores s, replacing the user's session with the same
	// ID, if any. Session IDs are random and never reused for another
	// user: a store may assume it and need not look for one.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the live session whose SecretHash is hash, or
	// ErrSessionNotFound if there is none or it has expired. A store with a
	// cache (redisstore) may answer with what it read up to a second ago
	// when another process changed the session since; a session this
	// store ended is never returned.
	Session(ctx context.Context, hash [32]byte) (Session, error)
	// TouchSession records a use of the user's session with that ID: it
	// sets LastSeenAt and ExpiresAt. It returns ErrSessionNotFound if the
	// session is gone, expired or another user's, and then changes nothing.
	// (Naming the user lets a store keep a user's sessions together, with
	// no index from session ID to user.)
	TouchSession(ctx context.Context, userID, id string, lastSeen, expiresAt time.Time) error
	// DeleteSession ends the user's session with that ID. Deleting a
	// session that does not exist, or is another user's, is not an error
	// and changes nothing.
	DeleteSession(ctx context.Context, userID, id string) error
	// UserSessions returns the live sessions of the user, oldest first; an
	// empty list (not an error) if there are none.
	UserSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteUserSessions ends every session of the user except the one
	// whose ID is exceptID (which may be empty), and returns the IDs it
	// ended.
	DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error)
}

// SessionBackend is the one store that keeps sessions, the refresh
// families that are sessions of KindToken, and the log of every session it
// ended: one value, because ending a session ends its family and logs the
// revocation in the same step. Every session store (memstore, sqlitestore,
// pgstore, redisstore) is one.
type SessionBackend interface {
	SessionStore
	RefreshStore
	RevocationLog
}

// Event is one entry of the audit log.
type Event struct {
	Time      time.Time
	Type      string // one of the Event* constants
	UserID    string // empty for a failed login of an unknown email
	IP        string
	UserAgent string
	SessionID string // the session's public handle, when there is one
	// Actor is who performed an administrative action: an admin's user
	// ID, or ActorCLI for the command line. Empty for a user's own
	// actions.
	Actor string
}

// ActorCLI is the Actor of events caused by the sesame command line.
const ActorCLI = "cli"

// Audit event types.
const (
	EventLoginSucceeded  = "login.succeeded"
	EventLoginFailed     = "login.failed"
	EventLogout          = "logout"
	EventSessionRevoked  = "session.revoked"
	EventPasswordChanged = "password.changed"
	EventUserCreated     = "user.created"
	EventTokenIssued     = "token.issued"
	EventTokenRefreshed  = "token.refreshed"
	EventTokenReuse      = "token.reuse_detected"
	EventTokenRevoked    = "token.revoked"
	EventUserDisabled    = "user.disabled"
	EventUserEnabled     = "user.enabled"
	EventUserDeleted     = "user.deleted"
	EventRolesChanged    = "user.roles_changed"
	EventEmailChanged    = "user.email_changed"
)

// EventQuery selects audit events.
type EventQuery struct {
	UserID string // all users if empty
	Limit  int    // at most this many, newest first; DefaultEventLimit if 0
}

// PageSize is how many events q asks for: Limit, DefaultEventLimit if
// Limit is not positive, and never more than MaxEventLimit.
func (q EventQuery) PageSize() int {
	if q.Limit <= 0 {
		return DefaultEventLimit
	}
	return min(q.Limit, MaxEventLimit)
}

// AuditLog records security events durably, for a retention its owner
// enforces with DeleteEventsBefore.
type AuditLog interface {
	// Record appends e.
	Record(ctx context.Context, e Event) error
	// Events returns the events matching q, newest first.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// DeleteEventsBefore removes the events whose Time is before t and
	// returns how many it removed.
	DeleteEventsBefore(ctx context.Context, t time.Time) (int, error)
}

// DefaultEventLimit is how many events AuditLog.Events returns when the
// query's Limit is not positive, in every store; MaxEventLimit is the most
// it returns whatever the Limit.
const (
	DefaultEventLimit = 1000
	MaxEventLimit     = 10000
)

// Limiter counts attempts per key in fixed windows, atomically, so that
// parallel attempts can never get past the limit together.
type Limiter interface {
	// Hit adds one attempt to key and returns the number of attempts in
	// the current window, including this one, and the time until the
	// window ends. A window starts at the first attempt after the previous
	// window ended and lasts window.
	Hit(ctx context.Context, key string, window time.Duration) (count int, reset time.Duration, err error)
	// Forgive takes one attempt back from key (an attempt that succeeded or
	// was never tried). It never takes the count below zero.
	Forgive(ctx context.Context, key string) error
	// Reset forgets every attempt of key.
	Reset(ctx context.Context, key string) error
}

// Pinger is implemented by stores that can tell whether they answer; the
// server's /readyz asks every store that implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// SessionCounter is implemented by session stores that can count their
// live sessions cheaply, for metrics.
type SessionCounter interface {
	CountSessions(ctx context.Context) (int, error)
}

// Sweeper is implemented by stores that must be asked to forget expired
// records (those without TTLs of their own).
type Sweeper interface {
	// DeleteExpired removes records whose deadline has passed and returns
	// how many it removed.
	DeleteExpired(ctx context.Context) (int, error)
}

// Hasher hashes and verifies passwords. Implementations bound how many
// hashes run at once and return ErrBusy when a caller waited too long.
type Hasher interface {
	// Hash returns an encoded hash of password that Verify understands.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches encoded, and whether
	// encoded should be replaced by a fresh Hash (its parameters are below
	// the current ones). A malformed encoded is an error, not a mismatch.
	Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error)
}
