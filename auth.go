package sesame

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Config configures an Authenticator. Zero fields get the defaults New
// documents; the stores and the Hasher are required.
type Config struct {
	Users    UserStore
	Sessions SessionStore
	Audit    AuditLog
	Limiter  Limiter
	Hasher   Hasher

	// IdleTimeout ends a session unused this long (default 30m).
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after login (default 12h).
	AbsoluteTimeout time.Duration
	// TouchInterval is how stale a session's LastSeenAt may get before a
	// request writes it back (default 1s, or IdleTimeout/64 if that is
	// shorter): uses within the interval cost no write, and the idle
	// timeout stays correct to the interval.
	TouchInterval time.Duration

	// UserCacheTTL is how long Authenticate may reuse a user record (email,
	// roles) it read, instead of asking the UserStore on every request
	// (default 1s; negative: never reuse). The session itself is read
	// from the SessionStore every time, so revocation is never delayed.
	UserCacheTTL time.Duration

	// SessionCache is how many recently read sessions Authenticate keeps
	// in memory, so that a cookie request reads no store (0: none). It
	// needs Revocations, fed by the session store's revocation feed: a
	// cached session is answered only while that set, current to within
	// its bound, does not know it ended. A cached session that looks
	// expired or idle is read again (another node may have used it). For
	// stores that have no cache of their own (SQL); redisstore has one.
	SessionCache int

	// AccountMaxFailures is how many login attempts one account may have
	// in AccountWindow before it is throttled (defaults 5 and 5m). A
	// successful login clears the count.
	AccountMaxFailures int
	AccountWindow      time.Duration
	// AddressMaxFailures is how many failed logins one client address may
	// have in AddressWindow before it is throttled (defaults 100 and 1m).
	AddressMaxFailures int
	AddressWindow      time.Duration
	// IPv6Prefix is the prefix length by which IPv6 client addresses are
	// counted for the per-address throttle (default 64: a subscriber
	// usually holds a whole /64, so counting single addresses would give
	// one client 2^64 budgets; 128 counts each address). IPv4 addresses
	// are counted one by one.
	IPv6Prefix int

	// Revocations learns of every session this Authenticator (or the
	// Grants built on it) ends, so access tokens of that session are
	// refused at once (optional).
	Revocations *RevocationSet

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives warnings about writes that failed after the answer
	// was already decided (default slog.Default()).
	Logger *slog.Logger
}

// Client describes where a request came from, for the audit log and the
// per-address throttle.
type Client struct {
	IP        string
	UserAgent string
	// Actor is the administrator acting, for administrative actions: an
	// admin's user ID, or ActorCLI. It goes into the audit event.
	Actor string
}

// Authenticator is Sesame's core: registration, login, session lookup with
// timeouts, logout and revocation, password changes, throttling and audit.
// It is safe for concurrent use.
type Authenticator struct {
	cfg Config

	dummyMu   sync.Mutex
	dummyHash string

	users    userCache
	sessions *sessionCache // nil without Config.SessionCache
}

// userCache keeps recently read users for UserCacheTTL, bounded in size.
type userCache struct {
	mu sync.Mutex
	m  map[string]cachedUser
}

type cachedUser struct {
	u     User
	read  time.Time // when it was read from the store
	until time.Time
}

// maxCachedUsers bounds the user cache; when full it is emptied (a cheap,
// rare reset rather than LRU bookkeeping on every request).
const maxCachedUsers = 10000

// cachedUser returns the user (without its password hash), from the cache
// if it was read within UserCacheTTL and after since. A caller passes the
// creation time of the session or refresh token it is about to honour as
// since: a change that had to end the user's sessions (a removed role, a
// disabled account, possibly made by another process) came before every
// session that survives it, so a user read before such a session began is
// never trusted for it.
func (a *Authenticator) cachedUser(ctx context.Context, id string, now, since time.Time) (User, error) {
	if u, ok := a.users.get(id, now, since); ok {
		return u, nil
	}
	u, err := a.cfg.Users.UserByID(ctx, id)
	if err != nil {
		return User{}, err
	}
	u.PasswordHash = ""
	if a.cfg.UserCacheTTL > 0 {
		a.users.put(u, now, now.Add(a.cfg.UserCacheTTL))
	}
	return u, nil
}

func (c *userCache) get(id string, now, since time.Time) (User, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) || e.read.Before(since) {
		return User{}, false
	}
	return e.u, true
}

func (c *userCache) put(u User, read, until time.Time) {
	u.PasswordHash = "" // never kept outside the store
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedUsers {
		c.m = make(map[string]cachedUser)
	}
	c.m[u.ID] = cachedUser{u: u, read: read, until: until}
	c.mu.Unlock()
}

// New returns an Authenticator over cfg, with defaults filled in.
func New(cfg Config) *Authenticator {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.IdleTimeout, 30*time.Minute)
	def(&cfg.AbsoluteTimeout, 12*time.Hour)
	// Coalescing uses into one write a second costs the idle timeout up to
	// a second of accuracy; for short idle timeouts, write more often.
	def(&cfg.TouchInterval, min(time.Second, cfg.IdleTimeout/64))
	def(&cfg.AccountWindow, 5*time.Minute)
	def(&cfg.AddressWindow, time.Minute)
	if cfg.UserCacheTTL == 0 {
		cfg.UserCacheTTL = time.Second
	}
	if cfg.AccountMaxFailures <= 0 {
		cfg.AccountMaxFailures = 5
	}
	if cfg.AddressMaxFailures <= 0 {
		cfg.AddressMaxFailures = 100
	}
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Authenticator{cfg: cfg}
	if cfg.SessionCache > 0 && cfg.Revocations != nil {
		// Shorter than the set remembers an end, so a cached session
		// never outlives the set's memory of its revocation.
		a.sessions = newSessionCache(cfg.SessionCache, min(sessionCacheMaxAge, cfg.Revocations.retain/2))
	}
	return a
}

// Now is the Authenticator's clock (Config.Now), for the routes that
// judge times alongside it.
func (a *Authenticator) Now() time.Time { return a.cfg.Now() }

// Register creates a user with the given email and password and the roles
// (RoleUser is always added). It returns ErrInvalidEmail,
// ErrInvalidPassword, ErrEmailTaken or ErrBusy.
func (a *Authenticator) Register(ctx context.Context, email, password string, roles []string) (User, error) {
	return a.register(ctx, email, password, roles, Client{})
}

func (a *Authenticator) register(ctx context.Context, email, password string, roles []string, c Client) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	p, err := NormalizePassword(password)
	if err != nil {
		return User{}, err
	}
	// Looking up first saves a hash for a taken email; CreateUser's
	// uniqueness check is still what decides.
	if _, err := a.cfg.Users.UserByEmail(ctx, e); err == nil {
		return User{}, ErrEmailTaken
	} else if !errors.Is(err, ErrUserNotFound) {
		return User{}, err
	}
	h, err := a.cfg.Hasher.Hash(ctx, p)
	if err != nil {
		return User{}, err
	}
	u := User{
		ID:           NewID(),
		Email:        e,
		Roles:        normalizeRoles(roles),
		PasswordHash: h,
		CreatedAt:    a.cfg.Now().UTC().Truncate(time.Millisecond),
	}
	if err := a.cfg.Users.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	a.audit(ctx, Event{Type: EventUserCreated, UserID: u.ID, IP: c.IP, UserAgent: c.UserAgent, Actor: c.Actor})
	return u, nil
}

func normalizeRoles(roles []string) []string {
	out := []string{RoleUser}
	for _, r := range roles {
		dup := false
		for _, o := range out {
			dup = dup || o == r
		}
		if r != "" && !dup {
			out = append(out, r)
		}
	}
	return out
}

// LoginRequest is one attempt to sign in.
type LoginRequest struct {
	Email    string
	Password string
	Client   Client
	// PreviousSecret is the session secret the client already carried, if
	// any; a successful login ends that session.
	PreviousSecret string
}

// Login is a successful sign-in: the new session, its secret (for the
// cookie; only its hash is stored) and the user.
type Login struct {
	User    User
	Session Session
	Secret  string
}

// Login checks the credentials and starts a new session. Failures return
// ErrInvalidCredentials whether the email is unknown or the password wrong,
// after the same amount of hashing; a *RateLimitError when the account or
// the client address had too many recent attempts; ErrBusy when no hashing
// slot became free in time.
func (a *Authenticator) Login(ctx context.Context, req LoginRequest) (Login, error) {
	u, err := a.CheckPassword(ctx, req.Email, req.Password, req.Client)
	if err != nil {
		return Login{}, err
	}
	if req.PreviousSecret != "" && ValidSecret(req.PreviousSecret) {
		if old, err := a.cfg.Sessions.Session(ctx, HashSecret(req.PreviousSecret)); err == nil {
			if err := a.endSession(ctx, old.UserID, old.ID); err != nil {
				return Login{}, err
			}
			a.audit(ctx, Event{Type: EventLogout, UserID: old.UserID, SessionID: old.ID, IP: req.Client.IP, UserAgent: req.Client.UserAgent})
		} else if !errors.Is(err, ErrSessionNotFound) {
			return Login{}, err
		}
	}
	now := a.cfg.Now().UTC().Truncate(time.Millisecond)
	secret, hash := NewSecret()
	s := Session{
		ID:                NewID(),
		SecretHash:        hash,
		UserID:            u.ID,
		CreatedAt:         now,
		LastSeenAt:        now,
		AbsoluteExpiresAt: now.Add(a.cfg.AbsoluteTimeout),
		IP:                req.Client.IP,
		UserAgent:         req.Client.UserAgent,
	}
	s.ExpiresAt = a.deadline(s, now)
	if err := a.cfg.Sessions.CreateSession(ctx, s); err != nil {
		return Login{}, err
	}
	a.audit(ctx, Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: s.ID, IP: req.Client.IP, UserAgent: req.Client.UserAgent})
	return Login{User: u, Session: s, Secret: secret}, nil
}

// CheckPassword verifies email and password under the login throttle and
// records the outcome in the audit log, without starting a session. It
// returns the user, or the errors Login documents.
func (a *Authenticator) CheckPassword(ctx context.Context, email, password string, c Client) (User, error) {
	e, emailErr := NormalizeEmail(email)
	if emailErr != nil {
		// No account can have this email; still throttle the address.
		e = ""
	}
	accountKey := "login:account:" + e
	network := ClientNetwork(c.IP, a.cfg.IPv6Prefix)
	addressKey := "login:address:" + network
	if err := a.hit(ctx, addressKey, a.cfg.AddressMaxFailures, a.cfg.AddressWindow); err != nil {
		return User{}, err
	}
	if e != "" {
		if err := a.hit(ctx, accountKey, a.cfg.AccountMaxFailures, a.cfg.AccountWindow); err != nil {
			a.forgive(ctx, addressKey)
			return User{}, err
		}
	}
	fail := func(userID string) (User, error) {
		a.audit(ctx, Event{Type: EventLoginFailed, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
		return User{}, ErrInvalidCredentials
	}
	if emailErr != nil {
		// No credential was checked, so nothing bounds these but the
		// address throttle: audit the first of each address's window
		// only, or a flood of malformed emails writes a row apiece.
		if n, _, err := a.cfg.Limiter.Hit(ctx, "audit:unchecked:"+network, a.cfg.AddressWindow); err != nil || n > 1 {
			return User{}, ErrInvalidCredentials
		}
		return fail("")
	}
	p, pwErr := NormalizePassword(password)
	u, err := a.cfg.Users.UserByEmail(ctx, e)
	switch {
	case errors.Is(err, ErrUserNotFound):
		// Spend what a wrong password would cost, so timing does not
		// tell whether the email is registered.
		dummy, derr := a.dummy(ctx)
		if derr != nil {
			a.forgive(ctx, addressKey, accountKey)
			return User{}, derr
		}
		if _, _, err := a.cfg.Hasher.Verify(ctx, dummy, password); errors.Is(err, ErrBusy) {
			a.forgive(ctx, addressKey, accountKey)
			return User{}, err
		}
		return fail("")
	case err != nil:
		a.forgive(ctx, addressKey, accountKey)
		return User{}, err
	}
	if pwErr != nil {
		// A password no account could have: hash anyway for equal timing.
		p = password
	}
	ok, rehash, err := a.cfg.Hasher.Verify(ctx, u.PasswordHash, p)
	if err != nil {
		a.forgive(ctx, addressKey, accountKey)
		return User{}, err
	}
	// A disabled user gets the answer a wrong password gets, after the
	// same work.
	if !ok || pwErr != nil || u.Disabled {
		return fail(u.ID)
	}
	a.forgive(ctx, addressKey)
	if err := a.cfg.Limiter.Reset(ctx, accountKey); err != nil {
		a.cfg.Logger.Warn("reset login throttle", "err", err)
	}
	if rehash {
		if h, err := a.cfg.Hasher.Hash(ctx, p); err == nil {
			if err := a.cfg.Users.SetPasswordHash(ctx, u.ID, h); err != nil {
				a.cfg.Logger.Warn("upgrade password hash", "user_id", u.ID, "err", err)
			} else {
				u.PasswordHash = h
			}
		}
	}
	return u, nil
}

// ClientNetwork returns what the per-address throttle counts ip as: an IPv4
// address (or an IPv4-mapped IPv6 one) as itself, an IPv6 address as its
// network of prefix bits ("2001:db8:1:2::/64"), anything that does not
// parse as an address as it is.
func ClientNetwork(ip string, prefix int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.WithZone("").Unmap()
	if a.Is4() || prefix >= 128 {
		return a.String()
	}
	p, err := a.Prefix(max(prefix, 0))
	if err != nil {
		return a.String()
	}
	return p.String()
}

func (a *Authenticator) hit(ctx context.Context, key string, limit int, window time.Duration) error {
	n, reset, err := a.cfg.Limiter.Hit(ctx, key, window)
	if err != nil {
		return fmt.Errorf("sesame: login throttle: %w", err)
	}
	if n > limit {
		a.forgive(ctx, key) // a refused attempt is not an attempt
		secs := int((reset + time.Second - 1) / time.Second)
		return &RateLimitError{RetryAfter: max(secs, 1)}
	}
	return nil
}

func (a *Authenticator) forgive(ctx context.Context, keys ...string) {
	for _, k := range keys {
		if err := a.cfg.Limiter.Forgive(ctx, k); err != nil {
			a.cfg.Logger.Warn("forgive login attempt", "err", err)
		}
	}
}

// dummy returns the hash that unknown emails are verified against, made
// on first use with the Hasher's parameters. Concurrent first callers may
// each make one; the first stored wins. A failure (ErrBusy) is returned and
// the next caller tries again.
func (a *Authenticator) dummy(ctx context.Context) (string, error) {
	a.dummyMu.Lock()
	h := a.dummyHash
	a.dummyMu.Unlock()
	if h != "" {
		return h, nil
	}
	h, err := a.cfg.Hasher.Hash(ctx, "sesame dummy password for unknown accounts")
	if err != nil {
		return "", err
	}
	a.dummyMu.Lock()
	defer a.dummyMu.Unlock()
	if a.dummyHash == "" {
		a.dummyHash = h
	}
	return a.dummyHash, nil
}

// deadline is when s ends if it is not used again after now.
func (a *Authenticator) deadline(s Session, now time.Time) time.Time {
	d := now.Add(a.cfg.IdleTimeout)
	if s.AbsoluteExpiresAt.Before(d) {
		d = s.AbsoluteExpiresAt
	}
	return d
}

// Authenticate returns the live session carried by secret and its user, and
// records the use (at most one write per TouchInterval). It returns
// ErrSessionNotFound for a malformed, unknown, ended or expired secret, and
// a store's error (not ErrSessionNotFound) when the store cannot answer. With
// Revocations set, an ended session is refused as soon as the set knows,
// and nothing is answered (ErrUnavailable) while the set is behind its
// bound; with SessionCache, recently read sessions are answered from
// memory.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Session, User, error) {
	if !ValidSecret(secret) {
		return Session{}, User{}, ErrSessionNotFound
	}
	hash := HashSecret(secret)
	now := a.cfg.Now()
	s, cached := Session{}, false
	if a.sessions != nil {
		s, cached = a.sessions.get(hash, now)
	}
	for {
		if !cached {
			var err error
			if s, err = a.cfg.Sessions.Session(ctx, hash); err != nil {
				return Session{}, User{}, err
			}
		}
		if revs := a.cfg.Revocations; revs != nil {
			switch revoked, err := revs.Revoked(s.ID, time.Time{}); {
			case err != nil:
				return Session{}, User{}, err
			case revoked:
				if cached {
					a.sessions.drop(hash)
				}
				return Session{}, User{}, ErrSessionNotFound
			}
		}
		if s.Kind != KindToken && s.Live(now) && now.Before(s.LastSeenAt.Add(a.cfg.IdleTimeout)) && now.Before(s.AbsoluteExpiresAt) {
			break
		}
		if !cached {
			return Session{}, User{}, ErrSessionNotFound
		}
		// Another node may have used it since it was cached: only the
		// store can say it is over.
		a.sessions.drop(hash)
		cached = false
	}
	u, err := a.cachedUser(ctx, s.UserID, now, s.CreatedAt)
	if errors.Is(err, ErrUserNotFound) || err == nil && u.Disabled {
		return Session{}, User{}, ErrSessionNotFound
	} else if err != nil {
		return Session{}, User{}, err
	}
	read := now
	if now.Sub(s.LastSeenAt) >= a.cfg.TouchInterval {
		now = now.UTC().Truncate(time.Millisecond)
		exp := a.deadline(s, now)
		switch err := a.cfg.Sessions.TouchSession(ctx, s.UserID, s.ID, now, exp); {
		case errors.Is(err, ErrSessionNotFound):
			if a.sessions != nil {
				a.sessions.drop(hash)
			}
			return Session{}, User{}, err // ended while we looked
		case err != nil:
			return Session{}, User{}, err
		}
		s.LastSeenAt, s.ExpiresAt = now, exp
		if cached {
			a.sessions.touched(hash, now, exp)
		}
	}
	if a.sessions != nil && !cached {
		a.sessions.put(s, read)
	}
	return s, u, nil
}

// Logout ends the session carried by secret. Ending an unknown session is
// ErrSessionNotFound.
func (a *Authenticator) Logout(ctx context.Context, secret string, c Client) error {
	if !ValidSecret(secret) {
		return ErrSessionNotFound
	}
	s, err := a.cfg.Sessions.Session(ctx, HashSecret(secret))
	if err != nil {
		return err
	}
	if err := a.endSession(ctx, s.UserID, s.ID); err != nil {
		return err
	}
	a.audit(ctx, Event{Type: EventLogout, UserID: s.UserID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}

// Sessions returns the user's live sessions, oldest first.
func (a *Authenticator) Sessions(ctx context.Context, userID string) ([]Session, error) {
	return a.cfg.Sessions.UserSessions(ctx, userID)
}

// RevokeSession ends the user's session with that public ID. It returns
// ErrNotFound if the user has no such live session.
func (a *Authenticator) RevokeSession(ctx context.Context, userID, sessionID string, c Client) error {
	list, err := a.cfg.Sessions.UserSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.ID == sessionID {
			if err := a.endSession(ctx, s.UserID, s.ID); err != nil {
				return err
			}
			a.audit(ctx, Event{Type: EventSessionRevoked, UserID: userID, SessionID: s.ID, IP: c.IP, UserAgent: c.UserAgent})
			return nil
		}
	}
	return ErrNotFound
}

// RevokeSessions ends every session of the user except keepID (which may be
// empty, to end them all) and returns how many it ended.
func (a *Authenticator) RevokeSessions(ctx context.Context, userID, keepID string, c Client) (int, error) {
	ids, err := a.cfg.Sessions.DeleteUserSessions(ctx, userID, keepID)
	// On an error, ids are those ended whose revocations may not be logged
	// yet (see endSession): the set learns of them all the same.
	for _, id := range ids {
		if a.cfg.Revocations != nil {
			a.cfg.Revocations.Add(id)
		}
		a.audit(ctx, Event{Type: EventSessionRevoked, UserID: userID, SessionID: id, IP: c.IP, UserAgent: c.UserAgent, Actor: c.Actor})
	}
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

// ChangePassword replaces the user's password after checking the current
// one (under the login throttle), and ends every other session of the user.
// keepSessionID is the caller's own session, which survives. Errors:
// ErrInvalidCredentials, ErrInvalidPassword, *RateLimitError, ErrBusy.
func (a *Authenticator) ChangePassword(ctx context.Context, u User, keepSessionID, current, next string, c Client) error {
	p, err := NormalizePassword(next)
	if err != nil {
		return err
	}
	if _, err := a.CheckPassword(ctx, u.Email, current, c); err != nil {
		return err
	}
	h, err := a.cfg.Hasher.Hash(ctx, p)
	if err != nil {
		return err
	}
	// End the other sessions first: if that fails, the password is still
	// the old one and the caller can retry; the other way round, a failure
	// would leave a changed password and an intruder's sessions alive.
	if _, err := a.RevokeSessions(ctx, u.ID, keepSessionID, c); err != nil {
		return err
	}
	if err := a.cfg.Users.SetPasswordHash(ctx, u.ID, h); err != nil {
		return err
	}
	a.audit(ctx, Event{Type: EventPasswordChanged, UserID: u.ID, SessionID: keepSessionID, IP: c.IP, UserAgent: c.UserAgent})
	return nil
}

// User returns the user with that id (without the password hash), read
// from the store, or ErrUserNotFound.
func (a *Authenticator) User(ctx context.Context, id string) (User, error) {
	u, err := a.cfg.Users.UserByID(ctx, id)
	u.PasswordHash = ""
	return u, err
}

// Users returns every user (without password hashes), oldest first.
func (a *Authenticator) Users(ctx context.Context) ([]User, error) {
	list, err := a.cfg.Users.ListUsers(ctx)
	for i := range list {
		list[i].PasswordHash = ""
	}
	return list, err
}

// Events returns the audit events q selects, newest first.
func (a *Authenticator) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	return a.cfg.Audit.Events(ctx, q)
}

// Prepare makes the dummy hash that unknown emails are verified against,
// so that even the first such login costs exactly one hash. A server calls
// it at start-up.
func (a *Authenticator) Prepare(ctx context.Context) error {
	_, err := a.dummy(ctx)
	return err
}

// endSession deletes the session (and with it any refresh family) and
// tells the revocation set, so its access tokens stop working at once.
//
// The set learns of it even when the store reports an error: the session
// may be gone with its revocation not yet logged (the store retries), and
// an end that was asked for is at least honoured here.
func (a *Authenticator) endSession(ctx context.Context, userID, id string) error {
	err := a.cfg.Sessions.DeleteSession(ctx, userID, id)
	if a.cfg.Revocations != nil {
		a.cfg.Revocations.Add(id)
	}
	return err
}

// audit records e, stamping the time. A failure to record is logged: the
// action it describes has already happened.
func (a *Authenticator) audit(ctx context.Context, e Event) {
	e.Time = a.cfg.Now().UTC()
	if err := a.cfg.Audit.Record(ctx, e); err != nil {
		a.cfg.Logger.Error("audit record", "type", e.Type, "user_id", e.UserID, "err", err)
	}
}
