package main

// End-to-end tests of several "sesame serve" processes on one PostgreSQL
// and one Redis, and of a Redis outage, against docs/API.md ("Nodes that
// behave as one" and "When a store is down"). Every server is the real one,
// started through run on 127.0.0.1:0; the servers, requests and accounts
// are those of e2e_helpers_test.go, the grants and revocations those of
// e2e_tokens_test.go. Every identifier here starts with mn so that it
// cannot collide with the other tests of package main.
//
// PostgreSQL: SESAME_TEST_POSTGRES, default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; each test
// creates a database of its own and drops it at the end. Redis: each test
// starts a private redis-server on a free loopback port. Without either the
// tests skip, or fail when CI is set.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const mnDefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// mnIssuer is the issuer (and so audience) every node of a cluster shares.
const mnIssuer = "http://sesame-mn.test"

// mnUnavailable skips the test, or fails it when CI is set.
func mnUnavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func mnHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mnPostgres creates a fresh database, drops it (WITH (FORCE)) at cleanup,
// and returns its URL.
func mnPostgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("SESAME_TEST_POSTGRES")
	if admin == "" {
		admin = mnDefaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		mnUnavailable(t, "SESAME_TEST_POSTGRES %q: %v", admin, err)
	}
	cfg.ConnectTimeout = 3 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		mnUnavailable(t, "PostgreSQL unreachable (set SESAME_TEST_POSTGRES, default %s): %v", mnDefaultPostgres, err)
	}
	defer conn.Close(context.Background())
	name := "sesame_mn_" + mnHex(8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		mnUnavailable(t, "PostgreSQL at %s: cannot create a database: %v", admin, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("SESAME_TEST_POSTGRES must be a postgres:// URL here, got %q", admin)
	}
	u.Path = "/" + name
	return u.String()
}

// mnRedis is a private redis-server, without persistence.
type mnRedis struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func mnFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mnStartRedis starts a redis-server on a free loopback port and kills it
// at cleanup.
func mnStartRedis(t testing.TB) *mnRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		mnUnavailable(t, "redis-server is not installed: %v", err)
	}
	r := &mnRedis{port: mnFreePort(t), dir: t.TempDir()}
	r.start(t)
	t.Cleanup(r.kill)
	return r
}

func (r *mnRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *mnRedis) url() string  { return "redis://" + r.addr() + "/0" }

func (r *mnRedis) start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr(), time.Second)
		if err == nil {
			// Wait for it to answer, not only to accept.
			c.SetDeadline(time.Now().Add(time.Second))
			_, werr := c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, rerr := c.Read(buf)
			c.Close()
			if werr == nil && rerr == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return
			}
		}
		if time.Now().After(deadline) {
			r.kill()
			t.Fatalf("redis-server on %s did not start: %v", r.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL and waits for it.
func (r *mnRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// mnMasterEnv returns a getenv with a fresh SESAME_MASTER_KEY and nothing
// else.
func mnMasterEnv() func(string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return e2eEnv(map[string]string{"SESAME_MASTER_KEY": base64.StdEncoding.EncodeToString(b)})
}

// wantCookieGone checks that a cookie whose session another node ended
// is refused on s within a second: the bound for a cookie
// revoked on one node to be refused on every other. (A Redis node hears of
// the end from Redis's cache invalidation message, typically well under a
// millisecond later, so the very first request is nearly always refused
// already; the lab's revoke-latency -kind cookie measures it. Tokens go
// through the revocation feed, within the same bound: see wantAccessGone.)
func (s *e2eServer) wantCookieGone(t testing.TB, cookie, what string) {
	t.Helper()
	start := time.Now()
	for try := 1; ; try++ {
		r := s.getSession(t, cookie)
		switch {
		case r.status == http.StatusUnauthorized:
			if try > 1 {
				t.Logf("%s%s: refused after %v (%d requests)", s.label(), what, time.Since(start).Round(time.Microsecond), try)
			}
			return
		case r.status != http.StatusOK:
			t.Fatalf("%s%s: GET /v1/session = %d, want 401 (or 200 for under a second); body %s", s.label(), what, r.status, r.body)
		case time.Since(start) > time.Second:
			t.Fatalf("%s%s: still 200 %v after the session ended elsewhere", s.label(), what, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}
}

// waitStatus polls path on s until it answers want, for at most within;
// it returns how long that took, or fails.
func (s *e2eServer) waitStatus(t testing.TB, path string, want int, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	var last e2eResp
	for {
		last = s.do(t, "GET", path, nil)
		if last.status == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s%s: GET %s still %d after %v, want %d; body %s", s.label(), what, path, last.status, within, want, last.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMultiNode: three servers on one PostgreSQL and one Redis behave as one:
// a login, a token, every kind of revocation and a key rotation made on one
// node hold on every node (within a second: see wantCookieGone and
// wantAccessGone); login throttling counts across nodes.
func TestMultiNode(t *testing.T) {
	t.Parallel()
	pg := mnPostgres(t)
	rd := mnStartRedis(t)
	env := mnMasterEnv()
	stores := []string{"--db", pg, "--session-store", rd.url(), "--issuer", mnIssuer}
	a := e2eStartNode(t, "A", "", env, stores...)
	b := e2eStartNode(t, "B", "", env, stores...)
	c := e2eStartNode(t, "C", "", env, stores...)
	nodes := []*e2eServer{a, b, c}
	if a.kid != b.kid || b.kid != c.kid {
		t.Errorf("nodes started one after the other on one database sign with different keys: A %s, B %s, C %s", a.kid, b.kid, c.kid)
	}
	// Tries of each timing-sensitive check.
	const tries = 2

	t.Run("register on A, cookie login on B, works on C", func(t *testing.T) {
		email := e2eEmail("mn-login")
		a.register(t, email, e2ePassword)
		cookie := b.login(t, email, e2ePassword).cookie
		c.getSession(t, cookie).wantFor(t, "cookie from a login on B", http.StatusOK)
		a.getSession(t, cookie).wantFor(t, "cookie from a login on B", http.StatusOK)
		r := c.do(t, "GET", "/v1/userinfo", nil, e2eCookie(cookie))
		r.wantFor(t, "node C: /v1/userinfo with a cookie from B", http.StatusOK)
	})

	t.Run("bearer token from A works on B and C", func(t *testing.T) {
		email := e2eEmail("mn-bearer")
		a.register(t, email, e2ePassword)
		g := a.grant(t, email, e2ePassword)
		b.wantAccessAlive(t, g.access, "A's token")
		c.wantAccessAlive(t, g.access, "A's token")
		g2 := b.mustRefresh(t, g.refresh, "A's refresh token on B")
		c.wantAccessAlive(t, g2.access, "B's refreshed token")
		a.wantAccessAlive(t, g2.access, "B's refreshed token")
	})

	t.Run("logout on B ends the session on A and C", func(t *testing.T) {
		email := e2eEmail("mn-logout")
		a.register(t, email, e2ePassword)
		for i := range tries {
			cookie := a.login(t, email, e2ePassword).cookie
			// Each node has just seen the session alive (a warm cache).
			for _, n := range nodes {
				n.getSession(t, cookie).wantFor(t, "cookie before the logout", http.StatusOK)
			}
			b.do(t, "DELETE", "/v1/session", nil, e2eCookie(cookie)).wantFor(t, "logout on B", http.StatusNoContent)
			a.wantCookieGone(t, cookie, fmt.Sprintf("try %d: cookie after a logout on B", i+1))
			c.wantCookieGone(t, cookie, fmt.Sprintf("try %d: cookie after a logout on B", i+1))
			b.getSession(t, cookie).wantFor(t, fmt.Sprintf("try %d: cookie on the very next request after a logout on the same node", i+1), http.StatusUnauthorized)
			r := c.do(t, "GET", "/v1/userinfo", nil, e2eCookie(cookie))
			r.wantFor(t, "node C: /v1/userinfo with the logged-out cookie", http.StatusUnauthorized)
		}
	})

	t.Run("token revoke on C ends the family on A and B", func(t *testing.T) {
		email := e2eEmail("mn-revoke")
		a.register(t, email, e2ePassword)
		for i := range tries {
			for _, which := range []string{"access", "refresh"} {
				g := a.grant(t, email, e2ePassword)
				a.wantAccessAlive(t, g.access, "before the revocation")
				b.wantAccessAlive(t, g.access, "before the revocation")
				tok := g.access
				if which == "refresh" {
					tok = g.refresh
				}
				c.revoke(t, tok, "revoke "+which+" token")
				what := fmt.Sprintf("try %d: next request after the %s token was revoked on C", i+1, which)
				c.wantAccessDead(t, g.access, what)
				a.wantAccessGone(t, g.access, what)
				b.wantAccessGone(t, g.access, what)
				b.wantRefreshDead(t, g.refresh, "node B: "+what)
			}
		}
	})

	t.Run("refresh reuse on A ends the family on B and C", func(t *testing.T) {
		email := e2eEmail("mn-reuse")
		a.register(t, email, e2ePassword)
		for i := range tries {
			g1 := a.grant(t, email, e2ePassword)
			g2 := a.mustRefresh(t, g1.refresh, "refresh on A")
			b.wantAccessAlive(t, g2.access, "newest token before the replay")
			c.wantAccessAlive(t, g2.access, "newest token before the replay")
			a.refresh(t, g1.refresh).wantFor(t, "replay on A", http.StatusBadRequest, "invalid_grant")
			what := fmt.Sprintf("try %d: newest access token right after a replay detected on A", i+1)
			a.wantAccessDead(t, g2.access, what)
			b.wantAccessGone(t, g2.access, what)
			c.wantAccessGone(t, g2.access, what)
			c.wantRefreshDead(t, g2.refresh, "node C: newest refresh token after a replay on A")
		}
	})

	t.Run("password change on B ends sessions and families on A and C", func(t *testing.T) {
		email := e2eEmail("mn-password")
		a.register(t, email, e2ePassword)
		cookieA := a.login(t, email, e2ePassword).cookie
		cookieC := c.login(t, email, e2ePassword).cookie
		cookieB := b.login(t, email, e2ePassword).cookie
		gA := a.grant(t, email, e2ePassword)
		gC := c.grant(t, email, e2ePassword)
		for _, n := range nodes {
			n.getSession(t, cookieA).wantFor(t, "A's cookie before the change", http.StatusOK)
			n.getSession(t, cookieC).wantFor(t, "C's cookie before the change", http.StatusOK)
			n.wantAccessAlive(t, gA.access, "A's token before the change")
			n.wantAccessAlive(t, gC.access, "C's token before the change")
		}
		const newPassword = "mn a brand new password"
		r := b.do(t, "POST", "/v1/password", map[string]string{"current_password": e2ePassword, "new_password": newPassword}, e2eCookie(cookieB))
		if !r.wantFor(t, "password change on B", http.StatusNoContent) {
			t.FailNow()
		}
		b.getSession(t, cookieA).wantFor(t, "A's cookie on the very next request after a password change on the same node", http.StatusUnauthorized)
		for _, n := range []*e2eServer{a, c} {
			n.wantCookieGone(t, cookieA, "A's cookie after a password change on B")
			n.wantCookieGone(t, cookieC, "C's cookie after a password change on B")
			n.wantAccessGone(t, gA.access, "A's token after a password change on B")
			n.wantAccessGone(t, gC.access, "C's token after a password change on B")
		}
		a.wantRefreshDead(t, gC.refresh, "node A: C's refresh token after a password change on B")
		c.wantRefreshDead(t, gA.refresh, "node C: A's refresh token after a password change on B")
		// "Every other session": the caller's own goes on, everywhere.
		a.getSession(t, cookieB).wantFor(t, "the changing session's own cookie", http.StatusOK)
		// The new password works on another node, the old one does not.
		c.grant(t, email, newPassword)
		a.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {e2ePassword}}.Encode()).wantFor(t, "node A: old password after the change on B", http.StatusBadRequest, "invalid_grant")
	})

	t.Run("admin revoke on A ends sessions and families on B and C", func(t *testing.T) {
		adminEmail := e2eEmail("mn-admin")
		e2eMustCLI(t, env, e2ePassword+"\n", "user", "add", "--email", adminEmail, "--role", "admin", "--password-stdin",
			"--data-dir", t.TempDir(), "--db", pg, "--session-store", rd.url())
		adminAT := a.grant(t, adminEmail, e2ePassword).access
		email := e2eEmail("mn-admin-target")
		uid := a.register(t, email, e2ePassword)
		for i := range tries {
			cookie := b.login(t, email, e2ePassword).cookie
			g := c.grant(t, email, e2ePassword)
			for _, n := range nodes {
				n.getSession(t, cookie).wantFor(t, "cookie before the admin acts", http.StatusOK)
				n.wantAccessAlive(t, g.access, "token before the admin acts")
			}
			a.do(t, "DELETE", "/v1/admin/users/"+uid+"/sessions", nil, e2eBearer(adminAT)).wantFor(t, "admin revoke on A", http.StatusNoContent)
			what := fmt.Sprintf("try %d: right after an admin ended the user's sessions on A", i+1)
			a.getSession(t, cookie).wantFor(t, "cookie on the node where the admin acted, "+what, http.StatusUnauthorized)
			for _, n := range []*e2eServer{b, c} {
				n.wantCookieGone(t, cookie, "cookie "+what)
				n.wantAccessGone(t, g.access, "token "+what)
			}
			b.wantRefreshDead(t, g.refresh, "node B: refresh token "+what)
		}
	})

	t.Run("keys rotate reaches every node", func(t *testing.T) {
		email := e2eEmail("mn-rotate")
		a.register(t, email, e2ePassword)
		oldKid := a.kid
		rts := map[*e2eServer]string{}
		var oldTokens []string
		for _, n := range nodes {
			g := n.grant(t, email, e2ePassword)
			if k := tokParse(t, g.access).header["kid"]; k != oldKid {
				t.Errorf("node %s signs with kid %v before the rotation, want %s", n.name, k, oldKid)
			}
			rts[n] = g.refresh
			oldTokens = append(oldTokens, g.access)
		}
		out := e2eMustCLI(t, env, "", "keys", "rotate", "--data-dir", t.TempDir(), "--db", pg, "--session-store", rd.url())
		rotated := time.Now()
		t.Logf("sesame keys rotate: %s", strings.TrimSpace(out))
		var newTokens []string
		newKids := map[string]bool{}
		pending := map[*e2eServer]bool{a: true, b: true, c: true}
		for len(pending) > 0 {
			for _, n := range nodes {
				if !pending[n] {
					continue
				}
				g := n.mustRefresh(t, rts[n], "node "+n.name+": refresh while waiting for the new key")
				rts[n] = g.refresh
				j := tokParse(t, g.access)
				kid, _ := j.header["kid"].(string)
				if kid == oldKid {
					oldTokens = append(oldTokens, g.access)
					continue
				}
				delete(pending, n)
				newKids[kid] = true
				newTokens = append(newTokens, g.access)
				t.Logf("node %s signs with %s after %v", n.name, kid, time.Since(rotated).Round(time.Millisecond))
				if !strings.Contains(out, kid) {
					t.Errorf("node %s signs with kid %s, not the one sesame keys rotate reported: %q", n.name, kid, out)
				}
			}
			if len(pending) == 0 {
				break
			}
			if time.Since(rotated) > 10*time.Second {
				var names []string
				for _, n := range nodes {
					if pending[n] {
						names = append(names, n.name)
					}
				}
				t.Fatalf("10 s after sesame keys rotate, node(s) %v still sign with the old kid %s", names, oldKid)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(newKids) != 1 {
			t.Errorf("after the rotation the nodes sign with %d different new kids %v, want one", len(newKids), newKids)
		}
		for _, n := range nodes {
			_, keys := n.jwks(t)
			published := map[string]bool{}
			for _, k := range keys {
				published[fmt.Sprint(k["kid"])] = true
			}
			if !published[oldKid] {
				t.Errorf("node %s: old kid %s is gone from the JWKS right after the rotation", n.name, oldKid)
			}
			for kid := range newKids {
				if !published[kid] {
					t.Errorf("node %s: new kid %s is not in the JWKS", n.name, kid)
				}
			}
			for i, at := range oldTokens {
				n.wantAccessAlive(t, at, fmt.Sprintf("old-key token %d after the rotation", i+1))
			}
			for i, at := range newTokens {
				n.wantAccessAlive(t, at, fmt.Sprintf("new-key token %d", i+1))
			}
		}
	})

	t.Run("login throttling counts across nodes", func(t *testing.T) {
		email := e2eEmail("mn-throttle")
		a.register(t, email, e2ePassword)
		for i := 1; i <= 10; i++ {
			n := nodes[(i-1)%len(nodes)]
			r := n.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "mn wrong password " + strconv.Itoa(i)})
			switch r.status {
			case http.StatusTooManyRequests:
				if ra := r.header.Get("Retry-After"); ra == "" {
					t.Errorf("node %s: 429 without Retry-After", n.name)
				}
				if len(r.cookies()) > 0 {
					t.Errorf("node %s: 429 sets a cookie", n.name)
				}
				t.Logf("429 on node %s at failure %d (spread over A, B, C)", n.name, i)
				// The right password is throttled too, on another node.
				m := nodes[i%len(nodes)]
				r2 := m.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword})
				r2.wantFor(t, "node "+m.name+": right password while throttled elsewhere", http.StatusTooManyRequests)
				return
			case http.StatusUnauthorized:
			default:
				t.Fatalf("node %s: failed login %d: status %d, want 401 or 429; body %s", n.name, i, r.status, r.body)
			}
		}
		t.Errorf("10 failed logins for one account spread over nodes A, B and C never got 429: throttling does not count across nodes")
	})
}

// TestRedisOutage: with sessions in a Redis that is killed, nothing is
// authenticated (503, never 200), /readyz is 503 and the process stays up;
// when Redis comes back empty, service resumes within seconds and every
// revocation made before the outage is still in force.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	pg := mnPostgres(t)
	rd := mnStartRedis(t)
	env := mnMasterEnv()
	stores := []string{"--db", pg, "--session-store", rd.url(), "--issuer", mnIssuer}
	s := e2eStartNode(t, "S", "", env, stores...)

	email := e2eEmail("mn-outage")
	s.register(t, email, e2ePassword)
	cookie := s.login(t, email, e2ePassword).cookie
	live := s.grant(t, email, e2ePassword)
	revoked := s.grant(t, email, e2ePassword)
	s.revoke(t, revoked.refresh, "revoke the second family's refresh token")
	s.wantAccessDead(t, revoked.access, "revoked family before the outage")
	s.wantAccessAlive(t, live.access, "live family before the outage")
	s.getSession(t, cookie).wantFor(t, "cookie before the outage", http.StatusOK)
	s.do(t, "GET", "/readyz", nil).wantFor(t, "/readyz before the outage", http.StatusOK)

	// Tokens count whole seconds, and so does the store's epoch (see
	// redisstore.Epoch): a node that starts after a data loss refuses every
	// token issued in a second before it. Let that second pass.
	time.Sleep(1100 * time.Millisecond)
	rd.kill()
	killed := time.Now()
	t.Logf("redis-server killed")

	t.Run("during the outage", func(t *testing.T) {
		timed := func(what string, f func() e2eResp) e2eResp {
			t.Helper()
			start := time.Now()
			r := f()
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%s took %v during the outage; want an answer within seconds", what, d.Round(time.Millisecond))
			}
			return r
		}
		r := timed("GET /v1/session", func() e2eResp { return s.getSession(t, cookie) })
		r.wantFor(t, "cookie during the outage", http.StatusServiceUnavailable, "unavailable")

		r = timed("GET /v1/userinfo (cookie)", func() e2eResp {
			return s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(cookie))
		})
		r.wantFor(t, "/v1/userinfo with a cookie during the outage", http.StatusServiceUnavailable, "unavailable")

		r = timed("POST /v1/session", func() e2eResp {
			return s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword})
		})
		r.wantFor(t, "cookie login during the outage", http.StatusServiceUnavailable, "unavailable")
		if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("cookie login during the outage sets cookies %q, want none", sc)
		}

		r = timed("POST /v1/token", func() e2eResp {
			return s.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {e2ePassword}}.Encode())
		})
		r.wantFor(t, "password grant during the outage", http.StatusServiceUnavailable, "unavailable")
		r = timed("POST /v1/token refresh", func() e2eResp { return s.refresh(t, live.refresh) })
		r.wantFor(t, "refresh grant during the outage", http.StatusServiceUnavailable, "unavailable")

		s.waitStatus(t, "/readyz", http.StatusServiceUnavailable, 5*time.Second, "readiness during the outage")
		s.do(t, "GET", "/healthz", nil).wantFor(t, "/healthz during the outage", http.StatusOK)

		// The revoked family: never 200.
		r = s.userinfo(t, revoked.access)
		if r.status != http.StatusUnauthorized && r.status != http.StatusServiceUnavailable {
			t.Errorf("revoked family's access token during the outage: %d, want 401 or 503; body %s", r.status, r.body)
		}
		// A live family whose revocation state cannot be read: 503. The
		// in-process set may answer while its last sync is a few seconds
		// old; after that, 503 and never 200.
		var first int
		for {
			r = s.userinfo(t, live.access)
			if first == 0 {
				first = r.status
				t.Logf("live family's access token right after the kill: %d", r.status)
			}
			if r.status == http.StatusServiceUnavailable {
				r.wantFor(t, "live family's access token during the outage", http.StatusServiceUnavailable, "unavailable")
				t.Logf("live family's access token gets 503 %v after the kill", time.Since(killed).Round(time.Millisecond))
				break
			}
			if r.status == http.StatusUnauthorized {
				t.Errorf("live family's access token during the outage: 401 (the client is told to sign in again), want 503 unavailable")
				break
			}
			if time.Since(killed) > 10*time.Second {
				t.Errorf("live family's access token still gets %d %v after the session store died, want 503 unavailable (its revocation state cannot be read)", r.status, time.Since(killed).Round(time.Millisecond))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Revoking while the store is down does not crash anything and
		// never pretends to have worked by letting the token through.
		s.form(t, "/v1/token/revoke", url.Values{"token": {live.refresh}}.Encode())
		r = s.do(t, "DELETE", "/v1/session", nil, e2eCookie(cookie))
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("logout during the outage: %d, want 503; body %s", r.status, r.body)
		}

		if gone, err := s.exited(); gone {
			t.Fatalf("the server exited during the outage: %v\n%s", err, s.log)
		}
		s.do(t, "GET", "/healthz", nil).wantFor(t, "/healthz after the outage requests", http.StatusOK)
	})

	rd.start(t) // same port, empty: no persistence
	back := time.Now()
	t.Logf("redis-server restarted, empty, %v after the kill", back.Sub(killed).Round(time.Millisecond))

	t.Run("after the store returns empty", func(t *testing.T) {
		d := s.waitStatus(t, "/readyz", http.StatusOK, 10*time.Second, "readiness after the store's return")
		t.Logf("/readyz 200 %v after the store's return", d.Round(time.Millisecond))

		// Service resumes by itself within seconds: a fresh login works.
		var fresh string
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword})
			if r.status == http.StatusCreated {
				for _, c := range r.cookies() {
					if c.Name == e2eCookieName {
						fresh = c.Value
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cookie login 10 s after the store's return: %d; body %s", r.status, r.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
		s.getSession(t, fresh).wantFor(t, "fresh cookie after the store's return", http.StatusOK)

		s.wantAccessDead(t, revoked.access, "revoked family's access token after the store came back empty")
		s.wantRefreshDead(t, revoked.refresh, "node S: revoked family's refresh token after the store came back empty")
		s.getSession(t, cookie).wantFor(t, "pre-outage cookie whose session the store lost", http.StatusUnauthorized)

		g := s.grant(t, email, e2ePassword)
		s.wantAccessAlive(t, g.access, "fresh token after the store's return")
		// A revocation made after the return is in force too.
		s.revoke(t, g.refresh, "revoke a fresh family")
		s.wantAccessDead(t, g.access, "fresh family revoked after the store's return")

		// The family that was live lost its record with the data: its
		// refresh token is unknown, and its access token was issued before
		// the store's new epoch, so both are refused (OPERATIONS.md: losing
		// Redis signs everyone out).
		s.wantRefreshDead(t, live.refresh, "pre-outage live family's refresh token after the data loss")
		s.wantAccessDead(t, live.access, "pre-outage live family's access token after the data loss")
	})

	// A node that starts after the data loss has nothing in memory: the
	// revocations made before the outage must still be in force there too.
	t.Run("node started after the data loss", func(t *testing.T) {
		n := e2eStartNode(t, "S2", "", env, stores...)
		n.wantAccessDead(t, revoked.access, "family revoked before the outage, on a node started after the store lost its data")
		n.getSession(t, cookie).wantFor(t, "pre-outage cookie on a node started after the data loss", http.StatusUnauthorized)
	})
}
