package lab

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSoakJudge: the rule of API.md the soak holds every allowed request
// to. On the node that ended a session, a request sent after the ending
// answer arrived must be refused, however soon; on the others, one sent
// more than a second after it.
func TestSoakJudge(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ended := sessionEnd{at: t0, node: 1, why: "logout"}
	unknownNode := sessionEnd{at: t0, node: -1, why: "a refresh race's reuse"}
	for _, c := range []struct {
		name string
		end  sessionEnd
		node int
		sent time.Time
		want endVerdict
	}{
		{"live", sessionEnd{}, 1, t0, verdictFine},
		{"sent before the end arrived, same node", ended, 1, t0.Add(-time.Millisecond), verdictFine},
		{"sent before the end arrived, other node", ended, 0, t0.Add(-time.Millisecond), verdictFine},
		{"same node, at once", ended, 1, t0.Add(time.Microsecond), verdictViolation},
		{"same node, the very instant", ended, 1, t0, verdictViolation},
		{"same node, much later", ended, 1, t0.Add(time.Hour), verdictViolation},
		{"other node, at once", ended, 0, t0.Add(time.Microsecond), verdictInBound},
		{"other node, just within the second", ended, 2, t0.Add(time.Second), verdictInBound},
		{"other node, past the second", ended, 2, t0.Add(time.Second + time.Millisecond), verdictViolation},
		{"unknown node, at once", unknownNode, 1, t0.Add(time.Millisecond), verdictInBound},
		{"unknown node, past the second", unknownNode, 1, t0.Add(2 * time.Second), verdictViolation},
	} {
		if got := c.end.judge(c.node, c.sent, time.Second); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// TestSoakRunJudge: the counts the soak reports come from the verdicts: a
// violation is counted and described, an allowance within the bound
// counted apart, a refusal counted, and an unsettled session or a request
// sent before the end not judged at all.
func TestSoakRunJudge(t *testing.T) {
	r := newSoakRun(cluster{nodes: make([]process, 3)}, time.Minute)
	t0 := time.Now()
	s := &soakSession{token: true, end: sessionEnd{at: t0, node: 0, why: "token revoke"}}
	ok, refused := classOK, classRefused
	for _, c := range []struct {
		node  int
		sent  time.Time
		class answerClass
		ended bool // judge's answer
	}{
		{0, t0.Add(-time.Second), ok, false},        // in flight with the end
		{0, t0.Add(time.Millisecond), ok, true},     // violation
		{1, t0.Add(time.Millisecond), ok, true},     // within the bound
		{2, t0.Add(3 * time.Second), ok, true},      // violation
		{2, t0.Add(3 * time.Second), refused, true}, // refused
		{1, t0.Add(time.Millisecond), refused, true},
	} {
		if got := r.judge(s, answer{node: c.node, sent: c.sent, class: c.class}, "test"); got != c.ended {
			t.Errorf("node %d, sent %v after the end: judge says ended %v", c.node, c.sent.Sub(t0), got)
		}
	}
	if r.nViolations != 2 || len(r.violations) != 2 || r.inBound != 1 || r.refusedEnd != 2 {
		t.Errorf("violations %d %q, within the bound %d, refused %d; want 2, 1, 2", r.nViolations, r.violations, r.inBound, r.refusedEnd)
	}
	u := &soakSession{unknown: true, end: s.end}
	if r.judge(u, answer{node: 0, sent: t0.Add(time.Second), class: ok}, "test"); r.nViolations != 2 {
		t.Errorf("an unsettled session was judged: %d violations", r.nViolations)
	}
}

// TestSoakClassify: the two 503s API.md documents for load are told
// apart by their words (server/errors.go's), and every other 5xx is a
// failure, a panic's 503 and a failing store's among them.
func TestSoakClassify(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   answerClass
	}{
		{200, `{}`, classOK},
		{204, ``, classOK},
		{401, `{"error":"unauthenticated"}`, classRefused},
		{400, `{"error":"invalid_grant"}`, classRefused},
		{503, `{"error":"unavailable","error_description":"this node is behind on revocations; retry shortly"}`, classLag},
		{503, `{"error":"unavailable","error_description":"the server is busy; retry shortly"}`, classBusy},
		{503, `{"error":"unavailable","error_description":"a store is unavailable; retry shortly"}`, classFailure},
		{503, `{"error":"unavailable","error_description":"internal error"}`, classFailure},
		{500, `behind on revocations`, classFailure},
		{502, ``, classFailure},
		{302, ``, classFailure},
		{0, ``, classTransport},
	} {
		if got := classify(c.status, []byte(c.body)); got != c.want {
			t.Errorf("%d %s: class %d, want %d", c.status, c.body, got, c.want)
		}
	}
}

// TestSoakRace: two refreshes of one token, at most one winner.
func TestSoakRace(t *testing.T) {
	for _, c := range []struct {
		a, b int
		want raceOutcome
	}{
		{200, 400, raceOneWinner},
		{400, 200, raceOneWinner},
		{400, 400, raceNoWinner},
		{200, 200, raceTwoWinners},
		{200, 503, raceUnsettled},
		{0, 400, raceUnsettled},
		{401, 200, raceUnsettled},
	} {
		if got := judgeRace(c.a, c.b); got != c.want {
			t.Errorf("%d and %d: %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestSoakPasswordChangeEnds: a password change ends every other session
// and every family; a cookie session that made it keeps itself, a family
// does not.
func TestSoakPasswordChangeEnds(t *testing.T) {
	c1, c2 := &soakSession{id: "c1"}, &soakSession{id: "c2"}
	f1, f2 := &soakSession{id: "f1", token: true}, &soakSession{id: "f2", token: true}
	live := []*soakSession{c1, f1, c2, f2}
	ids := func(ss []*soakSession) (out []string) {
		for _, s := range ss {
			out = append(out, s.id)
		}
		return out
	}
	if got := ids(passwordChangeEnds(live, c1)); !slices.Equal(got, []string{"f1", "c2", "f2"}) {
		t.Errorf("by cookie c1: ends %v", got)
	}
	if got := ids(passwordChangeEnds(live, f1)); !slices.Equal(got, []string{"c1", "f1", "c2", "f2"}) {
		t.Errorf("by family f1: ends %v", got)
	}
}

// TestSoakGrowth: the flatness rule, and the windows it reads.
func TestSoakGrowth(t *testing.T) {
	for _, c := range []struct {
		rule       growthRule
		start, end float64
		grew       bool
	}{
		{rssRule, 90, 130, false},       // +44 %: within 50 %
		{rssRule, 90, 140, true},        // +56 % and +50 MiB
		{rssRule, 40, 80, false},        // +100 % but only +40 MiB
		{rssRule, 40, 90, true},         // +125 % and +50 MiB
		{rssRule, 90, 60, false},        // shrank
		{goroutinesRule, 20, 40, false}, // +100 % but only +20
		{goroutinesRule, 20, 50, true},  // +30
		{goroutinesRule, 100, 140, false},
		{goroutinesRule, 100, 160, true},
	} {
		if got := c.rule.grew(c.start, c.end); got != c.grew {
			t.Errorf("%s: %.0f → %.0f: grew %v, want %v", c.rule.unit, c.start, c.end, got, c.grew)
		}
	}

	warmup, window := soakWindows(10 * time.Minute)
	if warmup != 100*time.Second || window != time.Minute {
		t.Errorf("10m: warm-up %v, window %v; want 1m40s and 1m", warmup, window)
	}
	warmup, window = soakWindows(time.Minute)
	if warmup != 10*time.Second || window != 6*time.Second {
		t.Errorf("1m: warm-up %v, window %v; want 10s and 6s", warmup, window)
	}
	var samples []nodeSample
	for i := range 60 {
		samples = append(samples, nodeSample{at: time.Duration(i) * time.Second, rss: float64(i), goroutines: 100})
	}
	rss, g, n := windowMedians(samples, 10*time.Second, 16*time.Second)
	if rss != 12.5 || g != 100 || n != 6 {
		t.Errorf("window [10s, 16s): median RSS %v, goroutines %v, %d samples; want 12.5, 100, 6", rss, g, n)
	}
}

// TestSoakErrorLines: the nodes' ERROR lines are kept for the report (the
// first few) and counted; other lines are not.
func TestSoakErrorLines(t *testing.T) {
	var e errorLines
	for i := range 10 {
		fmt.Fprintln(&e, `time=2026-12-05T11:49:21.004Z level=ERROR msg="request failed" n=`+strconv.Itoa(i))
		fmt.Fprintln(&e, `time=2026-12-05T11:49:21.004Z level=WARN msg="request refused: revocations behind"`)
	}
	if e.n != 10 || len(e.first) != 8 || !strings.HasSuffix(e.first[0], "n=0") {
		t.Errorf("%d lines counted, %d kept: %q", e.n, len(e.first), e.first)
	}
}
