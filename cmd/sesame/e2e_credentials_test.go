package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Logins in flight against a credential change (issue 7, item 1): a login
// reads the user, waits for a hashing slot, verifies, and only then
// creates its session or refresh family. A password change, or the end of
// every session of the user by an admin or the CLI, must leave nothing
// alive that such a login created from a check begun before it.

// inflightGot is what one successful login of the old credentials got: a
// cookie, or a token family.
type inflightGot struct {
	node            *e2eServer
	cookie          string
	access, refresh string
}

// inflightAttempt signs in once on s with a cookie login or a password
// grant, and returns what it got (ok) or that it got nothing: the password
// was refused, or every hashing slot stayed busy (503 with Retry-After: it
// checked nothing, as on a loaded machine). Anything else is an error: the
// loops must not hide another 5xx.
func inflightAttempt(t testing.TB, s *e2eServer, email, pw string, grant bool) (inflightGot, bool, error) {
	if grant {
		r, err := s.send(t, "POST", "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {pw}}.Encode(),
			e2eHeader("Content-Type", e2eFormCT))
		switch {
		case err != nil:
			return inflightGot{}, false, err
		case r.status == http.StatusBadRequest && r.errorCode() == "invalid_grant", hashersBusy(r):
			return inflightGot{}, false, nil
		case r.status != http.StatusOK:
			return inflightGot{}, false, fmt.Errorf("%s: password grant = %d %s", s.label(), r.status, r.body)
		}
		var g struct {
			Access  string `json:"access_token"`
			Refresh string `json:"refresh_token"`
		}
		if err := json.Unmarshal(r.body, &g); err != nil || g.Access == "" || g.Refresh == "" {
			return inflightGot{}, false, fmt.Errorf("%s: password grant body %s: %v", s.label(), r.body, err)
		}
		return inflightGot{node: s, access: g.Access, refresh: g.Refresh}, true, nil
	}
	r, err := s.send(t, "POST", "/v1/session", map[string]string{"email": email, "password": pw})
	switch {
	case err != nil:
		return inflightGot{}, false, err
	case r.status == http.StatusUnauthorized && r.errorCode() == "invalid_credentials", hashersBusy(r):
		return inflightGot{}, false, nil
	case r.status != http.StatusCreated:
		return inflightGot{}, false, fmt.Errorf("%s: login = %d %s", s.label(), r.status, r.body)
	}
	cs := r.setCookies()
	if len(cs) != 1 || cs[0].Value == "" {
		return inflightGot{}, false, fmt.Errorf("%s: login without a cookie: %q", s.label(), r.header.Values("Set-Cookie"))
	}
	return inflightGot{node: s, cookie: cs[0].Value}, true, nil
}

// hashersBusy reports the 503 of a login that found no free hashing slot
// in time: it verified nothing, so a client retries it.
func hashersBusy(r e2eResp) bool {
	return r.status == http.StatusServiceUnavailable && r.errorCode() == "unavailable" && r.header.Get("Retry-After") != ""
}

// inflightWantDead checks on every node that nothing got is usable: the
// cookie is refused (within the second another node may take), the
// refresh token is invalid_grant and the access token 401.
func inflightWantDead(t *testing.T, nodes []*e2eServer, got []inflightGot, what string) {
	t.Helper()
	for i, g := range got {
		w := fmt.Sprintf("%s: login %d (on %s)", what, i+1, strings.TrimSuffix(g.node.label(), ": "))
		if g.cookie != "" {
			for _, n := range nodes {
				n.wantCookieGone(t, g.cookie, w+": its cookie")
			}
			continue
		}
		for _, n := range nodes {
			n.wantAccessDead(t, g.access, w)
		}
		g.node.wantRefreshDead(t, g.refresh, w)
	}
}

// inflightDeploy is a deployment the races run on: its nodes, and the
// store flags that point the CLI at its data.
type inflightDeploy struct {
	nodes []*e2eServer
	cli   []string
}

// mustCLI runs a CLI command on the deployment's data.
func (d inflightDeploy) mustCLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	return e2eMustCLI(t, e2eNoEnv, stdin, append(args, d.cli...)...)
}

// inflightStores are the deployments the races run on: the embedded
// default, PostgreSQL for everything (two nodes), and users in PostgreSQL
// with sessions in Redis (two nodes).
func inflightStores(extra ...string) map[string]func(t *testing.T) inflightDeploy {
	twoNodes := func(t *testing.T, stores ...string) inflightDeploy {
		env := mnMasterEnv()
		args := append(append([]string{"--issuer", mnIssuer}, stores...), extra...)
		return inflightDeploy{
			nodes: []*e2eServer{e2eStartNode(t, "A", "", env, args...), e2eStartNode(t, "B", "", env, args...)},
			cli:   stores,
		}
	}
	return map[string]func(t *testing.T) inflightDeploy{
		"sqlite": func(t *testing.T) inflightDeploy {
			s := e2eStart(t, extra...)
			return inflightDeploy{nodes: []*e2eServer{s}, cli: []string{"--data-dir", s.dataDir}}
		},
		"postgres": func(t *testing.T) inflightDeploy { return twoNodes(t, "--db", mnPostgres(t)) },
		"redis": func(t *testing.T) inflightDeploy {
			return twoNodes(t, "--db", mnPostgres(t), "--session-store", mnStartRedis(t).url())
		},
	}
}

// TestE2EPasswordChangeVsLoginsInFlight: three loops sign in with the old
// password, by cookie and by password grant, on every node, while the
// owner changes the password on the first node. When the change has
// answered 204 and the loops have stopped, no session or family obtained
// with the old password is usable anywhere. Before the credential
// generation, every trial left some alive (the issue saw 2 to 4 of them).
func TestE2EPasswordChangeVsLoginsInFlight(t *testing.T) {
	t.Parallel()
	const (
		trials = 3
		loops  = 3
	)
	for name, start := range inflightStores("--login-account-limit", "100000") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			nodes := start(t).nodes
			raced := 0
			for trial := range trials {
				email := e2eEmail("inflight-pw")
				nodes[0].register(t, email, e2ePassword)
				owner := nodes[0].login(t, email, e2ePassword)

				var (
					wg        sync.WaitGroup
					mu        sync.Mutex
					got       []inflightGot
					successes atomic.Int64
					changed   atomic.Bool
					refused   atomic.Int64
				)
				for l := range loops {
					wg.Go(func() {
						for i := 0; !changed.Load(); i++ {
							n := nodes[(l+i)%len(nodes)]
							g, ok, err := inflightAttempt(t, n, email, e2ePassword, (l+i)%2 == 1)
							if err != nil {
								t.Error(err)
								return
							}
							if !ok {
								refused.Add(1)
								continue
							}
							successes.Add(1)
							mu.Lock()
							got = append(got, g)
							mu.Unlock()
						}
					})
				}
				// Change once the loops are well under way.
				for successes.Load() < loops && !t.Failed() {
					time.Sleep(5 * time.Millisecond)
				}
				before := successes.Load()
				var r e2eResp
				for try := 0; ; try++ { // a change that found every hashing slot busy checked nothing: retry it
					r = nodes[0].do(t, "POST", "/v1/password",
						map[string]string{"current_password": e2ePassword, "new_password": "a new password " + strconv.Itoa(trial)},
						e2eCookie(owner.cookie))
					if !hashersBusy(r) || try == 20 {
						break
					}
				}
				changed.Store(true)
				wg.Wait()
				if !r.wantFor(t, "password change with loops of logins running", http.StatusNoContent) {
					return
				}
				if successes.Load() > before || refused.Load() > 0 {
					raced++ // some login was in flight across the change
				}
				inflightWantDead(t, nodes, got, fmt.Sprintf("trial %d: after the password change", trial+1))
				nodes[0].wantAlive(t, owner.cookie, "the owner's own session after the change")
			}
			if raced == 0 {
				t.Errorf("no trial had a login in flight across the change: the race was not exercised")
			}
		})
	}
}

// TestE2ERevocationVsLoginsInFlight: logins that have read the user and
// wait for the one hashing slot (--hash-concurrency 1) when an admin ends
// every session of the user, or the CLI does, keep nothing once they
// finish. The test starts the revocation only when /metrics shows every
// one of them inside the hasher (or done), so each check began before it.
func TestE2ERevocationVsLoginsInFlight(t *testing.T) {
	t.Parallel()
	const logins = 6
	for name, start := range inflightStores("--login-account-limit", "100000", "--hash-concurrency", "1") {
		if name == "postgres" {
			continue // PostgreSQL is in the redis deployment too (users, and the CLI's writes)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := start(t)
			nodes := d.nodes
			adminEmail := e2eEmail("root")
			d.mustCLI(t, e2ePassword+"\n", "user", "add", "--email", adminEmail, "--role", "admin", "--password-stdin")
			admin := nodes[0].login(t, adminEmail, e2ePassword)
			for _, way := range []string{"admin", "cli"} {
				email := e2eEmail("inflight-" + way)
				userID := nodes[0].register(t, email, e2ePassword)
				loginNode := nodes[len(nodes)-1] // another node than the admin's, where there are two

				var (
					wg       sync.WaitGroup
					mu       sync.Mutex
					got      []inflightGot
					finished atomic.Int64
				)
				for i := range logins {
					wg.Go(func() {
						defer finished.Add(1)
						g, ok, err := inflightAttempt(t, loginNode, email, e2ePassword, i%2 == 1)
						if err != nil {
							t.Error(err)
						} else if ok {
							mu.Lock()
							got = append(got, g)
							mu.Unlock()
						}
					})
				}
				// Wait until every login has read the user: done, or counted
				// by the hasher. finished is read first, so a login that
				// leaves the hasher in between is counted nowhere (and the
				// wait goes on), never twice.
				var inHasher int
				deadline := time.Now().Add(30 * time.Second)
				for {
					done := int(finished.Load())
					inHasher = hashesInFlight(t, loginNode)
					if done+inHasher >= logins || time.Now().After(deadline) {
						break
					}
					time.Sleep(2 * time.Millisecond)
				}
				if inHasher == 0 {
					t.Fatalf("%s: no login was waiting for the hasher when the revocation began: the race was not exercised", way)
				}
				switch way {
				case "admin":
					nodes[0].do(t, "DELETE", "/v1/admin/users/"+userID+"/sessions", nil, e2eCookie(admin.cookie)).
						wantFor(t, "admin ends every session of the user", http.StatusNoContent)
				case "cli":
					d.mustCLI(t, "", "sessions", "revoke", "--email", email)
				}
				wg.Wait()
				inflightWantDead(t, nodes, got, way+" revocation with "+strconv.Itoa(inHasher)+" logins in the hasher")
			}
		})
	}
}

// hashesInFlight is sesame_password_hashes_waiting + _running on s.
func hashesInFlight(t testing.TB, s *e2eServer) int {
	t.Helper()
	r := s.do(t, "GET", "/metrics", nil)
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && (name == "sesame_password_hashes_waiting" || name == "sesame_password_hashes_running") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %s %q: %v", name, v, err)
			}
			n += int(f)
		}
	}
	return n
}

// TestE2EPasswordChangeNotBlockedByStrangers (issue 7, item 6): a
// stranger's failed logins throttle the account's logins, not its
// signed-in owner's password change; wrong current passwords are counted
// against the owner's session, so the change is still no password oracle.
func TestE2EPasswordChangeNotBlockedByStrangers(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	email, owner := s.newUser(t, "strangers")
	for range 6 {
		s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "a stranger's guess"})
	}
	s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword}).
		wantFor(t, "login after a stranger's failures", http.StatusTooManyRequests, "rate_limited")
	change := func(current, next string) e2eResp {
		return s.do(t, "POST", "/v1/password", map[string]string{"current_password": current, "new_password": next}, e2eCookie(owner.cookie))
	}
	change(e2ePassword, "the owner's new password").
		wantFor(t, "the owner's change while strangers keep the account's logins throttled", http.StatusNoContent)
	for i := range 5 {
		change("a wrong current password", "yet another password").
			wantFor(t, fmt.Sprintf("wrong current password %d", i+1), http.StatusUnauthorized)
	}
	r := change("the owner's new password", "yet another password")
	r.wantFor(t, "the right current password after 5 wrong ones from this session", http.StatusTooManyRequests, "rate_limited")
	e2eRetryAfter(t, r)
}
