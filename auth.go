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
	if u, err = a.confirmLogin(ctx, u, s.ID, req.Client); err != nil {
		return Login{}, err
	}
	a.audit(ctx, Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: s.ID, IP: req.Client.IP, UserAgent: req.Client.UserAgent})
	return Login{User: u, Session: s, Secret: secret}, nil
}

// confirmLogin is the second half of a login that has created session
// sessionID for u, whose password it verified when u.CredentialGen was
// current. It reads the user again from the store (never the cache): if
// the generation moved meanwhile (the password changed, or every session
// of the user was ended, while this login was in flight), it ends the
// session and returns ErrInvalidCredentials, as if the check had come
// after the change. Otherwise it returns the user as read now. A store
// error ends the session too: nothing is handed out that cannot be
// vouched for (its secret never leaves this process).
//
// Why this closes the race: a change advances the generation, then ends
// the user's sessions (ChangePassword also writes the new hash with an
// advance, then ends them again). A login whose re-read comes after the
// advance sees it and ends its own session; one whose re-read comes
// before it created its session before the change ended the user's
// sessions, so the change ends it. Both stores answer a read with every
// write that completed before it, so this holds across nodes.
func (a *Authenticator) confirmLogin(ctx context.Context, u User, sessionID string, c Client) (User, error) {
	now, err := a.cfg.Users.UserByID(ctx, u.ID)
	if err == nil && now.CredentialGen == u.CredentialGen {
		return now, nil
	}
	if endErr := a.endSession(ctx, u.ID, sessionID); endErr != nil {
		a.cfg.Logger.Warn("ending the session of a login overtaken by a credential change", "session_id", sessionID, "err", endErr)
	}
	if err != nil && !errors.Is(err, ErrUserNotFound) {
		return User{}, err
	}
	a.audit(ctx, Event{Type: EventLoginFailed, UserID: u.ID, SessionID: sessionID, IP: c.IP, UserAgent: c.UserAgent})
	return User{}, ErrInvalidCredentials
}

// CheckPassword verifies email and password under the login throttle and
// records the outcome in the audit log, without starting a session. It
// returns the user as read for the check (its CredentialGen is the one the
// password was verified under), or the errors Login documents.
func (a *Authenticator) CheckPassword(ctx context.Context, email, password string, c Client) (User, error) {
	e, emailErr := NormalizeEmail(email)
	network := ClientNetwork(c.IP, a.cfg.IPv6Prefix)
	address := counter{key: "login:address:" + network, limit: a.cfg.AddressMaxFailures, window: a.cfg.AddressWindow}
	if emailErr != nil {
		// No account can have this email; still throttle the address.
		if err := a.hit(ctx, address.key, address.limit, address.window); err != nil {
			return User{}, err
		}
		// No credential was checked, so nothing bounds these but the
		// address throttle: audit the first of each address's window
		// only, or a flood of malformed emails writes a row apiece.
		if n, _, err := a.cfg.Limiter.Hit(ctx, "audit:unchecked:"+network, a.cfg.AddressWindow); err != nil || n > 1 {
			return User{}, ErrInvalidCredentials
		}
		a.audit(ctx, Event{Type: EventLoginFailed, IP: c.IP, UserAgent: c.UserAgent})
		return User{}, ErrInvalidCredentials
	}
	counters := []counter{address, {key: "login:account:" + e, limit: a.cfg.AccountMaxFailures, window: a.cfg.AccountWindow, clear: true}}
	return a.checkPassword(ctx, func() (User, error) { return a.cfg.Users.UserByEmail(ctx, e) }, password, c, counters)
}

// counter is a throttle a password check counts against: key may see limit
// attempts in window. A success takes its own attempt back, or with clear
// forgets every attempt of key.
type counter struct {
	key    string
	limit  int
	window time.Duration
	clear  bool
}

// checkPassword counts the attempt against each counter (all of them before
// any hashing, so parallel attempts cannot get past a limit together),
// looks the user up, verifies the password (a lookup that finds no user
// costs the same hash against a dummy) and records a failure in the audit
// log. A success settles the counters and upgrades a hash made under
// weaker parameters, if it is still the one verified.
func (a *Authenticator) checkPassword(ctx context.Context, lookup func() (User, error), password string, c Client, counters []counter) (User, error) {
	keys := make([]string, len(counters))
	for i, k := range counters {
		if err := a.hit(ctx, k.key, k.limit, k.window); err != nil {
			a.forgive(ctx, keys[:i]...)
			return User{}, err
		}
		keys[i] = k.key
	}
	fail := func(userID string) (User, error) {
		a.audit(ctx, Event{Type: EventLoginFailed, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
		return User{}, ErrInvalidCredentials
	}
	u, err := lookup()
	switch {
	case errors.Is(err, ErrUserNotFound):
		// Spend what a wrong password would cost, so timing does not
		// tell whether the email is registered.
		dummy, derr := a.dummy(ctx)
		if derr != nil {
			a.forgive(ctx, keys...)
			return User{}, derr
		}
		if _, _, err := a.cfg.Hasher.Verify(ctx, dummy, password); errors.Is(err, ErrBusy) {
			a.forgive(ctx, keys...)
			return User{}, err
		}
		return fail("")
	case err != nil:
		a.forgive(ctx, keys...)
		return User{}, err
	}
	p, pwErr := NormalizePassword(password)
	if pwErr != nil {
		// A password no account could have: hash anyway for equal timing.
		p = password
	}
	ok, rehash, err := a.cfg.Hasher.Verify(ctx, u.PasswordHash, p)
	if err != nil {
		a.forgive(ctx, keys...)
		return User{}, err
	}
	// A disabled user gets the answer a wrong password gets, after the
	// same work.
	if !ok || pwErr != nil || u.Disabled {
		return fail(u.ID)
	}
	for _, k := range counters {
		if !k.clear {
			a.forgive(ctx, k.key)
		} else if err := a.cfg.Limiter.Reset(ctx, k.key); err != nil {
			a.cfg.Logger.Warn("reset login throttle", "err", err)
		}
	}
	if rehash {
		// Only if the hash is still the one verified: a password change
		// that landed meanwhile must not be undone by the old password.
		if h, err := a.cfg.Hasher.Hash(ctx, p); err == nil {
			switch swapped, err := a.cfg.Users.UpgradePasswordHash(ctx, u.ID, u.PasswordHash, h); {
			case err != nil:
				a.cfg.Logger.Warn("upgrade password hash", "user_id", u.ID, "err", err)
			case swapped:
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
// empty, to end them all) and returns how many it ended. It first advances
// the user's CredentialGen, so that a login in flight (its password check
// begun before) ends the session it creates instead of keeping it: when
// RevokeSessions returns, no such session is usable.
func (a *Authenticator) RevokeSessions(ctx context.Context, userID, keepID string, c Client) (int, error) {
	if err := a.cfg.Users.AdvanceCredentialGen(ctx, userID); err != nil && !errors.Is(err, ErrUserNotFound) {
		// End what exists all the same; the error says the promise
		// about logins in flight is not kept, and a retry keeps it.
		n, endErr := a.endUserSessions(ctx, userID, keepID, c)
		return n, errors.Join(err, endErr)
	}
	return a.endUserSessions(ctx, userID, keepID, c)
}

// endUserSessions ends every session of the user except keepID, tells the
// revocation set and records each end.
func (a *Authenticator) endUserSessions(ctx context.Context, userID, keepID string, c Client) (int, error) {
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

// PasswordChange is a signed-in user's request to replace their password.
type PasswordChange struct {
	User User
	// SessionID is the caller's own session (cookie session or refresh
	// family): wrong current passwords are counted against it, not
	// against the account, so a stranger's failed logins cannot stop the
	// owner from changing the password.
	SessionID string
	// KeepSession makes the caller's session survive the change (a cookie
	// session does; a refresh family ends with every other).
	KeepSession bool
	Current     string
	New         string
	Client      Client
}

// ChangePassword replaces the user's password after checking the current
// one, and ends every other session of the user. The check is throttled by
// the caller's session: AccountMaxFailures wrong current passwords in
// AccountWindow, then *RateLimitError. Errors: ErrInvalidCredentials (also
// when the password changed meanwhile), ErrInvalidPassword,
// *RateLimitError, ErrBusy, a store's error.
//
// When it returns nil, no session or refresh family created from a login
// whose password check began before the change is usable (see
// confirmLogin). Order: the other sessions end first (if that fails, the
// password is still the old one and the caller can retry); then the new
// hash is written in place of the verified one with an advance of the
// credential generation; then the other sessions end again, taking any
// that a login of the old password created in between. If only that last
// step fails, the password has changed and the error is returned: the
// caller retries with the new password as the current one.
func (a *Authenticator) ChangePassword(ctx context.Context, req PasswordChange) error {
	p, err := NormalizePassword(req.New)
	if err != nil {
		return err
	}
	if req.SessionID == "" {
		return errors.New("sesame: change password: the caller's session is required")
	}
	u, err := a.checkPassword(ctx, func() (User, error) { return a.cfg.Users.UserByID(ctx, req.User.ID) }, req.Current, req.Client,
		[]counter{{key: "password:session:" + req.SessionID, limit: a.cfg.AccountMaxFailures, window: a.cfg.AccountWindow, clear: true}})
	if err != nil {
		return err
	}
	h, err := a.cfg.Hasher.Hash(ctx, p)
	if err != nil {
		return err
	}
	keep := ""
	if req.KeepSession {
		keep = req.SessionID
	}
	if _, err := a.RevokeSessions(ctx, u.ID, keep, req.Client); err != nil {
		return err
	}
	switch swapped, err := a.cfg.Users.ChangePasswordHash(ctx, u.ID, u.PasswordHash, h); {
	case errors.Is(err, ErrUserNotFound):
		return ErrInvalidCredentials
	case err != nil:
		return err
	case !swapped:
		// Another change (or an upgrade of the same password by a
		// login) came first: the current password verified here may no
		// longer be current.
		return ErrInvalidCredentials
	}
	if _, err := a.endUserSessions(ctx, u.ID, keep, req.Client); err != nil {
		return fmt.Errorf("sesame: the password changed, but ending the other sessions again failed: %w", err)
	}
	a.audit(ctx, Event{Type: EventPasswordChanged, UserID: u.ID, SessionID: req.SessionID, IP: req.Client.IP, UserAgent: req.Client.UserAgent})
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
