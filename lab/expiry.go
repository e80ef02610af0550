package lab

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/token"
)

// expiryStep measures the expiration row: how exactly the server ends an
// idle session, and how exactly an access token stops working at its
// exp, both on Sesame and on a verifier that has only the JWKS.
func expiryStep(ctx context.Context, r *labRun) error {
	row := r.row("expiration")
	const idle, ttl = 2 * time.Second, 2 * time.Second
	k, nTok := 30, 6
	if r.quick {
		k, nTok = 12, 3
	}
	kind := r.stores[0]
	r.progress("expiration: sesame serve on %s, --session-idle-timeout %s --access-token-ttl %s --token-leeway 0s", kind, idle, ttl)
	p, stop, err := r.server(kind, "--session-idle-timeout", idle.String(), "--access-token-ttl", ttl.String(), "--token-leeway", "0s").start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := register(ctx, p.base); err != nil {
		return err
	}

	// Idle timeout: each session is asked once, at its own offset after
	// its login (the last use), from 0.2 s before the timeout to 0.2 s
	// after; a request that is answered 200 would itself be a use.
	r.progress("expiration: %d sessions, each asked once between %s and %s after its last use", k, idle-200*time.Millisecond, idle+200*time.Millisecond)
	type probe struct {
		offset time.Duration
		ok     bool
	}
	probes := make([]probe, k)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	sem := make(chan struct{}, 2) // two logins at a time: each waits on a password hash
	for i := range k {
		off := idle - 200*time.Millisecond + time.Duration(i)*400*time.Millisecond/time.Duration(k-1)
		probes[i].offset = off
		wg.Go(func() {
			sem <- struct{}{}
			cookie, err := retryBusy(ctx, 10, func() (string, error) { return logIn(ctx, p.base) })
			<-sem
			if err != nil {
				fail(err)
				return
			}
			used := time.Now()
			select {
			case <-time.After(time.Until(used.Add(off))):
			case <-ctx.Done():
				return
			}
			code, err := status(ctx, http.MethodGet, p.base+"/v1/session", "Cookie", cookie)
			if err != nil {
				fail(err)
				return
			}
			switch code {
			case http.StatusOK:
				probes[i].ok = true
			case http.StatusUnauthorized:
			default:
				fail(fmt.Errorf("GET /v1/session after %s idle: %d", off, code))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	lastOK, firstRefused := time.Duration(-1), time.Duration(-1)
	var okPts, refusedPts []xy
	for _, q := range probes {
		ms := float64(q.offset) / float64(time.Millisecond)
		if q.ok {
			okPts = append(okPts, xy{ms, 1})
			lastOK = max(lastOK, q.offset)
		} else {
			refusedPts = append(refusedPts, xy{ms, 0})
			if firstRefused < 0 || q.offset < firstRefused {
				firstRefused = q.offset
			}
		}
	}
	if firstRefused < 0 {
		return fmt.Errorf("no session was refused even %s after its last use, with --session-idle-timeout %s", idle+200*time.Millisecond, idle)
	}
	idleMs := float64(idle) / float64(time.Millisecond)
	r.add("expiration", "idle timeout: shortest idle refused", "ms", float64(firstRefused)/float64(time.Millisecond), "configured --session-idle-timeout", idleMs)
	if lastOK >= 0 {
		r.add("expiration", "idle timeout: longest idle still accepted", "ms", float64(lastOK)/float64(time.Millisecond), "configured --session-idle-timeout", idleMs)
	}
	row.plots = append(row.plots, scatterPlot("Idle timeout: one request per session, after N ms idle (1 = accepted, 0 = refused)",
		"ms since the session's last use", "answer", []series{{"200 accepted", okPts}, {"401 refused", refusedPts}}))

	// Token expiry.
	r.progress("expiration: %d access tokens, each asked every 5 ms around its exp", nTok)
	rv, err := httpauth.NewRemoteVerifier(ctx, p.base, p.base, httpauth.WithVerifyOptions(token.WithLeeway(0)))
	if err != nil {
		return fmt.Errorf("JWKS-only verifier: %w", err)
	}
	type watched struct {
		access           string
		issued, exp      time.Time
		sesame, jwksOnly time.Time // first refusals
		lastOK           time.Time // Sesame's last 200
	}
	var toks []*watched
	for range nTok {
		tk, err := retryBusy(ctx, 10, func() (tokens, error) { t, _, err := passwordGrant(ctx, p.base); return t, err })
		if err != nil {
			return err
		}
		exp, err := expOf(tk.AccessToken)
		if err != nil {
			return err
		}
		toks = append(toks, &watched{access: tk.AccessToken, issued: time.Now(), exp: exp})
	}
	deadline := time.Now().Add(ttl + 5*time.Second)
	for {
		done := true
		for _, t := range toks {
			if time.Now().Before(t.exp.Add(-300 * time.Millisecond)) {
				done = false
				continue
			}
			if t.sesame.IsZero() {
				done = false
				code, err := status(ctx, http.MethodGet, p.base+"/v1/userinfo", "Authorization", "Bearer "+t.access)
				if err != nil {
					return err
				}
				if code == http.StatusUnauthorized {
					t.sesame = time.Now()
				} else if code == http.StatusOK {
					t.lastOK = time.Now()
				} else {
					return fmt.Errorf("GET /v1/userinfo near exp: %d", code)
				}
			}
			if t.jwksOnly.IsZero() {
				done = false
				if _, err := rv.Verify(ctx, t.access); err != nil {
					t.jwksOnly = time.Now()
				}
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("an access token was still accepted 5 s after its TTL")
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var afterExp, afterExpJWKS, lifetimes []float64
	lateOK := math.Inf(-1) // the latest 200 relative to exp, in ms
	for _, t := range toks {
		if !t.lastOK.IsZero() {
			lateOK = max(lateOK, float64(t.lastOK.Sub(t.exp))/float64(time.Millisecond))
		}
		afterExp = append(afterExp, float64(t.sesame.Sub(t.exp))/float64(time.Millisecond))
		afterExpJWKS = append(afterExpJWKS, float64(t.jwksOnly.Sub(t.exp))/float64(time.Millisecond))
		lifetimes = append(lifetimes, t.sesame.Sub(t.issued).Seconds())
	}
	r.add("expiration", "access token: first refusal after its exp, Sesame", "ms", median(afterExp), "the token's exp claim", 0)
	r.add("expiration", "access token: first refusal after its exp, JWKS-only verifier", "ms", median(afterExpJWKS), "the token's exp claim", 0)
	r.add("expiration", "access token: issue → first refusal", "s", median(lifetimes), "configured --access-token-ttl", ttl.Seconds())
	if !math.IsInf(lateOK, -1) {
		r.add("expiration", "access token: latest acceptance by Sesame relative to its exp (≤ 0: never after)", "ms", lateOK, "the token's exp claim", 0)
	}

	t := table{caption: "How exactly each deadline is kept",
		head: []string{"deadline", "enforced by", "configured", "measured"}}
	lastOKs := "none accepted"
	if lastOK >= 0 {
		lastOKs = fmt.Sprintf("%.0f ms", float64(lastOK)/float64(time.Millisecond))
	}
	t.rows = append(t.rows,
		[]string{"session idle timeout", "the server, on every request (the session's last use is in the store)", idle.String(),
			fmt.Sprintf("accepted up to %s idle, refused from %.0f ms", lastOKs, float64(firstRefused)/float64(time.Millisecond))},
		[]string{"access-token expiry", "every verifier, from the token's exp claim (whole seconds)", ttl.String(),
			fmt.Sprintf("refused %.1f ms after exp by Sesame, %.1f ms after by a JWKS-only verifier; %.2f s after issue", median(afterExp), median(afterExpJWKS), median(lifetimes))},
		[]string{"session absolute timeout", "the server (not measured here: 12 h by default)", "12h", "—"},
	)
	row.tables = append(row.tables, t)
	row.Measured = fmt.Sprintf("A session idle for %s was refused from %.0f ms of idleness (accepted up to %s); an access token was refused %.1f ms after its exp by Sesame and %.1f ms after by a JWKS-only verifier.",
		idle, float64(firstRefused)/float64(time.Millisecond), lastOKs, median(afterExp), median(afterExpJWKS))
	idleErr := math.Abs(float64(firstRefused-idle)) / float64(time.Millisecond)
	switch {
	case lateOK > 0:
		row.Verdict = fmt.Sprintf("A deadline was missed: Sesame accepted a token %.0f ms after its exp.", lateOK)
	case median(afterExp) < 50 && idleErr < 50:
		row.Verdict = "True, and exact to a few milliseconds: the server enforces the session's deadlines, every verifier enforces exp; but a token's lifetime is fixed when it is signed, and only the server can end it sooner (see Revocation)."
	default:
		row.Verdict = fmt.Sprintf("True, and never late (no token accepted after its exp), but this loaded run could only resolve the deadlines to about %.0f ms: the probes themselves were slow.", max(median(afterExp), idleErr))
	}
	row.Notes = append(row.Notes,
		"exp counts whole seconds, so a token lives between TTL − 1 s and TTL after it is issued.",
		"A request answered 200 is itself a use that restarts the idle clock, so each session is asked exactly once.",
		"Idleness is counted from when the lab received the login's answer; the server counts from when it created the session, a little earlier (tens of milliseconds on a loaded machine), so refusals can appear just before the configured timeout here.")
	return nil
}

// status returns the status of one request with one header.
func status(ctx context.Context, method, u, header, value string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, err
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// expOf reads the exp claim of a JWT without verifying it (the lab made
// the request; the server verifies).
func expOf(jwt string) (time.Time, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("access token is not a JWS compact JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, err
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Exp == 0 {
		return time.Time{}, fmt.Errorf("access token has no exp: %v", err)
	}
	return time.Unix(c.Exp, 0), nil
}
