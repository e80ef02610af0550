package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/pgstore"
	"github.com/sesameauth/sesame/storetest"
)

// defaultServer is the PostgreSQL the tests use unless SESAME_TEST_POSTGRES
// names another. The tests create a schema of their own per test in its
// database and drop it afterwards.
const defaultServer = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func server() string {
	if s := os.Getenv("SESAME_TEST_POSTGRES"); s != "" {
		return s
	}
	return defaultServer
}

// admin is a pool on the test server for creating and dropping schemas,
// connected once by the first test that needs it.
var admin struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if admin.pool != nil {
		admin.pool.Close()
	}
	os.Exit(code)
}

// adminPool returns the admin pool. If the server cannot be reached it
// skips the test, or fails it when CI is set.
func adminPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	admin.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cfg, err := pgxpool.ParseConfig(server())
		if err != nil {
			admin.err = err
			return
		}
		cfg.ConnConfig.ConnectTimeout = 3 * time.Second
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			if err = pool.Ping(ctx); err != nil {
				pool.Close()
			}
		}
		admin.pool, admin.err = pool, err
	})
	if admin.err != nil {
		msg := fmt.Sprintf("PostgreSQL unreachable (set SESAME_TEST_POSTGRES, default %s): %v", defaultServer, admin.err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return admin.pool
}

// freshSchema creates an empty schema, drops it when the test ends, and
// returns a connection string whose search_path is that schema, with
// extra settings ("pool_max_conns=16") added.
func freshSchema(t testing.TB, extra ...string) string {
	t.Helper()
	pool := adminPool(t)
	name := "sesame_test_" + randomHex(8)
	if _, err := pool.Exec(context.Background(), `CREATE SCHEMA `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("dropping the test schema: %v", err)
		}
	})
	return withParams(t, server(), append([]string{"search_path=" + name}, extra...)...)
}

// withParams adds key=value settings to a connection string in either of
// its forms.
func withParams(t testing.TB, conn string, params ...string) string {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		for _, p := range params {
			k, v, _ := strings.Cut(p, "=")
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	return conn + " " + strings.Join(params, " ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// open opens a store on conn and closes it at the end of the test.
func open(t testing.TB, conn string) *pgstore.Store {
	t.Helper()
	st, err := pgstore.Open(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// freshStore opens a store on a fresh schema.
func freshStore(t testing.TB, extra ...string) *pgstore.Store {
	t.Helper()
	return open(t, freshSchema(t, extra...))
}

// TestStore runs the contract every store passes, in a fresh schema per
// test. Throttling counters are not kept here (Limiter is nil).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		st, clk := freshStore(t), &storetest.Clock{}
		st.Now = clk.Now
		return storetest.Stores{Users: st, Sessions: st, Refresh: st, Revocations: st, Keys: st, Audit: st, Limiter: st, Clock: clk}
	})
}

func newSession(userID string, now time.Time) sesame.Session {
	_, hash := sesame.NewSecret()
	return sesame.Session{
		ID: sesame.NewID(), SecretHash: hash, UserID: userID,
		CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour),
		IP: "192.0.2.1", UserAgent: "test",
	}
}

func newUser(email string) sesame.User {
	return sesame.User{ID: sesame.NewID(), Email: email, Roles: []string{sesame.RoleUser},
		PasswordHash: "$argon2id$x", CreatedAt: time.Now()}
}

// TestConcurrentOpen opens a fresh schema from several goroutines at once,
// each with its own pool, as nodes started together would: all succeed and
// each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	const nodes = 8
	for round := range 3 {
		conn := freshSchema(t)
		var wg sync.WaitGroup
		errs := make(chan error, nodes)
		start := make(chan struct{})
		for i := range nodes {
			wg.Go(func() {
				<-start
				st, err := pgstore.Open(ctx, conn)
				if err != nil {
					errs <- err
					return
				}
				defer st.Close()
				errs <- st.CreateUser(ctx, newUser(fmt.Sprintf("u%d@example.test", i)))
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		st := open(t, conn)
		users, err := st.ListUsers(ctx)
		if err != nil || len(users) != nodes {
			t.Fatalf("round %d: ListUsers = %d users, %v; want %d", round, len(users), err, nodes)
		}
		var n, maxVersion int
		if err := adminPool(t).QueryRow(ctx, `SELECT count(*), max(version) FROM `+schemaOf(t, conn)+`.schema_migrations`).Scan(&n, &maxVersion); err != nil {
			t.Fatal(err)
		}
		if n != maxVersion || n == 0 {
			t.Errorf("round %d: schema_migrations holds %d rows up to version %d: a migration was applied twice or skipped", round, n, maxVersion)
		}
	}
}

// schemaOf returns the search_path that freshSchema put in conn.
func schemaOf(t testing.TB, conn string) string {
	if u, err := url.Parse(conn); err == nil && u.Query().Get("search_path") != "" {
		return u.Query().Get("search_path")
	}
	_, after, ok := strings.Cut(conn, "search_path=")
	if !ok {
		t.Fatalf("no search_path in %q", conn)
	}
	return strings.Fields(after)[0]
}

// TestReopen opens the same schema again: nothing is migrated twice and the
// data is there.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	conn := freshSchema(t)
	u := newUser("ada@example.test")
	for i := range 3 {
		st, err := pgstore.Open(ctx, conn)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			err = st.CreateUser(ctx, u)
		} else {
			_, err = st.UserByID(ctx, u.ID)
		}
		st.Close()
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
	}
}

// TestRevocationsNoGap ends sessions from many goroutines on two stores (two
// nodes) while a reader follows the log the way verifiers do, asking each
// time for Seq > the last it saw. A Seq that became visible only after a
// larger one would be skipped for good; the reader must see every
// revocation exactly once.
func TestRevocationsNoGap(t *testing.T) {
	ctx := context.Background()
	conn := withParams(t, freshSchema(t), "pool_max_conns=12")
	nodes := []*pgstore.Store{open(t, conn), open(t, conn)}
	const (
		writers   = 16
		perWriter = 40
	)
	var (
		mu      sync.Mutex
		revoked = map[string]bool{}
	)
	var wg sync.WaitGroup
	for w := range writers {
		st := nodes[w%len(nodes)]
		wg.Go(func() {
			user := sesame.NewID()
			for i := range perWriter {
				s := newSession(user, time.Now())
				if err := st.CreateSession(ctx, s); err != nil {
					t.Error(err)
					return
				}
				if i%4 == 3 { // now and then all of the user's sessions at once
					ids, err := st.DeleteUserSessions(ctx, user, "")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, id := range ids {
						revoked[id] = true
					}
					mu.Unlock()
					continue
				}
				if err := st.DeleteSession(ctx, s.UserID, s.ID); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				revoked[s.ID] = true
				mu.Unlock()
			}
		})
	}

	seen := map[string]int{}
	var last int64
	follow := func() {
		list, err := nodes[0].RevocationsSince(ctx, last, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			if r.Seq <= last {
				t.Fatalf("RevocationsSince(%d) returned seq %d", last, r.Seq)
			}
			last = r.Seq
			seen[r.SessionID]++
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for polling := true; polling; {
		select {
		case <-done:
			polling = false
		default:
			follow()
		}
	}
	for range 100 { // drain what is left
		before := last
		follow()
		if last == before {
			break
		}
	}
	if t.Failed() {
		return
	}
	if len(revoked) != writers*perWriter {
		t.Fatalf("the writers ended %d sessions, want %d", len(revoked), writers*perWriter)
	}
	var missed []string
	for id := range revoked {
		switch n := seen[id]; {
		case n == 0:
			missed = append(missed, id)
		case n > 1:
			t.Errorf("revocation of %s seen %d times", id, n)
		}
	}
	if len(missed) > 0 {
		t.Errorf("the reader skipped %d of %d revocations for good (a seq committed after a larger one)", len(missed), len(revoked))
	}
	for id := range seen {
		if !revoked[id] {
			t.Errorf("revocation of %s, which no writer ended", id)
		}
	}
}

// TestRotateWhileEnding rotates a family's token over and over while
// another goroutine ends its session: neither waits for the other in a
// cycle (a deadlock would fail one of them), and no token of the session
// outlives it.
func TestRotateWhileEnding(t *testing.T) {
	ctx := context.Background()
	conn := freshSchema(t)
	st := open(t, conn)
	for round := range 40 {
		s := newSession(sesame.NewID(), time.Now())
		s.Kind = sesame.KindToken
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		_, hash := sesame.NewSecret()
		tok := sesame.RefreshToken{Hash: hash, SessionID: s.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := st.CreateRefreshToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				_, next := sesame.NewSecret()
				err := st.RotateRefreshToken(ctx, tok.Hash, sesame.RefreshToken{Hash: next, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
				if errors.Is(err, sesame.ErrInvalidGrant) {
					return // the session ended
				}
				if err != nil {
					t.Errorf("round %d: RotateRefreshToken: %v", round, err)
					return
				}
				tok.Hash = next
			}
		})
		wg.Go(func() {
			time.Sleep(time.Duration(round%8) * time.Millisecond)
			var err error
			if round%2 == 0 {
				err = st.DeleteSession(ctx, s.UserID, s.ID)
			} else {
				_, err = st.DeleteUserSessions(ctx, s.UserID, "")
			}
			if err != nil {
				t.Errorf("round %d: ending the session: %v", round, err)
			}
		})
		wg.Wait()
		var left int
		if err := adminPool(t).QueryRow(ctx, `SELECT count(*) FROM `+schemaOf(t, conn)+`.refresh_tokens WHERE session_id = $1`, s.ID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("round %d: %d refresh tokens of the ended session left behind", round, left)
		}
	}
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	st, err := pgstore.Open(ctx, freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := st.Ping(ctx); !errors.Is(err, sesame.ErrUnavailable) {
		t.Fatalf("Ping after Close = %v, want ErrUnavailable", err)
	}
	if _, err := st.Session(ctx, [32]byte{}); !errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("Session after Close = %v, want ErrUnavailable", err)
	}
	if err := st.DeleteSession(ctx, sesame.NewID(), sesame.NewID()); !errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("DeleteSession after Close = %v, want ErrUnavailable", err)
	}
}

// TestConnectionKilled ends the store's server connections from outside, as
// a restart or failover of the server would: the next operation on each
// fails with ErrUnavailable, and the pool then connects afresh.
func TestConnectionKilled(t *testing.T) {
	ctx := context.Background()
	app := "sesame_test_" + randomHex(4)
	st := open(t, withParams(t, freshSchema(t), "application_name="+app, "pool_max_conns=1"))
	s := newSession("u1", time.Now())
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	var killed int
	if err := adminPool(t).QueryRow(ctx, `SELECT count(*) FROM
		(SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) k`, app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d connections, want 1", killed)
	}
	_, err := st.Session(ctx, s.SecretHash)
	if !errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("Session on a terminated connection = %v, want ErrUnavailable", err)
	}
	if _, err := st.Session(ctx, s.SecretHash); err != nil {
		t.Errorf("Session after the pool replaced the connection: %v", err)
	}
}

// TestOpenUnreachable checks that Open gives up soon, with ErrUnavailable,
// on a port where nothing listens and on a server that never answers.
func TestOpenUnreachable(t *testing.T) {
	ctx := context.Background()
	refused := func() string { // a port that was free a moment ago
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var (
		connsMu sync.Mutex
		conns   []net.Conn
	)
	go func() { // accept, and never say a word
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
		}
	}()
	defer func() {
		connsMu.Lock()
		defer connsMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()

	cases := []struct {
		name, conn string
		within     time.Duration
		slow       bool
	}{
		{"refused", "postgres://sesame@" + refused + "/sesame?sslmode=disable", 2 * time.Second, false},
		{"silent, connect_timeout=1", "postgres://sesame@" + silent.Addr().String() + "/sesame?sslmode=disable&connect_timeout=1", 3 * time.Second, false},
		{"silent, default timeout", "postgres://sesame@" + silent.Addr().String() + "/sesame", pgstore.DefaultConnectTimeout + 3*time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.slow && testing.Short() {
				t.Skip("waits for the default connect timeout")
			}
			start := time.Now()
			st, err := pgstore.Open(ctx, c.conn)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, sesame.ErrUnavailable) {
				t.Errorf("Open = %v, want ErrUnavailable", err)
			}
			if took := time.Since(start); took > c.within {
				t.Errorf("Open gave up after %v, want within %v", took, c.within)
			}
			t.Log(err)
		})
	}
}

// TestUnstorableBytes checks that bytes PostgreSQL cannot hold in text (NUL,
// invalid UTF-8) from a client never fail a login or a lookup.
func TestUnstorableBytes(t *testing.T) {
	ctx := context.Background()
	st := freshStore(t)
	s := newSession("u1", time.Now())
	s.IP = "192.0.2.1\x00"
	s.UserAgent = "agent \xff\xfe\x00 end"
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatalf("CreateSession with NUL and invalid UTF-8: %v", err)
	}
	got, err := st.Session(ctx, s.SecretHash)
	if err != nil {
		t.Fatal(err)
	}
	if want := "192.0.2.1\uFFFD"; got.IP != want {
		t.Errorf("IP read back as %q, want %q", got.IP, want)
	}
	if want := "agent \uFFFD\uFFFD end"; got.UserAgent != want { // ToValidUTF8 folds a run of bad bytes into one
		t.Errorf("UserAgent read back as %q, want %q", got.UserAgent, want)
	}
	if err := st.Record(ctx, sesame.Event{Time: time.Now(), Type: sesame.EventLoginFailed, IP: "\x00", UserAgent: "\xc3"}); err != nil {
		t.Errorf("Record with NUL and invalid UTF-8: %v", err)
	}

	bad := "id\x00\xff"
	if _, err := st.UserByID(ctx, bad); !errors.Is(err, sesame.ErrUserNotFound) {
		t.Errorf("UserByID(%q) = %v, want ErrUserNotFound", bad, err)
	}
	if _, err := st.UserByEmail(ctx, bad); !errors.Is(err, sesame.ErrUserNotFound) {
		t.Errorf("UserByEmail(%q) = %v, want ErrUserNotFound", bad, err)
	}
	if err := st.SetPasswordHash(ctx, bad, "x"); !errors.Is(err, sesame.ErrUserNotFound) {
		t.Errorf("SetPasswordHash(%q) = %v, want ErrUserNotFound", bad, err)
	}
	if err := st.TouchSession(ctx, "u", bad, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("TouchSession(%q) = %v, want ErrSessionNotFound", bad, err)
	}
	if err := st.DeleteSession(ctx, "u", bad); err != nil {
		t.Errorf("DeleteSession(%q) = %v, want nil", bad, err)
	}
	if list, err := st.UserSessions(ctx, bad); err != nil || len(list) != 0 {
		t.Errorf("UserSessions(%q) = %v, %v; want none", bad, list, err)
	}
	if evs, err := st.Events(ctx, sesame.EventQuery{UserID: bad}); err != nil || len(evs) != 0 {
		t.Errorf("Events(%q) = %v, %v; want none", bad, evs, err)
	}
	if err := st.CreateRefreshToken(ctx, sesame.RefreshToken{SessionID: bad, ExpiresAt: time.Now().Add(time.Hour)}); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Errorf("CreateRefreshToken(session %q) = %v, want ErrSessionNotFound", bad, err)
	}
	// An exception no session can have excepts none.
	ids, err := st.DeleteUserSessions(ctx, "u1", bad)
	if err != nil || !slices.Equal(ids, []string{s.ID}) {
		t.Errorf("DeleteUserSessions(u1, except %q) = %q, %v; want [%s]", bad, ids, err, s.ID)
	}
}

// TestExpiry fills the table with more expired sessions than one sweep
// batch (the store's clock deciding expiry is storetest's Clock test), and
// two nodes sweep at once: each record is removed, and counted, once, and
// no live one.
func TestExpiry(t *testing.T) {
	ctx := context.Background()
	conn := freshSchema(t)
	st, other := open(t, conn), open(t, conn)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st.Now = func() time.Time { return t0 }
	other.Now = st.Now
	live := newSession("u1", t0)
	if err := st.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := adminPool(t).Exec(ctx, `INSERT INTO `+schemaOf(t, conn)+`.sessions
		(id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent)
		SELECT 'x' || i, sha256(int8send(i)), 'u2', $1, $1, $1, $1, '', '' FROM generate_series(1, 12000) i`, t0); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		counts [2]int
	)
	for i, node := range []*pgstore.Store{st, other} {
		wg.Go(func() {
			n, err := node.DeleteExpired(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if n := counts[0] + counts[1]; n != 12000 {
		t.Errorf("DeleteExpired on two nodes at once = %d + %d; want 12000 in all", counts[0], counts[1])
	}
	if _, err := st.Session(ctx, live.SecretHash); err != nil {
		t.Errorf("live session after DeleteExpired: %v", err)
	}
}

// TestSecretHashCollision checks that a session whose secret hash another
// session has is refused, and the other left alone.
func TestSecretHashCollision(t *testing.T) {
	ctx := context.Background()
	st := freshStore(t)
	a := newSession("u1", time.Now())
	b := newSession("u2", time.Now())
	b.SecretHash = a.SecretHash
	if err := st.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, b); err == nil || errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("CreateSession with another session's secret hash = %v, want an error", err)
	}
	if got, err := st.Session(ctx, a.SecretHash); err != nil || got.ID != a.ID {
		t.Errorf("Session = %v, %v; want the first session", got.ID, err)
	}
}
