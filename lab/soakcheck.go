package lab

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The soak's judgement, kept apart from its traffic so that tests can hold
// it to account: what an answer is (answerClass), whether a session's
// credential may still be honoured (sessionEnd.judge), and whether a
// node's memory or goroutines grew (growthRule).

// answerClass is what one answer of a node counts as.
type answerClass int

const (
	classOK        answerClass = iota // 2xx
	classRefused                      // 4xx: the expected answer to an ended or wrong credential, or a mistake
	classLag                          // 503: the node is behind on revocations (its feed lags); counted apart
	classBusy                         // 503: the password hasher's queue is full (API.md); counted apart
	classFailure                      // any other 5xx, a panic's 503 among them
	classTransport                    // no answer at all: the connection failed or timed out
)

// The error_description of the two 503s that are not failures (server's
// writeError): a node whose revocation feed is past its bound, and a
// password hasher whose queue is full. Any other 5xx fails the soak: "a
// store is unavailable" is a failure too, since the soak's stores are up
// throughout.
const (
	lagDescription  = "behind on revocations"
	busyDescription = "the server is busy"
)

// classify tells what an answer with this status and body counts as.
func classify(status int, body []byte) answerClass {
	switch {
	case status >= 200 && status < 300:
		return classOK
	case status >= 400 && status < 500:
		return classRefused
	case status == http.StatusServiceUnavailable && strings.Contains(string(body), lagDescription):
		return classLag
	case status == http.StatusServiceUnavailable && strings.Contains(string(body), busyDescription):
		return classBusy
	case status == 0:
		return classTransport
	default: // 5xx, and a 1xx or 3xx the API never answers
		return classFailure
	}
}

// sessionEnd is when and where a session or refresh family ended, as the
// client saw it: at is when the answer that ended it had arrived, node the
// node that answered (-1: not known, as when both requests of a refresh
// race were refused). The zero value is a live session.
type sessionEnd struct {
	at   time.Time
	node int
	why  string // what ended it: "logout", "password change", ...
}

func (e sessionEnd) ended() bool { return !e.at.IsZero() }

// endVerdict is the judgement of a request that a node allowed (2xx) with a
// session's credential.
type endVerdict int

const (
	verdictFine      endVerdict = iota // the session was live when the request was sent
	verdictInBound                     // ended, but on another node less than bound before: API.md allows it
	verdictViolation                   // ended, and the node should have known
)

// judge says whether node may have allowed a request sent at sent for a
// session that ended as e says. API.md: an ended session stops working at
// once on the node that ended it (any request sent after the ending
// answer arrived must be refused) and within a second on every other
// node (bound). A request sent before the end arrived was in flight with
// it and proves nothing. A node that is not known (-1) gets the bound.
func (e sessionEnd) judge(node int, sent time.Time, bound time.Duration) endVerdict {
	switch {
	case !e.ended() || sent.Before(e.at):
		return verdictFine
	case node == e.node:
		return verdictViolation
	case sent.Sub(e.at) <= bound:
		return verdictInBound
	default:
		return verdictViolation
	}
}

// raceOutcome is what two refreshes of one refresh token sent to two
// nodes at once came to, from their two statuses. API.md: a retired token
// presented again ends its family, so at most one may win (200), and the
// other, refused (400 invalid_grant), has ended the family, the winner's
// new tokens with it.
type raceOutcome int

const (
	raceOneWinner  raceOutcome = iota // one 200, one 400: the family ended on the loser's node
	raceNoWinner                      // two 400s: the family ended (the loser's reuse overtook the winner's rotation)
	raceTwoWinners                    // two 200s: a violation, the reuse went undetected
	raceUnsettled                     // anything else (a 5xx, no answer): the family's state is unknown
)

func judgeRace(a, b int) raceOutcome {
	switch {
	case a == http.StatusOK && b == http.StatusOK:
		return raceTwoWinners
	case a == http.StatusOK && b == http.StatusBadRequest, a == http.StatusBadRequest && b == http.StatusOK:
		return raceOneWinner
	case a == http.StatusBadRequest && b == http.StatusBadRequest:
		return raceNoWinner
	default:
		return raceUnsettled
	}
}

// passwordChangeEnds is what a password change made with the credential
// of by ends, of the user's live sessions (API.md): every other session
// and every refresh family, so by itself too if it is a family; a cookie
// session keeps itself.
func passwordChangeEnds(live []*soakSession, by *soakSession) []*soakSession {
	var ends []*soakSession
	for _, s := range live {
		if s.token || s != by {
			ends = append(ends, s)
		}
	}
	return ends
}

// growthRule says when a figure sampled during the soak grew too much
// between warm-up and the end: by more than rel of its warm-up value AND
// by more than abs. The absolute floor keeps small figures from tripping
// the relative one: a few requests in flight more at one sample than at
// another, or password hashes' memory not yet returned to the kernel.
type growthRule struct {
	rel  float64 // 0.5: 50 %
	abs  float64 // in the figure's unit
	unit string
}

// The soak's rules (docs/OPERATIONS.md states them): resident memory and
// goroutines are flat when their median over the last window is within
// 50 % of their median over the window after warm-up, or within 48 MiB
// and 25 goroutines of it. 48 MiB: a node hashes up to two passwords at
// once on two cores, 19 MiB each, and whether the runtime has given that
// memory back at a sample is chance (a 60 s run saw +33 MiB, flat).
var (
	rssRule        = growthRule{rel: 0.5, abs: 48, unit: "MiB"}
	goroutinesRule = growthRule{rel: 0.5, abs: 25, unit: "goroutines"}
)

func (g growthRule) grew(start, end float64) bool {
	return end > start*(1+g.rel) && end-start > g.abs
}

func (g growthRule) String() string {
	return fmt.Sprintf("flagged above +%.0f %% and +%.0f %s", 100*g.rel, g.abs, g.unit)
}

// nodeSample is one reading of a node's resident memory and goroutines.
type nodeSample struct {
	at         time.Duration // since the load started
	rss        float64       // MiB
	goroutines float64
}

// windowMedians returns the medians of the samples taken in [from, to),
// and how many there were.
func windowMedians(samples []nodeSample, from, to time.Duration) (rss, goroutines float64, n int) {
	var r, g []float64
	for _, s := range samples {
		if s.at >= from && s.at < to {
			r = append(r, s.rss)
			g = append(g, s.goroutines)
		}
	}
	return median(r), median(g), len(r)
}

// soakWindows are where the soak reads its start and end figures: the
// window after warm-up (the first sixth of the run, 10 s to 2 min) and the
// last window of the run (a tenth of it, 6 s to 1 min).
func soakWindows(d time.Duration) (warmup, window time.Duration) {
	return min(max(d/6, 10*time.Second), 2*time.Minute), min(max(d/10, 6*time.Second), time.Minute)
}
