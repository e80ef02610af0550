package sesame_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
)

// clock is a settable time source shared by the Authenticator and store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStore counts TouchSession writes.
type countingStore struct {
	*memstore.Store
	touches atomic.Int64
}

func (c *countingStore) TouchSession(ctx context.Context, userID, id string, seen, exp time.Time) error {
	c.touches.Add(1)
	return c.Store.TouchSession(ctx, userID, id, seen, exp)
}

// countingHasher counts Verify calls, to prove unknown emails cost a hash.
type countingHasher struct {
	sesame.Hasher
	verifies atomic.Int64
}

func (c *countingHasher) Verify(ctx context.Context, enc, pw string) (bool, bool, error) {
	c.verifies.Add(1)
	return c.Hasher.Verify(ctx, enc, pw)
}

type fixture struct {
	auth   *sesame.Authenticator
	grants *sesame.Grants // with newTokenFixture
	st     *countingStore
	clk    *clock
	hasher *countingHasher
}

func newFixture(t *testing.T, mod func(*sesame.Config)) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := &countingStore{Store: memstore.New()}
	st.Now = clk.Now
	h := &countingHasher{Hasher: password.NewHasher(password.Fast)}
	cfg := sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: h, Now: clk.Now,
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	return &fixture{auth: sesame.New(cfg), st: st, clk: clk, hasher: h}
}

func (f *fixture) login(t *testing.T, email, pw string) sesame.Login {
	t.Helper()
	l, err := f.auth.Login(context.Background(), sesame.LoginRequest{Email: email, Password: pw, Client: sesame.Client{IP: "192.0.2.1"}})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return l
}

func TestIdleTimeoutAndCoalescedTouches(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.auth.Register(ctx, "a@x.test", "password one", nil)
	l := f.login(t, "a@x.test", "password one")

	// Many uses within a second write nothing.
	for range 100 {
		if _, _, err := f.auth.Authenticate(ctx, l.Secret); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.st.touches.Load(); n != 0 {
		t.Fatalf("touches within the touch interval = %d, want 0", n)
	}
	// Used every 9 minutes, the session outlives the 10-minute idle timeout.
	for range 5 {
		f.clk.Add(9 * time.Minute)
		if _, _, err := f.auth.Authenticate(ctx, l.Secret); err != nil {
			t.Fatalf("session used within the idle timeout ended: %v", err)
		}
	}
	if n := f.st.touches.Load(); n != 5 {
		t.Fatalf("touches = %d, want one per use a second or more apart (5)", n)
	}
	// Left alone for the idle timeout, it ends.
	f.clk.Add(10 * time.Minute)
	if _, _, err := f.auth.Authenticate(ctx, l.Secret); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("after the idle timeout: %v, want ErrSessionNotFound", err)
	}
}

func TestAbsoluteTimeout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.auth.Register(ctx, "a@x.test", "password one", nil)
	l := f.login(t, "a@x.test", "password one")
	for range 11 {
		f.clk.Add(5 * time.Minute)
		if _, _, err := f.auth.Authenticate(ctx, l.Secret); err != nil {
			t.Fatalf("before the absolute timeout: %v", err)
		}
	}
	f.clk.Add(5 * time.Minute) // 60 minutes after login
	if _, _, err := f.auth.Authenticate(ctx, l.Secret); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("at the absolute timeout: %v, want ErrSessionNotFound", err)
	}
}

func TestUnknownEmailCostsAHash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.auth.Register(ctx, "a@x.test", "password one", nil)
	before := f.hasher.verifies.Load()
	_, errUnknown := f.auth.Login(ctx, sesame.LoginRequest{Email: "nobody@x.test", Password: "password one"})
	_, errWrong := f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password two"})
	if !errors.Is(errUnknown, sesame.ErrInvalidCredentials) || !errors.Is(errWrong, sesame.ErrInvalidCredentials) {
		t.Fatalf("errors %v, %v; want ErrInvalidCredentials for both", errUnknown, errWrong)
	}
	if got := f.hasher.verifies.Load() - before; got != 2 {
		t.Fatalf("verifies = %d, want one for the unknown email and one for the wrong password", got)
	}
}

func TestAccountThrottleIsAtomic(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *sesame.Config) { c.AccountMaxFailures = 5; c.AddressMaxFailures = 1000 })
	f.auth.Register(ctx, "a@x.test", "password one", nil)
	var wrong, limited atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password two"})
			var rl *sesame.RateLimitError
			switch {
			case errors.Is(err, sesame.ErrInvalidCredentials):
				wrong.Add(1)
			case errors.As(err, &rl) && rl.RetryAfter >= 1:
				limited.Add(1)
			default:
				t.Errorf("unexpected %v", err)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 5 || limited.Load() != 45 {
		t.Fatalf("wrong=%d limited=%d, want exactly 5 checked and 45 throttled", wrong.Load(), limited.Load())
	}
	// The right password is throttled too until the window ends.
	if _, err := f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); !errors.Is(err, sesame.ErrRateLimited) {
		t.Fatalf("right password while throttled: %v", err)
	}
	f.clk.Add(5*time.Minute + time.Second)
	f.login(t, "a@x.test", "password one")
	// A success clears the account's count.
	for range 4 {
		f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password two"})
	}
	f.login(t, "a@x.test", "password one")
}

func TestLoginEndsPreviousSessionAndChangePasswordEndsOthers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.auth.Register(ctx, "a@x.test", "password one", nil)
	first := f.login(t, "a@x.test", "password one")
	second, err := f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one", PreviousSecret: first.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if second.Secret == first.Secret || second.Session.ID == first.Session.ID {
		t.Fatal("login reused an identifier")
	}
	if _, _, err := f.auth.Authenticate(ctx, first.Secret); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("previous session after a new login: %v", err)
	}
	other := f.login(t, "a@x.test", "password one")
	if err := f.auth.ChangePassword(ctx, sesame.PasswordChange{User: second.User, SessionID: second.Session.ID, KeepSession: true, Current: "password one", New: "password three"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.auth.Authenticate(ctx, other.Secret); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("other session after a password change: %v", err)
	}
	if _, _, err := f.auth.Authenticate(ctx, second.Secret); err != nil {
		t.Fatalf("caller's session after a password change: %v", err)
	}
	if _, err := f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); !errors.Is(err, sesame.ErrInvalidCredentials) {
		t.Fatalf("old password: %v", err)
	}
	f.login(t, "a@x.test", "password three")
	ev, _ := f.st.Events(ctx, sesame.EventQuery{UserID: second.User.ID})
	seen := map[string]bool{}
	for _, e := range ev {
		seen[e.Type] = true
	}
	for _, want := range []string{sesame.EventLoginSucceeded, sesame.EventLoginFailed, sesame.EventLogout, sesame.EventPasswordChanged, sesame.EventSessionRevoked} {
		if !seen[want] {
			t.Errorf("audit lacks %s: %v", want, seen)
		}
	}
}

func TestWeakHashUpgradedAtLogin(t *testing.T) {
	ctx := context.Background()
	weak := password.NewHasher(password.Fast)
	strongP := password.Fast
	strongP.Time = 3
	strong := password.NewHasher(strongP)
	st := memstore.New()
	a := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: weak})
	u, _ := a.Register(ctx, "a@x.test", "password one", nil)
	b := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: strong})
	if _, err := b.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.UserByID(ctx, u.ID)
	if got.PasswordHash == u.PasswordHash {
		t.Fatal("hash not upgraded")
	}
	if _, rehash, _ := strong.Verify(ctx, got.PasswordHash, "password one"); rehash {
		t.Fatal("upgraded hash still weaker than the hasher's parameters")
	}
}

// countingUsers counts UserByID reads.
type countingUsers struct {
	*memstore.Store
	reads atomic.Int64
}

func (c *countingUsers) UserByID(ctx context.Context, id string) (sesame.User, error) {
	c.reads.Add(1)
	return c.Store.UserByID(ctx, id)
}

func TestUserCacheSparesReadsNotRevocation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := memstore.New()
	st.Now = clk.Now
	users := &countingUsers{Store: st}
	a := sesame.New(sesame.Config{Users: users, Sessions: st, Audit: st, Limiter: st,
		Hasher: password.NewHasher(password.Fast), Now: clk.Now})
	a.Register(ctx, "a@x.test", "password one", nil)
	l, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
	if err != nil {
		t.Fatal(err)
	}
	before := users.reads.Load()
	for range 50 {
		_, u, err := a.Authenticate(ctx, l.Secret)
		if err != nil || u.Email != "a@x.test" || u.PasswordHash != "" {
			t.Fatalf("authenticate: %+v %v", u, err)
		}
	}
	if n := users.reads.Load() - before; n != 1 {
		t.Fatalf("user reads within the cache TTL = %d, want 1", n)
	}
	clk.Add(2 * time.Second)
	a.Authenticate(ctx, l.Secret)
	if n := users.reads.Load() - before; n != 2 {
		t.Fatalf("user reads after the cache TTL = %d, want 2", n)
	}
	// A cached user does not keep a revoked session alive.
	a.Logout(ctx, l.Secret, sesame.Client{})
	if _, _, err := a.Authenticate(ctx, l.Secret); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("after logout: %v", err)
	}
}

// failingDeletes makes DeleteUserSessions fail, as a store outage would.
type failingDeletes struct{ *memstore.Store }

func (failingDeletes) DeleteUserSessions(context.Context, string, string) ([]string, error) {
	return nil, sesame.ErrUnavailable
}

// If the other sessions cannot be ended, the password must not change:
// otherwise an intruder's sessions would outlive a changed password, and
// the user's retry would fail on the "current" password.
func TestChangePasswordEndsSessionsFirst(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	cfg := sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)}
	a := sesame.New(cfg)
	a.Register(ctx, "a@x.test", "password one", nil)
	l, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sessions = failingDeletes{st}
	broken := sesame.New(cfg)
	if err := broken.ChangePassword(ctx, sesame.PasswordChange{User: l.User, SessionID: l.Session.ID, KeepSession: true, Current: "password one", New: "password two"}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("change with the session store failing: %v, want ErrUnavailable", err)
	}
	if _, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); err != nil {
		t.Fatalf("old password after a failed change: %v (the password changed anyway)", err)
	}
}

// unloggedEnds ends sessions like the Redis store does when its revocation
// log refuses the append: the sessions are gone, and the error says so.
type unloggedEnds struct{ *memstore.Store }

func (u unloggedEnds) DeleteSession(ctx context.Context, userID, id string) error {
	u.Store.DeleteSession(ctx, userID, id)
	return sesame.ErrUnavailable
}

func (u unloggedEnds) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	ids, _ := u.Store.DeleteUserSessions(ctx, userID, exceptID)
	return ids, sesame.ErrUnavailable
}

// An end the store reports as failed still reaches this node's revocation
// set: the session may be gone with its revocation not logged yet, and
// its tokens must stop here at once.
func TestEndReachesRevocationsOnStoreError(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	revs := sesame.NewRevocationSet(nil, time.Hour, 0, nil)
	cfg := sesame.Config{Users: unloggedEnds{st}, Sessions: unloggedEnds{st}, Audit: st, Limiter: st,
		Hasher: password.NewHasher(password.Fast), Revocations: revs}
	a := sesame.New(cfg)
	if _, err := a.Register(ctx, "a@x.test", "password one", nil); err != nil {
		t.Fatal(err)
	}
	var logins []sesame.Login
	for range 3 {
		l, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
		if err != nil {
			t.Fatal(err)
		}
		logins = append(logins, l)
	}
	if err := a.Logout(ctx, logins[0].Secret, sesame.Client{}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("Logout = %v, want ErrUnavailable", err)
	}
	if _, err := a.RevokeSessions(ctx, logins[1].User.ID, logins[2].Session.ID, sesame.Client{}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("RevokeSessions = %v, want ErrUnavailable", err)
	}
	for i, l := range logins {
		revoked, err := revs.Revoked(l.Session.ID, time.Time{})
		if err != nil || revoked != (i < 2) {
			t.Errorf("session %d: Revoked = %t, %v; want %t", i, revoked, err, i < 2)
		}
	}
}

// gateHasher holds the first `hold` Verify calls (after counting them in
// entered) until release is closed; later calls pass straight through.
type gateHasher struct {
	sesame.Hasher
	hold    int64
	n       atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func newGateHasher(h sesame.Hasher, hold int) *gateHasher {
	return &gateHasher{Hasher: h, hold: int64(hold), entered: make(chan struct{}, hold), release: make(chan struct{})}
}

func (g *gateHasher) Verify(ctx context.Context, enc, pw string) (bool, bool, error) {
	if g.n.Add(1) <= g.hold {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Hasher.Verify(ctx, enc, pw)
}

// Logins whose password check began before a password change, or before
// every session of the user was ended, keep nothing: each either fails or
// ends the session (cookie) or family (tokens) it created. The logins are
// held inside the password check, after they read the user, while the
// change runs; then they finish. Without the credential generation every
// one of them keeps a live session.
func TestLoginsInFlightLoseToChange(t *testing.T) {
	const inFlight = 6
	for _, change := range []string{"password", "revoke"} {
		t.Run(change, func(t *testing.T) {
			ctx := context.Background()
			st := memstore.New()
			gate := newGateHasher(password.NewHasher(password.Fast), 2*inFlight)
			revs := sesame.NewRevocationSet(nil, time.Hour, 0, nil)
			a := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: gate, Revocations: revs,
				AccountMaxFailures: 1000})
			g, err := sesame.NewGrants(a, sesame.GrantsConfig{Backend: st, Issuer: fakeIssuer{}, SuccessorKey: make([]byte, 32)})
			if err != nil {
				t.Fatal(err)
			}
			gate.n.Store(2*inFlight + 2) // let the owner register and sign in
			if _, err := a.Register(ctx, "a@x.test", "password one", nil); err != nil {
				t.Fatal(err)
			}
			owner, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
			if err != nil {
				t.Fatal(err)
			}
			gate.n.Store(0)

			var wg sync.WaitGroup
			cookies := make(chan sesame.Login, inFlight)
			families := make(chan sesame.Tokens, inFlight)
			for range inFlight {
				wg.Go(func() {
					if l, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); err == nil {
						cookies <- l
					} else if !errors.Is(err, sesame.ErrInvalidCredentials) {
						t.Errorf("login in flight: %v", err)
					}
				})
				wg.Go(func() {
					if tk, err := g.Password(ctx, "a@x.test", "password one", sesame.Client{}); err == nil {
						families <- tk
					} else if !errors.Is(err, sesame.ErrInvalidCredentials) {
						t.Errorf("grant in flight: %v", err)
					}
				})
			}
			for range 2 * inFlight {
				<-gate.entered // every login has read the user and is verifying
			}
			switch change {
			case "password":
				err = a.ChangePassword(ctx, sesame.PasswordChange{User: owner.User, SessionID: owner.Session.ID, KeepSession: true,
					Current: "password one", New: "password two"})
			case "revoke":
				_, err = a.RevokeSessions(ctx, owner.User.ID, "", sesame.Client{})
			}
			if err != nil {
				t.Fatalf("%s: %v", change, err)
			}
			close(gate.release)
			wg.Wait()
			close(cookies)
			close(families)
			for l := range cookies {
				if _, _, err := a.Authenticate(ctx, l.Secret); !errors.Is(err, sesame.ErrSessionNotFound) {
					t.Errorf("cookie of a login begun before the %s change: Authenticate = %v, want ErrSessionNotFound", change, err)
				}
			}
			for tk := range families {
				if _, err := g.Refresh(ctx, tk.RefreshToken, sesame.Client{}); !errors.Is(err, sesame.ErrInvalidGrant) {
					t.Errorf("family of a grant begun before the %s change: Refresh = %v, want ErrInvalidGrant", change, err)
				}
				if revoked, _ := revs.Revoked(tk.SessionID, time.Now()); !revoked {
					t.Errorf("family %s of a grant begun before the %s change is not in the revocation set: its access token lives on", tk.SessionID, change)
				}
			}
			// After the change, logins work as they should.
			pw := map[string]string{"password": "password two", "revoke": "password one"}[change]
			l, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: pw})
			if err != nil {
				t.Fatalf("login after the change: %v", err)
			}
			if _, _, err := a.Authenticate(ctx, l.Secret); err != nil {
				t.Fatalf("session of a login after the change: %v", err)
			}
		})
	}
}

// gateHash holds the first Hash call until release is closed.
type gateHash struct {
	sesame.Hasher
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gateHash) Hash(ctx context.Context, pw string) (string, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Hasher.Hash(ctx, pw)
}

// A login that upgrades the hash of the password it verified must not
// undo a password change that landed meanwhile: the upgrade is a
// compare-and-swap on the verified hash.
func TestHashUpgradeDoesNotUndoChange(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	weak := password.NewHasher(password.Fast)
	strongP := password.Fast
	strongP.Time = 3
	a := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: weak})
	owner, err := a.Register(ctx, "a@x.test", "password one", nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateHash{Hasher: password.NewHasher(strongP), entered: make(chan struct{}), release: make(chan struct{})}
	upgrading := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: gate})
	done := make(chan error, 1)
	go func() {
		_, err := upgrading.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"})
		done <- err
	}()
	<-gate.entered // verified the old password, about to write its upgrade
	if err := a.ChangePassword(ctx, sesame.PasswordChange{User: owner, SessionID: l.Session.ID, KeepSession: true,
		Current: "password one", New: "password two"}); err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	if err := <-done; !errors.Is(err, sesame.ErrInvalidCredentials) {
		t.Errorf("login overtaken by the change = %v, want ErrInvalidCredentials", err)
	}
	if _, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); !errors.Is(err, sesame.ErrInvalidCredentials) {
		t.Fatalf("old password after the change and a racing upgrade: %v (the upgrade undid the change)", err)
	}
	if _, err := a.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password two"}); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

// Strangers' failed logins throttle the account's logins, not its signed-in
// owner's password change; wrong current passwords are throttled by the
// owner's session instead, so a stolen cookie is no password oracle.
func TestChangePasswordThrottledBySession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	owner, err := f.auth.Register(ctx, "a@x.test", "password one", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := f.login(t, "a@x.test", "password one")
	for range 6 {
		f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "not the password", Client: sesame.Client{IP: "203.0.113.9"}})
	}
	if _, err := f.auth.Login(ctx, sesame.LoginRequest{Email: "a@x.test", Password: "password one"}); !errors.Is(err, sesame.ErrRateLimited) {
		t.Fatalf("login after a stranger's 6 failures = %v, want the account throttled", err)
	}
	change := func(sid, current, next string) error {
		return f.auth.ChangePassword(ctx, sesame.PasswordChange{User: owner, SessionID: sid, KeepSession: true, Current: current, New: next})
	}
	if err := change(l.Session.ID, "password one", "password two"); err != nil {
		t.Fatalf("owner's change while the account is throttled = %v, want it to succeed", err)
	}
	// Five wrong current passwords, then even the right one waits.
	for i := range 5 {
		if err := change(l.Session.ID, "wrong current", "password three"); !errors.Is(err, sesame.ErrInvalidCredentials) {
			t.Fatalf("wrong current password %d = %v, want ErrInvalidCredentials", i+1, err)
		}
	}
	if err := change(l.Session.ID, "password two", "password three"); !errors.Is(err, sesame.ErrRateLimited) {
		t.Fatalf("6th attempt from the same session = %v, want ErrRateLimited", err)
	}
	f.clk.Add(6 * time.Minute)
	if err := change(l.Session.ID, "password two", "password three"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// endBeforeToken is a backend on which every new token family is ended
// (as by a password change of its user) between the family's creation and
// the storing of its first refresh token.
type endBeforeToken struct {
	*memstore.Store
}

func (e endBeforeToken) CreateRefreshToken(ctx context.Context, rt sesame.RefreshToken) error {
	if err := e.Store.DeleteSession(ctx, rt.UserID, rt.SessionID); err != nil {
		return err
	}
	return e.Store.CreateRefreshToken(ctx, rt)
}

// A password grant whose family is ended before its first refresh token is
// stored is refused as overtaken (invalid_grant at the API), not answered
// with the store's "no such session" (401 unauthenticated at the API).
func TestGrantOvertakenBeforeItsFirstToken(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	a := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	g, err := sesame.NewGrants(a, sesame.GrantsConfig{Backend: endBeforeToken{st}, Issuer: fakeIssuer{}, SuccessorKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, "a@x.test", "password one", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Password(ctx, "a@x.test", "password one", sesame.Client{}); !errors.Is(err, sesame.ErrInvalidCredentials) {
		t.Fatalf("grant overtaken before its first token: %v, want ErrInvalidCredentials", err)
	}
}
