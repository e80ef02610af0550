package lab

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// soakWorker acts for one user at a time, one request at a time: it
// registers a user, uses and ends the user's sessions for a while, then
// leaves that user (whose live sessions the final check asks about) for a
// new one.
type soakWorker struct {
	r    *soakRun
	rng  *mrand.Rand
	u    *soakUser
	left int // operations left for this user
}

// soakOps are the operations of the mixed load and their weights: mostly
// reads, then refreshes, then what makes and ends sessions. The password
// hashing ones (login, grant, password change, registration) are about
// 8 % of operations, since argon2id costs a core 25–35 ms each.
var soakOps = []struct {
	weight float64
	run    func(w *soakWorker, ctx context.Context)
}{
	{30, (*soakWorker).cookieRead},
	{30, (*soakWorker).bearerRead},
	{10, (*soakWorker).refresh},
	{2, (*soakWorker).refreshRace},
	{8, (*soakWorker).askEnded},
	{3, (*soakWorker).login},
	{3, (*soakWorker).grant},
	{2, (*soakWorker).logout},
	{1.5, (*soakWorker).revokeToken},
	{1.5, (*soakWorker).deleteSession},
	{0.7, (*soakWorker).changePassword},
	{0.3, (*soakWorker).adminRevoke},
}

// step does one operation.
func (w *soakWorker) step(ctx context.Context) {
	if w.u == nil || w.left <= 0 {
		w.register(ctx)
		return
	}
	w.left--
	if len(w.u.live) > 12 { // keep each user's sessions few: end one
		[]func(*soakWorker, context.Context){(*soakWorker).logout, (*soakWorker).revokeToken, (*soakWorker).deleteSession}[w.rng.IntN(3)](w, ctx)
		return
	}
	total := 0.0
	for _, op := range soakOps {
		total += op.weight
	}
	x := w.rng.Float64() * total
	for _, op := range soakOps {
		if x -= op.weight; x < 0 {
			op.run(w, ctx)
			return
		}
	}
}

func (w *soakWorker) node() int { return w.rng.IntN(len(w.r.c.nodes)) }

// otherNode is a node other than n.
func (w *soakWorker) otherNode(n int) int {
	return (n + 1 + w.rng.IntN(len(w.r.c.nodes)-1)) % len(w.r.c.nodes)
}

// pick returns a random live session of the user of the kind asked
// (token), or nil.
func (w *soakWorker) pick(token bool) *soakSession {
	var of []*soakSession
	for _, s := range w.u.live {
		if s.token == token {
			of = append(of, s)
		}
	}
	if len(of) == 0 {
		return nil
	}
	return of[w.rng.IntN(len(of))]
}

// register makes a new user (POST /v1/users) for the next 40 to 200
// operations.
func (w *soakWorker) register(ctx context.Context) {
	u := &soakUser{email: fmt.Sprintf("soak-%s@example.test", randomHex(8)), password: randomHex(10)}
	a := w.r.do(ctx, w.node(), call{kind: "register", method: http.MethodPost, path: "/v1/users", json: map[string]string{"email": u.email, "password": u.password}})
	if !w.r.expect(a, "register", http.StatusCreated) {
		return
	}
	var in struct{ ID string }
	if err := json.Unmarshal(a.body, &in); err != nil || in.ID == "" {
		w.r.fail("register on node %c: no id in %q", 'A'+a.node, a.body)
		return
	}
	u.id = in.ID
	w.u, w.left = u, 40+w.rng.IntN(161)
	w.r.mu.Lock()
	w.r.nUsers++
	w.r.mu.Unlock()
}

// add puts a new session into the model.
func (w *soakWorker) add(s *soakSession) {
	w.u.live = append(w.u.live, s)
	w.r.mu.Lock()
	w.r.sessions = append(w.r.sessions, s)
	w.r.mu.Unlock()
}

// login starts a cookie session (POST /v1/session).
func (w *soakWorker) login(ctx context.Context) {
	a := w.r.do(ctx, w.node(), call{kind: "login", method: http.MethodPost, path: "/v1/session", json: map[string]string{"email": w.u.email, "password": w.u.password}})
	if !w.r.expect(a, "login", http.StatusCreated) {
		return
	}
	var in struct {
		Session struct{ ID string } `json:"session"`
	}
	json.Unmarshal(a.body, &in)
	s := &soakSession{id: in.Session.ID, cookie: sessionCookie(a.cookies)}
	if s.id == "" || s.cookie == "" {
		w.r.fail("login on node %c: no session id or cookie: %q", 'A'+a.node, a.body)
		return
	}
	w.add(s)
}

// grant starts a refresh family (POST /v1/token, grant_type=password).
func (w *soakWorker) grant(ctx context.Context) {
	a := w.r.do(ctx, w.node(), call{kind: "password grant", method: http.MethodPost, path: "/v1/token",
		form: url.Values{"grant_type": {"password"}, "username": {w.u.email}, "password": {w.u.password}}})
	if !w.r.expect(a, "password grant", http.StatusOK) {
		return
	}
	s := &soakSession{token: true}
	if w.r.takeTokens(s, a) {
		w.add(s)
	}
}

// cookieRead is GET /v1/session with a live cookie: 200.
func (w *soakWorker) cookieRead(ctx context.Context) {
	s := w.pick(false)
	if s == nil {
		w.login(ctx)
		return
	}
	if a := w.r.ask(ctx, s, w.node(), "read"); !w.r.expect(a, "read (cookie) of a live session", http.StatusOK) && a.class != classLag {
		w.forget(s) // refused: counted once, not again and again
	}
}

// bearerRead is GET /v1/userinfo with a live family's access token: 200.
// A token near its end is refreshed first.
func (w *soakWorker) bearerRead(ctx context.Context) {
	s := w.pick(true)
	if s == nil {
		w.grant(ctx)
		return
	}
	if time.Until(s.expires) < 20*time.Second && !w.r.refreshFamily(ctx, s, w.node(), "refresh") {
		w.forget(s)
		return
	}
	if a := w.r.ask(ctx, s, w.node(), "read"); !w.r.expect(a, "read (bearer) of a live family", http.StatusOK) && a.class != classLag {
		w.forget(s)
	}
}

// refresh is one refresh grant of a live family: 200 and new tokens.
func (w *soakWorker) refresh(ctx context.Context) {
	if s := w.pick(true); s == nil {
		w.grant(ctx)
	} else if !w.r.refreshFamily(ctx, s, w.node(), "refresh") {
		w.forget(s)
	}
}

// forget takes a family whose refresh failed out of the live ones: if the
// failure was the model's mistake, ended or not, it is no longer judged.
func (w *soakWorker) forget(s *soakSession) {
	s.unknown = true
	w.u.live = slices.DeleteFunc(w.u.live, func(x *soakSession) bool { return x == s })
}

// refreshRace sends one refresh token to two nodes at once. At most one
// may win; the loser's reuse ends the family (judgeRace).
func (w *soakWorker) refreshRace(ctx context.Context) {
	s := w.pick(true)
	if s == nil {
		w.grant(ctx)
		return
	}
	n1 := w.node()
	nodes := [2]int{n1, w.otherNode(n1)}
	var as [2]answer
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, n := range nodes {
		wg.Go(func() {
			<-start
			as[i] = w.r.do(ctx, n, call{kind: "refresh race", method: http.MethodPost, path: "/v1/token", form: refreshGrant(s.refresh)})
		})
	}
	close(start)
	wg.Wait()
	out := judgeRace(as[0].status, as[1].status)
	w.r.mu.Lock()
	w.r.races[out]++
	w.r.mu.Unlock()
	switch out {
	case raceOneWinner:
		win, lose := as[0], as[1]
		if lose.status == http.StatusOK {
			win, lose = lose, win
		}
		w.r.takeTokens(s, win)
		w.end(ctx, []*soakSession{s}, lose, "a refresh race's reuse")
	case raceNoWinner:
		later := as[0]
		if as[1].got.After(later.got) {
			later = as[1]
		}
		later.node = -1 // which of the two ended it is not known
		w.end(ctx, []*soakSession{s}, later, "a refresh race's reuse")
	case raceTwoWinners:
		w.r.fail("refresh race on nodes %c and %c: both answered 200", 'A'+nodes[0], 'A'+nodes[1])
		w.forget(s)
	default:
		for _, a := range as {
			w.r.expect(a, "refresh race", http.StatusBadRequest)
		}
		w.forget(s)
	}
}

// logout ends a cookie session (DELETE /v1/session).
func (w *soakWorker) logout(ctx context.Context) {
	s := w.pick(false)
	if s == nil {
		return
	}
	a := w.r.do(ctx, w.node(), call{kind: "logout", method: http.MethodDelete, path: "/v1/session", cookie: s.cookie})
	w.ended(ctx, a, http.StatusNoContent, "logout", []*soakSession{s})
}

// revokeToken ends a family by its refresh token (POST /v1/token/revoke).
func (w *soakWorker) revokeToken(ctx context.Context) {
	s := w.pick(true)
	if s == nil {
		return
	}
	a := w.r.do(ctx, w.node(), call{kind: "token revoke", method: http.MethodPost, path: "/v1/token/revoke", form: url.Values{"token": {s.refresh}}})
	w.ended(ctx, a, http.StatusOK, "token revoke", []*soakSession{s})
}

// deleteSession ends one of the user's sessions, cookie or family, by its
// id (DELETE /v1/sessions/{id}), signed in with another or the same one,
// by cookie or bearer token.
func (w *soakWorker) deleteSession(ctx context.Context) {
	if len(w.u.live) == 0 {
		return
	}
	by := w.u.live[w.rng.IntN(len(w.u.live))]
	target := w.u.live[w.rng.IntN(len(w.u.live))]
	c := call{kind: "session delete", method: http.MethodDelete, path: "/v1/sessions/" + url.PathEscape(target.id)}
	if by.token {
		if time.Until(by.expires) < 20*time.Second {
			return // a bearer read refreshes it first
		}
		c.bearer = by.access
	} else {
		c.cookie = by.cookie
	}
	a := w.r.do(ctx, w.node(), c)
	w.ended(ctx, a, http.StatusNoContent, "session delete", []*soakSession{target})
}

// changePassword changes the user's password (POST /v1/password) with a
// cookie (which keeps that session) or a bearer token (which keeps
// nothing): every other session and every family ends.
func (w *soakWorker) changePassword(ctx context.Context) {
	if len(w.u.live) == 0 {
		return
	}
	by := w.u.live[w.rng.IntN(len(w.u.live))]
	next := randomHex(10)
	c := call{kind: "password change", method: http.MethodPost, path: "/v1/password", json: map[string]string{"current_password": w.u.password, "new_password": next}}
	if by.token {
		if time.Until(by.expires) < 20*time.Second {
			return
		}
		c.bearer = by.access
	} else {
		c.cookie = by.cookie
	}
	a := w.r.do(ctx, w.node(), c)
	if w.ended(ctx, a, http.StatusNoContent, "password change", passwordChangeEnds(w.u.live, by)) {
		w.u.password = next
	} else if a.class == classFailure || a.class == classTransport {
		w.u = nil // the password may or may not have changed: on to a new user
	}
}

// adminRevoke ends every session of the user as the admin (DELETE
// /v1/admin/users/{id}/sessions with the admin's cookie).
func (w *soakWorker) adminRevoke(ctx context.Context) {
	a := w.r.do(ctx, w.node(), call{kind: "admin revoke", method: http.MethodDelete, path: "/v1/admin/users/" + w.u.id + "/sessions", cookie: w.r.admin.cookie})
	w.ended(ctx, a, http.StatusNoContent, "admin revoke", slices.Clone(w.u.live))
}

// ended records the answer a to a request that ends the sessions ends:
// with status want they ended at a.got on a.node, and the node that ended
// them, then another, are asked about one of them at once. Any 5xx or
// none leaves them unsettled. It reports whether they ended.
func (w *soakWorker) ended(ctx context.Context, a answer, want int, why string, ends []*soakSession) bool {
	if !w.r.expect(a, why, want) {
		// Whether anything ended is not known: none of them is judged
		// again.
		for _, s := range ends {
			w.forget(s)
		}
		return false
	}
	w.end(ctx, ends, a, why)
	return true
}

// end marks sessions as ended by the answer a and asks at once about one
// of them: the node that ended it must refuse it; another may allow it
// within the bound.
func (w *soakWorker) end(ctx context.Context, ends []*soakSession, a answer, why string) {
	for _, s := range ends {
		if !s.end.ended() {
			s.end = sessionEnd{at: a.got, node: a.node, why: why}
		}
		w.u.live = slices.DeleteFunc(w.u.live, func(x *soakSession) bool { return x == s })
		if w.u.ended = append(w.u.ended, s); len(w.u.ended) > 32 {
			w.u.ended = w.u.ended[1:]
		}
	}
	if len(ends) == 0 {
		return
	}
	s := ends[w.rng.IntN(len(ends))]
	if a.node >= 0 {
		w.r.judge(s, w.r.ask(ctx, s, a.node, "ask after end, same node"), "asked at once on the node that ended it")
		w.r.judge(s, w.r.ask(ctx, s, w.otherNode(a.node), "ask after end, other node"), "asked at once on another node")
	}
}

// askEnded asks a random node about one of the user's ended sessions:
// with its cookie or access token, or a family's newest refresh token.
func (w *soakWorker) askEnded(ctx context.Context) {
	if len(w.u.ended) == 0 {
		w.cookieRead(ctx)
		return
	}
	s := w.u.ended[w.rng.IntN(len(w.u.ended))]
	node := w.node()
	if s.token && w.rng.IntN(2) == 0 {
		a := w.r.do(ctx, node, call{kind: "ask ended (refresh)", method: http.MethodPost, path: "/v1/token", form: refreshGrant(s.refresh)})
		w.r.judge(s, a, "refresh of an ended family")
		return
	}
	w.r.judge(s, w.r.ask(ctx, s, node, "ask ended"), "asked about an ended session")
}
