package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/sqlitestore"
	_ "modernc.org/sqlite"
)

// open opens a store on path and closes it at the end of the test.
func open(t testing.TB, path string) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// raw opens the database file directly, as another program would.
func raw(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
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

// TestTwoStores opens the same file twice, as the server and the command
// line do, and checks that each sees the other's writes at once.
func TestTwoStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	server, cli := open(t, path), open(t, path)

	u := newUser("ada@example.test")
	if err := cli.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := server.UserByEmail(ctx, u.Email); err != nil {
		t.Fatalf("user added through one store, not found through the other: %v", err)
	}
	if err := server.CreateUser(ctx, newUser(u.Email)); !errors.Is(err, sesame.ErrEmailTaken) {
		t.Fatalf("second user with the same email through the other store: got %v, want ErrEmailTaken", err)
	}

	s := newSession(u.ID, time.Now())
	if err := server.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Session(ctx, s.SecretHash); err != nil {
		t.Fatalf("session created through one store, not found through the other: %v", err)
	}
	ids, err := cli.DeleteUserSessions(ctx, u.ID, "")
	if err != nil || len(ids) != 1 || ids[0] != s.ID {
		t.Fatalf("DeleteUserSessions = %v, %v; want [%s]", ids, err, s.ID)
	}
	if _, err := server.Session(ctx, s.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("session revoked through the other store: Session returned %v, want ErrSessionNotFound", err)
	}
	if err := server.TouchSession(ctx, s.UserID, s.ID, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("TouchSession of a revoked session = %v, want ErrSessionNotFound", err)
	}

	s2 := newSession(u.ID, time.Now())
	if err := server.CreateSession(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if err := cli.DeleteSession(ctx, s2.UserID, s2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Session(ctx, s2.SecretHash); !errors.Is(err, sesame.ErrSessionNotFound) {
		t.Fatalf("session deleted through the other store: Session returned %v, want ErrSessionNotFound", err)
	}

	if err := cli.Record(ctx, sesame.Event{Time: time.Now(), Type: sesame.EventSessionRevoked, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if evs, err := server.Events(ctx, sesame.EventQuery{UserID: u.ID}); err != nil || len(evs) != 1 {
		t.Fatalf("Events through the other store = %v, %v; want one event", evs, err)
	}
}

// TestConcurrentWriters writes through two stores on one file from many
// goroutines at once: every write lands, none fails on a lock.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	stores := []*sqlitestore.Store{open(t, path), open(t, path)}
	const perGoroutine = 25
	var wg sync.WaitGroup
	errs := make(chan error, 8*perGoroutine)
	for g := range 8 {
		wg.Go(func() {
			st := stores[g%2]
			for range perGoroutine {
				s := newSession(fmt.Sprint("u", g), time.Now())
				if err := st.CreateSession(ctx, s); err != nil {
					errs <- err
					return
				}
				if _, err := stores[(g+1)%2].Session(ctx, s.SecretHash); err != nil {
					errs <- err
					return
				}
				if _, err := st.DeleteUserSessions(ctx, fmt.Sprint("u", g), s.ID); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := stores[0].CountSessions(ctx); err != nil || n != 8 {
		t.Errorf("CountSessions = %d, %v; want 8 (one left per user)", n, err)
	}
}

func TestFileModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data", "sesame")
	path := filepath.Join(dir, "sesame.db")
	st := open(t, path)
	// A write makes SQLite create the -wal and -shm files too.
	if err := st.CreateUser(ctx, newUser("ada@example.test")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want os.FileMode
	}{
		{dir, 0o700},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
	} {
		fi, err := os.Stat(c.name)
		if err != nil {
			t.Error(err)
			continue
		}
		// The umask may take bits away, never add them.
		if got := fi.Mode().Perm(); got&^c.want != 0 {
			t.Errorf("%s: mode %v, want at most %v", c.name, got, c.want)
		}
	}
}

// TestOddPath checks that a path is a file name, never parsed as a URI:
// '?' and '#' in it do not start a query or fragment.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b?c=d#e%20f", "sesame.db")
	st := open(t, path)
	if err := st.CreateUser(context.Background(), newUser("ada@example.test")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	u := newUser("ada@example.test")
	for i := range 3 {
		st, err := sqlitestore.Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			err = st.CreateUser(ctx, u)
		} else {
			_, err = st.UserByID(ctx, u.ID)
		}
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var n, maxVersion int
	if err := raw(t, path).QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxVersion); err != nil {
		t.Fatal(err)
	}
	if n != maxVersion {
		t.Errorf("schema_migrations holds %d rows up to version %d: a migration was applied twice or skipped", n, maxVersion)
	}
}

// TestConcurrentOpen opens a fresh file from several goroutines at once,
// each with its own connections, the way two processes started together
// would: all succeed and the schema is applied once.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		path := filepath.Join(t.TempDir(), fmt.Sprint("sesame", round, ".db"))
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := range 6 {
			wg.Go(func() {
				st, err := sqlitestore.Open(ctx, path)
				if err != nil {
					errs <- err
					return
				}
				defer st.Close()
				errs <- st.CreateUser(ctx, newUser(fmt.Sprintf("u%d@example.test", i)))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		users, err := open(t, path).ListUsers(ctx)
		if err != nil || len(users) != 6 {
			t.Fatalf("round %d: ListUsers = %d users, %v; want 6", round, len(users), err)
		}
	}
}

// TestConcurrentProcesses runs the real thing: this test binary started as
// several processes opening one fresh file together.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "sesame.db")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([][]byte, procs)
	var wg sync.WaitGroup
	for i := range procs {
		cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), "SQLITESTORE_HELPER_DB="+path, fmt.Sprint("SQLITESTORE_HELPER_N=", i))
		cmds[i] = cmd
		wg.Go(func() { outs[i], _ = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i, cmd := range cmds {
		if !cmd.ProcessState.Success() {
			t.Errorf("process %d: %v\n%s", i, cmd.ProcessState, outs[i])
		}
	}
	ctx := context.Background()
	st := open(t, path)
	users, err := st.ListUsers(ctx)
	if err != nil || len(users) != procs {
		t.Fatalf("ListUsers = %d users, %v; want %d", len(users), err, procs)
	}
	if n, err := st.CountSessions(ctx); err != nil || n != procs {
		t.Fatalf("CountSessions = %d, %v; want %d", n, err, procs)
	}
}

// TestHelperProcess is a process of TestConcurrentProcesses.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("SQLITESTORE_HELPER_DB")
	if path == "" {
		return
	}
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := newUser(fmt.Sprintf("p%s@example.test", os.Getenv("SQLITESTORE_HELPER_N")))
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, newSession(u.ID, time.Now())); err != nil {
		t.Fatal(err)
	}
}

// TestExpiry fills the table with more expired sessions than one sweep
// batch (the store's clock deciding expiry is storetest's Clock test):
// DeleteExpired removes them all, in several transactions, and no live one.
func TestExpiry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	st := open(t, path)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st.Now = func() time.Time { return t0 }
	live := newSession("u1", t0)
	if err := st.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := raw(t, path).Exec(`INSERT INTO sessions
		(id, secret_hash, user_id, created_at, last_seen_at, expires_at, absolute_expires_at, ip, user_agent)
		WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 12000)
		SELECT 'x' || i, randomblob(32), 'u2', 0, 0, ?1, ?1, '', '' FROM c`, t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if n, err := st.DeleteExpired(ctx); err != nil || n != 12000 {
		t.Errorf("DeleteExpired = %d, %v; want 12000", n, err)
	}
	if _, err := st.Session(ctx, live.SecretHash); err != nil {
		t.Errorf("live session after DeleteExpired: %v", err)
	}
}

func TestEventLimits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	st := open(t, path)
	const n = sesame.MaxEventLimit + 5
	if _, err := raw(t, path).Exec(`INSERT INTO audit_events (time, type, user_id, ip, user_agent, session_id)
		WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < ?1)
		SELECT i, 'login.failed', 'u' || (i % 2), '', '', '' FROM c`, n); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    sesame.EventQuery
		want int
	}{
		{sesame.EventQuery{}, sesame.DefaultEventLimit},
		{sesame.EventQuery{Limit: -1}, sesame.DefaultEventLimit},
		{sesame.EventQuery{Limit: 3}, 3},
		{sesame.EventQuery{Limit: n}, sesame.MaxEventLimit},
		{sesame.EventQuery{UserID: "u1", Limit: 4}, 4},
		{sesame.EventQuery{UserID: "nobody"}, 0},
	} {
		evs, err := st.Events(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != c.want {
			t.Errorf("Events(%+v): %d events, want %d", c.q, len(evs), c.want)
			continue
		}
		for i, e := range evs {
			if c.q.UserID != "" && e.UserID != c.q.UserID {
				t.Errorf("Events(%+v): event of user %q", c.q, e.UserID)
			}
			if i > 0 && !e.Time.Before(evs[i-1].Time) {
				t.Errorf("Events(%+v): not newest first at %d", c.q, i)
				break
			}
		}
	}
}

// TestLocked holds the write lock from another connection, as a long
// transaction in another process would: reads go on, and a write gives up
// after the busy timeout with an error matching ErrUnavailable.
func TestLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the five-second busy timeout")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sesame.db")
	st := open(t, path)
	s := newSession("u1", time.Now())
	if err := st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	conn, err := raw(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)

	if _, err := st.Session(ctx, s.SecretHash); err != nil {
		t.Errorf("Session while another connection holds the write lock: %v", err)
	}
	start := time.Now()
	err = st.DeleteSession(ctx, s.UserID, s.ID)
	if !errors.Is(err, sesame.ErrUnavailable) {
		t.Errorf("DeleteSession while another connection holds the write lock = %v, want ErrUnavailable", err)
	}
	if waited := time.Since(start); waited < 4*time.Second {
		t.Errorf("DeleteSession gave up after %v, want the busy timeout", waited)
	}
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "sesame.db"))
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
}

// LogVersion changes when another process (another Store on the file)
// commits, and stays put while nobody writes: what lets a verifier skip
// reading the revocation log.
func TestLogVersionSeesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	a, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v1, err := a.LogVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := a.LogVersion(ctx); v != v1 {
		t.Fatalf("version moved with no write: %d -> %d", v1, v)
	}
	_, h := sesame.NewSecret()
	now := time.Now()
	s := sesame.Session{ID: sesame.NewID(), SecretHash: h, UserID: "u", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
	if err := b.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteSession(ctx, s.UserID, s.ID); err != nil {
		t.Fatal(err)
	}
	v2, _ := a.LogVersion(ctx)
	if v2 == v1 {
		t.Fatal("version unchanged after another store committed a revocation")
	}
	// And a's own writes (its writer connection) count too.
	s.ID = sesame.NewID()
	if err := a.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if v3, _ := a.LogVersion(ctx); v3 == v2 {
		t.Fatal("version unchanged after the store's own writer committed")
	}
}
