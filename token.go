package sesame

import (
	"context"
	"errors"
	"time"
)

// Session kinds: how the session is carried.
const (
	KindCookie = "cookie" // an opaque secret in the __Host-sesame cookie
	KindToken  = "token"  // a refresh-token family minting JWT access tokens
)

// Claims are what an access token says: who, for which session (the
// refresh family it came from), and for how long.
type Claims struct {
	Issuer    string
	Subject   string // user id
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	ID        string // jti
	SessionID string // sid: the refresh family, i.e. the session record
	Email     string
	Roles     []string
}

// HasRole reports whether the claims carry role.
func (c Claims) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// More sentinel errors, for tokens.
var (
	// ErrInvalidToken is returned for an access token that does not verify:
	// malformed, wrongly signed, expired, not yet valid, for another issuer
	// or audience, or of a revoked session.
	ErrInvalidToken = errors.New("sesame: invalid token")
	// ErrInvalidGrant is returned for a refresh token that is unknown,
	// expired, or whose family has ended.
	ErrInvalidGrant = errors.New("sesame: invalid grant")
	// ErrRefreshReused is returned when a retired refresh token is
	// presented again outside the grace window: its family has been ended.
	ErrRefreshReused = errors.New("sesame: refresh token reused")
)

// RefreshToken is one member of a refresh-token family. Only the hash of
// the token is stored.
type RefreshToken struct {
	Hash      [32]byte
	SessionID string // the family
	UserID    string // whose family: stores return the session's user and ignore this on input
	CreatedAt time.Time
	// ExpiresAt is the family's end (login + refresh-token TTL).
	ExpiresAt time.Time
	// RetiredAt is when the token was used and replaced; zero while it is
	// the family's current token.
	RetiredAt time.Time
	// SuccessorHash is the hash of the token that replaced it.
	SuccessorHash [32]byte
	// Generation counts the rotations before this token: 0 for the first
	// token of a family, and one more for each successor. Stores set a
	// successor's Generation to its predecessor's + 1; the token string
	// carries it too (see the package doc of refresh tokens in
	// refreshtoken.go), so that a retired token the store has forgotten
	// still names its family and its place in it.
	Generation int64
}

// RetiredRefreshTokensKept is how many retired tokens a family keeps
// besides its current one. Every store forgets older retired tokens at the
// rotation that makes them surplus, so a client that refreshes for ever
// costs a bounded amount of storage. A forgotten token still ends its
// family when presented again: it carries its family and generation.
const RetiredRefreshTokensKept = 64

// ReuseError is returned by RotateRefreshToken for a token that was already
// retired. It matches ErrRefreshReused with errors.Is. The store has
// changed nothing: the caller decides between the grace window and ending
// the family.
type ReuseError struct {
	Token RefreshToken // the retired token, with RetiredAt and SuccessorHash
	// SuccessorCurrent reports whether the successor is still the family's
	// current token (no later rotation happened).
	SuccessorCurrent bool
}

func (e *ReuseError) Error() string { return ErrRefreshReused.Error() }

// Is reports whether target is ErrRefreshReused.
func (e *ReuseError) Is(target error) bool { return target == ErrRefreshReused }

// RefreshStore keeps refresh-token families. A family belongs to a session
// record (RefreshToken.SessionID): deleting the session through the
// SessionStore deletes its refresh tokens, and a token whose session is gone
// or expired is as good as absent. A family keeps its current token and the
// newest RetiredRefreshTokensKept retired ones, and no more.
type RefreshStore interface {
	// CreateRefreshToken stores t as a current token of its family, with
	// t.Generation. It returns ErrSessionNotFound, storing nothing, if the
	// session t names is missing or expired.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken atomically retires the current token whose hash is
	// oldHash (RetiredAt = next.CreatedAt, SuccessorHash = next.Hash) and
	// stores next as the family's current token, with Generation one above
	// the retired token's (next.Generation is ignored). It forgets the
	// family's retired tokens beyond the newest RetiredRefreshTokensKept.
	// It returns ErrInvalidGrant if no live token has that hash (or its
	// session is gone or expired), and a *ReuseError, changing nothing, if
	// the token was already retired.
	RotateRefreshToken(ctx context.Context, oldHash [32]byte, next RefreshToken) error
	// RefreshToken returns the live token with that hash, current or
	// retired, or ErrInvalidGrant (also for a retired token the family
	// has forgotten).
	RefreshToken(ctx context.Context, hash [32]byte) (RefreshToken, error)
	// CurrentRefreshToken returns the current token of the family of the
	// user's session sessionID (the newest, should there be several), or
	// ErrInvalidGrant if the session is gone, expired or another user's,
	// or has no live current token.
	CurrentRefreshToken(ctx context.Context, userID, sessionID string) (RefreshToken, error)
}

// Revocation records that a session ended before its deadline, so that
// verifiers of its stateless access tokens refuse them.
type Revocation struct {
	Seq       int64 // increasing, assigned by the store
	SessionID string
	At        time.Time
}

// DefaultRevocationRetention is how long every store keeps a revocation in
// its log unless told to keep it longer (the stores' RevocationRetention):
// at least as long as an access token of the session may live, so that a
// node started later still learns of it.
const DefaultRevocationRetention = 24 * time.Hour

// RevocationLog is implemented by session stores that record every live
// session they delete (DeleteSession, DeleteUserSessions) in an
// append-only log: in the same transaction as the deletion, or, where the
// two cannot share one (redisstore, across Cluster slots), recorded as
// pending in the same step and appended right after, with an error and a
// retry if the append fails.
type RevocationLog interface {
	// RevocationsSince returns the revocations with Seq > after, in Seq
	// order, at most limit of them.
	RevocationsSince(ctx context.Context, after int64, limit int) ([]Revocation, error)
}

// SigningKey is a key that signs access tokens. The private key is stored
// sealed (encrypted under the master key); the public key as PKIX DER.
type SigningKey struct {
	ID            string // the kid
	Alg           string // EdDSA, ES256 or RS256
	Public        []byte // PKIX, ASN.1 DER
	PrivateSealed []byte // PKCS #8 DER, sealed with AES-256-GCM under the master key
	CreatedAt     time.Time
	// RetiredAt is when a newer key replaced it; zero for the current key.
	RetiredAt time.Time
}

// KeyStore keeps signing keys.
type KeyStore interface {
	// AddKey stores k as the current key and retires the key that was
	// current (RetiredAt = k.CreatedAt) in one transaction; keys retired
	// earlier keep their RetiredAt.
	AddKey(ctx context.Context, k SigningKey) error
	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteKeysRetiredBefore removes keys retired before t and returns how
	// many it removed. The current key is never removed.
	DeleteKeysRetiredBefore(ctx context.Context, t time.Time) (int, error)
}

// EpochStore is implemented by session stores that can lose their data
// (Redis without persistence). Epoch returns the time since which the
// store's data, its revocation log included, is complete: an access token
// issued before it may belong to a session whose revocation was lost, so
// verifiers refuse it (fail closed).
type EpochStore interface {
	Epoch(ctx context.Context) (time.Time, error)
}

// LogVersioner is implemented by revocation logs that can tell cheaply
// whether anything may have been appended: LogVersion returns a value that
// changes whenever the log may have grown. A verifier that took the version
// before its last read of the log can skip the next read while the version
// is unchanged.
type LogVersioner interface {
	LogVersion(ctx context.Context) (uint64, error)
}
