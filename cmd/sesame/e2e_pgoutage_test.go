package main

// End-to-end test of a PostgreSQL connection outage against shared/API.md
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
func pgoWantRefused(t testing.TB, r tokResp, what string) int {
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
func pgoWantRefreshRefused(t testing.TB, r tokResp, what string) {
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
	a := mnStart(t, "A", env, stores...)
	b := mnStart(t, "B", env, stores...)
	nodes := []*mnNode{a, b}

	email := tokEmail("pgo")
	a.register(t, email)
	cookie, _ := a.cookieLogin(t, email, tokPassword)
	live := a.grant(t, email, tokPassword)
	// Logged out, or revoked, during the outage: that must fail, and work
	// once the store is back.
	doomedCookie, _ := b.cookieLogin(t, email, tokPassword)
	doomed := b.grant(t, email, tokPassword)

	// Every kind of revocation, before the outage.
	loggedOut, _ := a.cookieLogin(t, email, tokPassword)
	tokWant(t, a.do(t, "DELETE", "/v1/session", "", "", tokWithCookie(loggedOut)...), http.StatusNoContent, "logout on A")
	endedByID, endedID := b.cookieLogin(t, email, tokPassword)
	tokWant(t, a.do(t, "DELETE", "/v1/sessions/"+endedID, "", "", tokWithCookie(cookie)...), http.StatusNoContent, "ending a session by its id on A")
	byAccess := a.grant(t, email, tokPassword)
	a.mnRevoke(t, byAccess.access, "a family by its access token")
	byRefresh := b.grant(t, email, tokPassword)
	b.mnRevoke(t, byRefresh.refresh, "a family by its refresh token")
	reuse1 := a.grant(t, email, tokPassword)
	reuse2 := a.mustRefresh(t, reuse1.refresh, "refresh on A")
	tokWantErr(t, a.refresh(t, reuse1.refresh), http.StatusBadRequest, "invalid_grant", "replay of a retired refresh token on A")
	// Ended by another process: the nodes learn of it only from the log.
	email2 := tokEmail("pgo-cli")
	b.register(t, email2)
	cliCookie, _ := b.cookieLogin(t, email2, tokPassword)
	cliFamily := b.grant(t, email2, tokPassword)
	mnCLI(t, env, "", "sessions", "revoke", "--email", email2, "--data-dir", t.TempDir(), "--db", pg, "--session-store", pg)

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
	wantRevoked := func(t *testing.T, n *mnNode, when string) {
		t.Helper()
		for _, c := range revokedCookies {
			n.mnWantCookie(t, c.tok, http.StatusUnauthorized, c.what+" "+when)
		}
		for _, c := range revokedAccess {
			n.mnWantDead(t, c.tok, c.what+" "+when)
		}
		for _, c := range revokedRefresh {
			n.wantRefreshDead(t, c.tok, "node "+n.name+": "+c.what+" "+when)
		}
	}

	for _, n := range nodes {
		wantRevoked(t, n, "before the outage")
		n.mnWantCookie(t, cookie, http.StatusOK, "live cookie before the outage")
		n.mnWantCookie(t, doomedCookie, http.StatusOK, "second live cookie before the outage")
		n.mnWantLive(t, live.access, "live family before the outage")
		n.mnWantLive(t, doomed.access, "second live family before the outage")
		tokWant(t, n.do(t, "GET", "/readyz", "", ""), http.StatusOK, "node "+n.name+": /readyz before the outage")
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
	timed := func(t *testing.T, n *mnNode, what string, f func() tokResp) tokResp {
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
	during := func(t *testing.T, n *mnNode, when string) {
		t.Helper()
		what := func(s string) string { return fmt.Sprintf("node %s: %s %s", n.name, s, when) }

		r := timed(t, n, "GET /readyz", func() tokResp { return n.do(t, "GET", "/readyz", "", "") })
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("/readyz"))
		tokWant(t, n.do(t, "GET", "/healthz", "", ""), http.StatusOK, what("/healthz"))

		// Cookies: the session cannot be read, so 503, never 200.
		r = timed(t, n, "GET /v1/session", func() tokResp { return n.mnSession(t, cookie) })
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("live cookie"))
		r = timed(t, n, "GET /v1/userinfo (cookie)", func() tokResp {
			return n.do(t, "GET", "/v1/userinfo", "", "", tokWithCookie(cookie)...)
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("/v1/userinfo with the live cookie"))
		r = timed(t, n, "GET /v1/sessions (cookie)", func() tokResp {
			return n.do(t, "GET", "/v1/sessions", "", "", tokWithCookie(cookie)...)
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("/v1/sessions with the live cookie"))
		for _, c := range revokedCookies {
			pgoWantRefused(t, timed(t, n, "GET /v1/session", func() tokResp { return n.mnSession(t, c.tok) }), what(c.what))
		}

		// A live access token. Its signature is checked locally, but
		// whether its session has ended is the revocation state, which
		// lives in PostgreSQL here: the contract says a request whose
		// revocation state cannot be read gets 503. The server reads the
		// revocation log before every verdict on a session it does not
		// already know to be ended (RevocationSet.SyncOnRead, set in
		// serve.go), so there is no window in which an in-process answer
		// is trusted: 503 from the first request after the cut.
		r = timed(t, n, "GET /v1/userinfo (bearer)", func() tokResp { return n.userinfo(t, live.access) })
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("live family's access token"))
		r = timed(t, n, "GET /v1/sessions (bearer)", func() tokResp {
			return n.do(t, "GET", "/v1/sessions", "", "", tokBearer(live.access)...)
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("/v1/sessions with the live family's access token"))
		// A revoked one: never 200. The node may still refuse it with
		// 401 from its in-process set (it is known ended, whatever the
		// store would say), or answer 503.
		for i, c := range revokedAccess {
			st := pgoWantRefused(t, timed(t, n, "GET /v1/userinfo (bearer)", func() tokResp { return n.userinfo(t, c.tok) }), what(c.what))
			if i == 0 {
				t.Logf("node %s: revoked access token %s: %d", n.name, when, st)
			}
		}

		// Logins and grants: the user, the throttle and the session or
		// family cannot be read or written.
		r = timed(t, n, "POST /v1/session", func() tokResp {
			return n.postJSON(t, "/v1/session", map[string]string{"email": email, "password": tokPassword})
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("cookie login"))
		if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("%s: sets cookies %q, want none", what("cookie login"), sc)
		}
		r = timed(t, n, "POST /v1/token password", func() tokResp {
			return n.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {tokPassword}}.Encode())
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("password grant"))
		r = timed(t, n, "POST /v1/token refresh", func() tokResp { return n.refresh(t, live.refresh) })
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("refresh grant with the live family"))
		for _, c := range revokedRefresh {
			pgoWantRefreshRefused(t, timed(t, n, "POST /v1/token refresh", func() tokResp { return n.refresh(t, c.tok) }), what(c.what))
		}
		r = timed(t, n, "POST /v1/users", func() tokResp {
			return n.postJSON(t, "/v1/users", map[string]string{"email": tokEmail("pgo-outage"), "password": tokPassword})
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", what("registration"))

		if gone, err := n.exited(); gone {
			t.Fatalf("node %s exited during the outage: %v", n.name, err)
		}
	}

	t.Run("during the outage", func(t *testing.T) {
		for _, n := range nodes {
			during(t, n, "right after the cut")
		}
		// Ending a session or a family needs the store: the client must
		// hear that it did not happen (503), not 200 or 204.
		r := timed(t, b, "DELETE /v1/session", func() tokResp {
			return b.do(t, "DELETE", "/v1/session", "", "", tokWithCookie(doomedCookie)...)
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", "node B: logout during the outage")
		r = timed(t, b, "POST /v1/token/revoke", func() tokResp {
			return b.form(t, "/v1/token/revoke", url.Values{"token": {doomed.refresh}}.Encode())
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", "node B: revoking a refresh token during the outage")
		r = timed(t, a, "POST /v1/token/revoke", func() tokResp {
			return a.form(t, "/v1/token/revoke", url.Values{"token": {doomed.access}}.Encode())
		})
		tokWantErr(t, r, http.StatusServiceUnavailable, "unavailable", "node A: revoking an access token during the outage")

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
			n.mnWaitStatus(t, "/readyz", http.StatusOK, 5*time.Second, "readiness after the connection's return")
			t.Logf("node %s: /readyz 200 %v after the connection's return", n.name, time.Since(back).Round(time.Millisecond))
		}
		// Service resumes by itself: the live cookie works again.
		for _, n := range nodes {
			for {
				r := n.mnSession(t, cookie)
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
			n.mnWantCookie(t, cookie, http.StatusOK, "live cookie after the outage")
			n.mnWantLive(t, live.access, "live family after the outage")
			n.mnWantLive(t, doomed.access, "family whose revocation failed during the outage")
			n.mnWantCookie(t, doomedCookie, http.StatusOK, "cookie whose logout failed during the outage")
			wantRevoked(t, n, "after the outage")
		}
		refreshed = a.mustRefresh(t, live.refresh, "node A: live family's refresh token after the outage")
		b.mnWantLive(t, refreshed.access, "live family refreshed after the outage")
		if kid := tokParse(t, refreshed.access).header["kid"]; kid != a.kid {
			t.Errorf("node A signs with kid %v after the outage, want %s as before", kid, a.kid)
		}

		// What failed during the outage works now, and holds everywhere.
		tokWant(t, b.do(t, "DELETE", "/v1/session", "", "", tokWithCookie(doomedCookie)...), http.StatusNoContent, "node B: logout retried after the outage")
		a.mnRevoke(t, doomed.refresh, "family whose revocation failed during the outage")
		for _, n := range nodes {
			n.mnWantCookie(t, doomedCookie, http.StatusUnauthorized, "cookie logged out after the outage")
			n.mnWantDead(t, doomed.access, "family revoked after the outage")
			n.wantRefreshDead(t, doomed.refresh, "node "+n.name+": family revoked after the outage")
		}

		// Fresh logins and grants, and their revocation.
		fresh, _ := b.cookieLogin(t, email, tokPassword)
		a.mnWantCookie(t, fresh, http.StatusOK, "cookie from a login on B after the outage")
		g := a.grant(t, email, tokPassword)
		b.mnWantLive(t, g.access, "token granted on A after the outage")
		b.mnRevoke(t, g.refresh, "a family granted after the outage")
		a.mnWantDead(t, g.access, "family revoked on B after the outage")
	})

	// A node with nothing in memory: what is in force is what the store
	// kept.
	t.Run("node started after the outage", func(t *testing.T) {
		c := mnStart(t, "C", env, stores...)
		wantRevoked(t, c, "on a node started after the outage")
		c.mnWantCookie(t, cookie, http.StatusOK, "live cookie on a node started after the outage")
		if refreshed.access != "" {
			c.mnWantLive(t, refreshed.access, "live family on a node started after the outage")
		}
		c.mnWantDead(t, doomed.access, "family revoked after the outage, on a node started later")
		c.mnWantCookie(t, doomedCookie, http.StatusUnauthorized, "cookie logged out after the outage, on a node started later")
	})
}
