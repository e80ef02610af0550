package main

// End-to-end test of a PostgreSQL connection outage against docs/API.md
// ("When a store is down"). The shared PostgreSQL server keeps running for
// the other tests: the nodes reach it through a loopback TCP proxy of this
// file, and the outage is the proxy cutting every connection and refusing
// new ones, as when the database host drops off the network. The helpers
// are those of e2e_multinode_test.go and e2e_tokens_test.go; every
// identifier here starts with pgo so that it cannot collide with the other
// tests of package main.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// pgoProxy forwards TCP connections from a fixed loopback address to
// PostgreSQL. cut closes its listener and both ends of every forwarded
// connection, so new connections are refused; restore listens on the same
// address again.
type pgoProxy struct {
	target string // PostgreSQL's host:port
	addr   string // 127.0.0.1:port, the same across cuts

	mu        sync.Mutex
	ln        net.Listener // nil while cut
	gen       int          // incremented by every cut
	conns     map[net.Conn]bool
	forwarded int // connections forwarded so far
	wg        sync.WaitGroup
}

// pgoStartProxy puts a proxy in front of the server of pgURL and returns it
// with pgURL rewritten to go through it. At cleanup it cuts everything and
// waits for its goroutines.
func pgoStartProxy(t testing.TB, pgURL string) (*pgoProxy, string) {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("the PostgreSQL URL %q names no host:port to put a proxy in front of", redact(pgURL))
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgoProxy{target: net.JoinHostPort(u.Hostname(), port), addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	u.Host = p.addr
	return p, u.String()
}

func (p *pgoProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	gen := p.gen
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by cut
			}
			p.wg.Add(1)
			go p.forward(c, gen)
		}
	}()
}

// forward copies both ways between c and a new connection to PostgreSQL
// until either side ends or a cut closes both.
func (p *pgoProxy) forward(c net.Conn, gen int) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.gen != gen { // cut while dialing: this connection belongs to the outage
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.forwarded++
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes the listener and every forwarded connection.
func (p *pgoProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens on the same address again.
func (p *pgoProxy) restore(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *pgoProxy) count() (forwarded, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwarded, len(p.conns) / 2
}

// pgoWantRefused fails unless r refuses a credential: 401 (unauthenticated
// or invalid_token) or 503 unavailable. It returns the status.
func pgoWantRefused(t testing.TB, r e2eResp, what string) int {
	t.Helper()
	switch code := r.errorCode(); {
	case r.status == http.StatusUnauthorized && (code == "unauthenticated" || code == "invalid_token"):
	case r.status == http.StatusServiceUnavailable && code == "unavailable":
	default:
		t.Errorf("%s: %s: %d %q, want 401 or 503 unavailable (never a success); body %s", what, r.req, r.status, code, r.body)
	}
	return r.status
}

// pgoWantRefreshRefused fails unless r refuses a refresh token: 400
// invalid_grant or 503 unavailable.
func pgoWantRefreshRefused(t testing.TB, r e2eResp, what string) {
	t.Helper()
	switch code := r.errorCode(); {
	case r.status == http.StatusBadRequest && code == "invalid_grant":
	case r.status == http.StatusServiceUnavailable && code == "unavailable":
	default:
		t.Errorf("%s: %s: %d %q, want 400 invalid_grant or 503 unavailable (never new tokens); body %s", what, r.req, r.status, code, r.body)
	}
}

// TestPostgresOutage: with every store (users, keys, audit, sessions,
// refresh families, the revocation log, the login throttle) in a
// PostgreSQL that the nodes lose the connection to, nothing is
// authenticated (503, never 200), /readyz is 503, /healthz is 200 and the
// processes stay up; when the connection comes back, service resumes by
// itself within seconds and every revocation made before the outage is in
// force, on the nodes that lived through it and on one started after.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	pg := mnPostgres(t)
	proxy, proxied := pgoStartProxy(t, pg)
	env := mnMasterEnv()
	// The same URL for both flags: one pgstore.Store holds everything,
	// and all of it goes through the proxy.
	stores := []string{"--db", proxied, "--session-store", proxied, "--issuer", mnIssuer}
	a := e2eStartNode(t, "A", "", env, stores...)
	b := e2eStartNode(t, "B", "", env, stores...)
	nodes := []*e2eServer{a, b}

	email := e2eEmail("pgo")
	a.register(t, email, e2ePassword)
	cookie := a.login(t, email, e2ePassword).cookie
	live := a.grant(t, email, e2ePassword)
	// Logged out, or revoked, during the outage: that must fail, and work
	// once the store is back.
	doomedCookie := b.login(t, email, e2ePassword).cookie
	doomed := b.grant(t, email, e2ePassword)

	// Every kind of revocation, before the outage.
	loggedOut := a.login(t, email, e2ePassword).cookie
	a.do(t, "DELETE", "/v1/session", nil, e2eCookie(loggedOut)).wantFor(t, "logout on A", http.StatusNoContent)
	lendedID := b.login(t, email, e2ePassword)
	endedByID, endedID := lendedID.cookie, lendedID.sessionID
	a.do(t, "DELETE", "/v1/sessions/"+endedID, nil, e2eCookie(cookie)).wantFor(t, "ending a session by its id on A", http.StatusNoContent)
	byAccess := a.grant(t, email, e2ePassword)
	a.revoke(t, byAccess.access, "a family by its access token")
	byRefresh := b.grant(t, email, e2ePassword)
	b.revoke(t, byRefresh.refresh, "a family by its refresh token")
	reuse1 := a.grant(t, email, e2ePassword)
	reuse2 := a.mustRefresh(t, reuse1.refresh, "refresh on A")
	a.refresh(t, reuse1.refresh).wantFor(t, "replay of a retired refresh token on A", http.StatusBadRequest, "invalid_grant")
	// Ended by another process: the nodes learn of it only from the log.
	email2 := e2eEmail("pgo-cli")
	b.register(t, email2, e2ePassword)
	cliCookie := b.login(t, email2, e2ePassword).cookie
	cliFamily := b.grant(t, email2, e2ePassword)
	e2eMustCLI(t, env, "", "sessions", "revoke", "--email", email2, "--data-dir", t.TempDir(), "--db", pg, "--session-store", pg)

	type cred struct{ what, tok string }
	revokedCookies := []cred{
		{"logged-out cookie", loggedOut},
		{"cookie ended by its id", endedByID},
		{"cookie ended by sesame sessions revoke", cliCookie},
	}
	revokedAccess := []cred{
		{"access token of a family revoked by its access token", byAccess.access},
		{"access token of a family revoked by its refresh token", byRefresh.access},
		{"first access token of a family ended by a replay", reuse1.access},
		{"newest access token of a family ended by a replay", reuse2.access},
		{"access token of a family ended by sesame sessions revoke", cliFamily.access},
	}
	revokedRefresh := []cred{
		{"refresh token of a family revoked by its access token", byAccess.refresh},
		{"revoked refresh token", byRefresh.refresh},
		{"replayed refresh token", reuse1.refresh},
		{"newest refresh token of a family ended by a replay", reuse2.refresh},
		{"refresh token of a family ended by sesame sessions revoke", cliFamily.refresh},
	}
	wantRevoked := func(t *testing.T, n *e2eServer, when string) {
		t.Helper()
		// Ended on either node or by the CLI: refused within the
		// revocation feed's bound, then for good.
		for _, c := range revokedCookies {
			n.wantCookieGone(t, c.tok, c.what+" "+when)
		}
		for _, c := range revokedAccess {
			n.wantAccessGone(t, c.tok, c.what+" "+when)
		}
		for _, c := range revokedRefresh {
			n.wantRefreshDead(t, c.tok, "node "+n.name+": "+c.what+" "+when)
		}
	}

	for _, n := range nodes {
		wantRevoked(t, n, "before the outage")
		n.getSession(t, cookie).wantFor(t, "live cookie before the outage", http.StatusOK)
		n.getSession(t, doomedCookie).wantFor(t, "second live cookie before the outage", http.StatusOK)
		n.wantAccessAlive(t, live.access, "live family before the outage")
		n.wantAccessAlive(t, doomed.access, "second live family before the outage")
		n.do(t, "GET", "/readyz", nil).wantFor(t, "node "+n.name+": /readyz before the outage", http.StatusOK)
	}
	if t.Failed() {
		t.FailNow()
	}
	if fwd, open := proxy.count(); fwd == 0 || open == 0 {
		t.Fatalf("the proxy forwarded %d connections (%d open): the nodes do not reach PostgreSQL through it", fwd, open)
	}

	proxy.cut()
	cut := time.Now()
	fwd, _ := proxy.count()
	t.Logf("connection to PostgreSQL cut (the proxy had forwarded %d connections)", fwd)
	if c, err := net.DialTimeout("tcp", proxy.addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("the cut proxy still accepts connections on %s", proxy.addr)
	}

	// Every request below must be answered within seconds: a store that
	// does not answer is not waited for.
	const quick = 5 * time.Second
	timed := func(t *testing.T, n *e2eServer, what string, f func() e2eResp) e2eResp {
		t.Helper()
		start := time.Now()
		r := f()
		if d := time.Since(start); d > quick {
			t.Errorf("node %s: %s took %v during the outage; want an answer within %v", n.name, what, d.Round(time.Millisecond), quick)
		}
		return r
	}
	// during checks what the contract requires of node n while the store
	// cannot be reached.
	during := func(t *testing.T, n *e2eServer, when string) {
		t.Helper()
		what := func(s string) string { return fmt.Sprintf("node %s: %s %s", n.name, s, when) }

		r := timed(t, n, "GET /readyz", func() e2eResp { return n.do(t, "GET", "/readyz", nil) })
		r.wantFor(t, what("/readyz"), http.StatusServiceUnavailable, "unavailable")
		n.do(t, "GET", "/healthz", nil).wantFor(t, what("/healthz"), http.StatusOK)

		// A live credential: the node answers from memory (its revocation
		// set, its session cache) only while its revocation feed is
		// within its bound of the store; past it, 503, never 200. API.md:
		// "a node that cannot be sure it has heard of every revocation
		// older than a second answers 503".
		mayAnswer := func(what string, f func() e2eResp) {
			t.Helper()
			start := time.Now()
			r := timed(t, n, what, f)
			if r.status == http.StatusOK && start.Sub(cut) < revocationLag {
				return
			}
			r.wantFor(t, what, http.StatusServiceUnavailable, "unavailable")
		}
		mayAnswer(what("live cookie"), func() e2eResp { return n.getSession(t, cookie) })
		mayAnswer(what("/v1/userinfo with the live cookie"), func() e2eResp {
			return n.do(t, "GET", "/v1/userinfo", nil, e2eCookie(cookie))
		})
		r = timed(t, n, "GET /v1/sessions (cookie)", func() e2eResp {
			return n.do(t, "GET", "/v1/sessions", nil, e2eCookie(cookie))
		})
		r.wantFor(t, what("/v1/sessions with the live cookie"), http.StatusServiceUnavailable, "unavailable")
		for _, c := range revokedCookies {
			pgoWantRefused(t, timed(t, n, "GET /v1/session", func() e2eResp { return n.getSession(t, c.tok) }), what(c.what))
		}

		// A live access token. Its signature is checked locally, but
		// whether its session has ended is the revocation state, which
		// the node holds in memory, fed from PostgreSQL: within the
		// feed's bound after the cut it may still answer; past it, 503.
		mayAnswer(what("live family's access token"), func() e2eResp { return n.userinfo(t, live.access) })
		r = timed(t, n, "GET /v1/sessions (bearer)", func() e2eResp {
			return n.do(t, "GET", "/v1/sessions", nil, e2eBearer(live.access))
		})
		r.wantFor(t, what("/v1/sessions with the live family's access token"), http.StatusServiceUnavailable, "unavailable")
		// A revoked one: never 200. The node may still refuse it with
		// 401 from its in-process set (it is known ended, whatever the
		// store would say), or answer 503.
		for i, c := range revokedAccess {
			st := pgoWantRefused(t, timed(t, n, "GET /v1/userinfo (bearer)", func() e2eResp { return n.userinfo(t, c.tok) }), what(c.what))
			if i == 0 {
				t.Logf("node %s: revoked access token %s: %d", n.name, when, st)
			}
		}

		// Logins and grants: the user, the throttle and the session or
		// family cannot be read or written.
		r = timed(t, n, "POST /v1/session", func() e2eResp {
			return n.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword})
		})
		r.wantFor(t, what("cookie login"), http.StatusServiceUnavailable, "unavailable")
		if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("%s: sets cookies %q, want none", what("cookie login"), sc)
		}
		r = timed(t, n, "POST /v1/token password", func() e2eResp {
			return n.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {e2ePassword}}.Encode())
		})
		r.wantFor(t, what("password grant"), http.StatusServiceUnavailable, "unavailable")
		r = timed(t, n, "POST /v1/token refresh", func() e2eResp { return n.refresh(t, live.refresh) })
		r.wantFor(t, what("refresh grant with the live family"), http.StatusServiceUnavailable, "unavailable")
		for _, c := range revokedRefresh {
			pgoWantRefreshRefused(t, timed(t, n, "POST /v1/token refresh", func() e2eResp { return n.refresh(t, c.tok) }), what(c.what))
		}
		r = timed(t, n, "POST /v1/users", func() e2eResp {
			return n.do(t, "POST", "/v1/users", map[string]string{"email": e2eEmail("pgo-outage"), "password": e2ePassword})
		})
		r.wantFor(t, what("registration"), http.StatusServiceUnavailable, "unavailable")

		if gone, err := n.exited(); gone {
			t.Fatalf("node %s exited during the outage: %v", n.name, err)
		}
	}

	t.Run("during the outage", func(t *testing.T) {
		for _, n := range nodes {
			during(t, n, "right after the cut")
		}
		// Outlast the revocation feed's bound: a node no longer vouches
		// for what it holds in memory.
		if d := revocationLag + 100*time.Millisecond - time.Since(cut); d > 0 {
			time.Sleep(d)
		}
		for _, n := range nodes {
			during(t, n, "past the revocation feed's bound")
		}
		// Ending a session or a family needs the store: the client must
		// hear that it did not happen (503), not 200 or 204.
		r := timed(t, b, "DELETE /v1/session", func() e2eResp {
			return b.do(t, "DELETE", "/v1/session", nil, e2eCookie(doomedCookie))
		})
		r.wantFor(t, "node B: logout during the outage", http.StatusServiceUnavailable, "unavailable")
		r = timed(t, b, "POST /v1/token/revoke", func() e2eResp {
			return b.form(t, "/v1/token/revoke", url.Values{"token": {doomed.refresh}}.Encode())
		})
		r.wantFor(t, "node B: revoking a refresh token during the outage", http.StatusServiceUnavailable, "unavailable")
		r = timed(t, a, "POST /v1/token/revoke", func() e2eResp {
			return a.form(t, "/v1/token/revoke", url.Values{"token": {doomed.access}}.Encode())
		})
		r.wantFor(t, "node A: revoking an access token during the outage", http.StatusServiceUnavailable, "unavailable")

		// Outlast the revocation set's staleness limit (5 s) and several
		// failed background syncs and key reloads: still closed.
		if d := 6*time.Second - time.Since(cut); d > 0 {
			time.Sleep(d)
		}
		for _, n := range nodes {
			during(t, n, fmt.Sprintf("%v after the cut", time.Since(cut).Round(time.Second)))
		}
	})

	proxy.restore(t)
	back := time.Now()
	t.Logf("connection to PostgreSQL restored %v after the cut", back.Sub(cut).Round(time.Millisecond))

	var refreshed tokGrant
	t.Run("after the connection returns", func(t *testing.T) {
		for _, n := range nodes {
			n.waitStatus(t, "/readyz", http.StatusOK, 5*time.Second, "readiness after the connection's return")
			t.Logf("node %s: /readyz 200 %v after the connection's return", n.name, time.Since(back).Round(time.Millisecond))
		}
		// Service resumes by itself: the live cookie works again.
		for _, n := range nodes {
			for {
				r := n.getSession(t, cookie)
				if r.status == http.StatusOK {
					t.Logf("node %s: live cookie 200 %v after the connection's return", n.name, time.Since(back).Round(time.Millisecond))
					break
				}
				if time.Since(back) > 5*time.Second {
					t.Fatalf("node %s: live cookie still %d %v after the connection's return, want 200; body %s", n.name, r.status, time.Since(back).Round(time.Millisecond), r.body)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		for _, n := range nodes {
			n.getSession(t, cookie).wantFor(t, "live cookie after the outage", http.StatusOK)
			n.wantAccessAlive(t, live.access, "live family after the outage")
			n.wantAccessAlive(t, doomed.access, "family whose revocation failed during the outage")
			n.getSession(t, doomedCookie).wantFor(t, "cookie whose logout failed during the outage", http.StatusOK)
			wantRevoked(t, n, "after the outage")
		}
		refreshed = a.mustRefresh(t, live.refresh, "node A: live family's refresh token after the outage")
		b.wantAccessAlive(t, refreshed.access, "live family refreshed after the outage")
		if kid := tokParse(t, refreshed.access).header["kid"]; kid != a.kid {
			t.Errorf("node A signs with kid %v after the outage, want %s as before", kid, a.kid)
		}

		// What failed during the outage works now, and holds everywhere.
		b.do(t, "DELETE", "/v1/session", nil, e2eCookie(doomedCookie)).wantFor(t, "node B: logout retried after the outage", http.StatusNoContent)
		a.revoke(t, doomed.refresh, "family whose revocation failed during the outage")
		for _, n := range nodes {
			n.wantCookieGone(t, doomedCookie, "cookie logged out after the outage")
			n.wantAccessGone(t, doomed.access, "family revoked after the outage")
			n.wantRefreshDead(t, doomed.refresh, "node "+n.name+": family revoked after the outage")
		}

		// Fresh logins and grants, and their revocation.
		fresh := b.login(t, email, e2ePassword).cookie
		a.getSession(t, fresh).wantFor(t, "cookie from a login on B after the outage", http.StatusOK)
		g := a.grant(t, email, e2ePassword)
		b.wantAccessAlive(t, g.access, "token granted on A after the outage")
		b.revoke(t, g.refresh, "a family granted after the outage")
		a.wantAccessGone(t, g.access, "family revoked on B after the outage")
	})

	// A node with nothing in memory: what is in force is what the store
	// kept.
	t.Run("node started after the outage", func(t *testing.T) {
		c := e2eStartNode(t, "C", "", env, stores...)
		wantRevoked(t, c, "on a node started after the outage")
		c.getSession(t, cookie).wantFor(t, "live cookie on a node started after the outage", http.StatusOK)
		if refreshed.access != "" {
			c.wantAccessAlive(t, refreshed.access, "live family on a node started after the outage")
		}
		c.wantAccessDead(t, doomed.access, "family revoked after the outage, on a node started later")
		c.getSession(t, doomedCookie).wantFor(t, "cookie logged out after the outage, on a node started later", http.StatusUnauthorized)
	})
}
