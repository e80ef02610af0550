package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesameauth/sesame/httpauth"
	"github.com/sesameauth/sesame/token"
)

// revokeStep measures the revocation row: from the answer to "end this"
// to the first refusal, on the node that ended it and on another node,
// for a cookie session and for a token family (refused through Sesame's
// revocation feed); and for a token checked by expiry alone (a verifier
// that only has the JWKS), which is refused only when it expires.
func revokeStep(ctx context.Context, r *labRun) error {
	row := r.row("revocation")
	n := 200
	if r.quick {
		n = 10
	}
	var undo stops
	defer undo.run()
	var nodes []process
	if r.pgDB != "" {
		r.progress("revocation: starting nodes A and B on one PostgreSQL%s", map[bool]string{true: " + Redis", false: ""}[r.redis != nil])
		var err error
		if nodes, err = r.cluster(ctx, &undo, 2); err != nil {
			return err
		}
	} else {
		r.progress("revocation: no PostgreSQL given; one node on %s (no other node to measure)", r.stores[0])
		p, stop, err := r.server(r.stores[0]).start(ctx)
		if err != nil {
			return err
		}
		undo.add(stop)
		nodes = []process{p}
	}
	a := nodes[0]
	if err := register(ctx, a.base); err != nil {
		return err
	}
	type result struct {
		name string
		res  revokeResult
	}
	var results []result
	t := table{caption: fmt.Sprintf("From the end's answer on node A to the first 401 (%d sessions each; the node is asked back to back)", n),
		head: []string{"what ended", "asked", "p50", "p99", "max", "first request already refused", "never refused within 5 s"}}
	var cdf []series
	p99 := map[string]float64{}
	for _, kindName := range []string{"cookie", "token"} {
		kind := revokeKinds[kindName]
		for i, b := range nodes {
			where := "same node"
			if i > 0 {
				where = "other node"
			}
			r.progress("revocation: %d %s, %s", n, kind.plural, where)
			sessions, err := inParallel(n, 2, func(int) (carrier, error) {
				return retryBusy(ctx, 10, func() (carrier, error) { return kind.make(ctx, a.base) })
			})
			if err != nil {
				return fmt.Errorf("making %s: %w", kind.plural, err)
			}
			res, err := measureRevokes(ctx, kind, a.base, b.base, sessions, 5*time.Second)
			if err != nil {
				return err
			}
			label := map[string]string{"cookie": "session (cookie)", "token": "token, with the revocation feed"}[kindName]
			name := label + ", " + where
			results = append(results, result{name, res})
			q := func(p float64) float64 {
				return float64(res.lat[int(p*float64(len(res.lat)-1)+0.5)]) / float64(time.Millisecond)
			}
			t.rows = append(t.rows, []string{label, where, fmt.Sprintf("%.2f ms", q(.5)), fmt.Sprintf("%.2f ms", q(.99)), fmt.Sprintf("%.2f ms", q(1)),
				fmt.Sprintf("%d of %d", res.firstPoll, len(res.lat)), fmt.Sprint(res.never)})
			base, baseVal := "", []float64{}
			if where == "other node" {
				base, baseVal = label+", same node", []float64{p99[label+", same node"]}
			}
			r.add("revocation", "time to first refusal p50, "+name, "ms", q(.5), "")
			r.add("revocation", "time to first refusal p99, "+name, "ms", q(.99), base, baseVal...)
			r.add("revocation", "never refused within 5 s, "+name, "sessions", float64(res.never), "")
			p99[name] = q(.99)
			pts := make([]xy, len(res.lat))
			for j, l := range res.lat {
				pts[j] = xy{float64(l) / float64(time.Millisecond), 0}
			}
			cdf = append(cdf, series{name, pts})
		}
	}
	row.tables = append(row.tables, t)
	row.plots = append(row.plots, cdfPlot("Revocation latency: end on node A → first 401", cdf))

	// A token checked by expiry alone.
	ttl := 5 * time.Second
	if r.quick {
		ttl = 3 * time.Second
	}
	r.progress("revocation: a token checked by a JWKS-only verifier, --access-token-ttl %s", ttl)
	alone, err := expiryAlone(ctx, r, ttl, 3)
	if err != nil {
		return err
	}
	r.add("revocation", "time to first refusal, token with expiry alone (JWKS-only verifier)", "s", alone, "access-token TTL", ttl.Seconds())
	t2 := table{caption: "A token family revoked at once, its access token then checked by an upstream that has only the JWKS (httpauth.RemoteVerifier)",
		head: []string{"access-token TTL", "revoke → first refusal by the JWKS-only verifier", "revoke → first refusal by Sesame"}}
	t2.rows = append(t2.rows, []string{ttl.String(), fmt.Sprintf("%.2f s", alone), "immediately (the revocation feed)"})
	row.tables = append(row.tables, t2)

	other := ""
	if len(nodes) > 1 {
		other = fmt.Sprintf(" On another node: p99 %.1f ms for the session, %.1f ms for the token.", p99["session (cookie), other node"], p99["token, with the revocation feed, other node"])
	}
	row.Measured = fmt.Sprintf("Ending a session or a token family took effect on the same node within %.2f ms (p99) for the session and %.2f ms for the token.%s A token checked by expiry alone stayed valid %.1f s after its revocation (its TTL was %s; at the default 10m, up to 10 minutes).",
		p99["session (cookie), same node"], p99["token, with the revocation feed, same node"], other, alone, ttl)
	row.Verdict = "False where Sesame checks the token (its revocation feed refuses it as fast as a session); true for an upstream that checks the JWKS alone, where it lives until it expires."
	if len(nodes) == 1 {
		row.Notes = append(row.Notes, "Only one node ran (no PostgreSQL given), so the other-node figures are missing; rerun with --stores including postgres://... for them.")
	}
	row.Notes = append(row.Notes,
		"API.md's promise: on the node that ended it at once, on every other node within a second (p99 ≤ 100 ms). Each session was answered 200 by the asked node just before it was ended, so that node had it cached.")
	return nil
}

// expiryAlone starts a server whose access tokens live ttl, and for each
// of k token families: revokes it at once, checks that Sesame refuses its
// access token, and times how long a JWKS-only verifier still accepts it.
// It returns the median, in seconds.
func expiryAlone(ctx context.Context, r *labRun, ttl time.Duration, k int) (float64, error) {
	p, stop, err := r.server(r.stores[0], "--access-token-ttl", ttl.String(), "--token-leeway", "0s").start(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	if err := register(ctx, p.base); err != nil {
		return 0, err
	}
	rv, err := httpauth.NewRemoteVerifier(ctx, p.base, p.base, httpauth.WithVerifyOptions(token.WithLeeway(0)))
	if err != nil {
		return 0, fmt.Errorf("JWKS-only verifier: %w", err)
	}
	// Made and revoked one after the other, then watched together, so
	// that the wait is one TTL, not k.
	type revokedToken struct {
		access string
		at     time.Time
	}
	var pending []revokedToken
	for range k {
		tk, err := retryBusy(ctx, 10, func() (tokens, error) { t, _, err := passwordGrant(ctx, p.base); return t, err })
		if err != nil {
			return 0, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/token/revoke", strings.NewReader(url.Values{"token": {tk.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		at := time.Now()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("revoke: %s", resp.Status)
		}
		if _, err := get(ctx, p.base+"/v1/userinfo", "Authorization", "Bearer "+tk.AccessToken); err == nil {
			return 0, errors.New("Sesame still accepts a revoked family's access token")
		}
		if _, err := rv.Verify(ctx, tk.AccessToken); err != nil {
			return 0, fmt.Errorf("the JWKS-only verifier refuses a fresh token: %w", err)
		}
		pending = append(pending, revokedToken{tk.AccessToken, at})
	}
	var secs []float64
	for len(pending) > 0 {
		left := pending[:0]
		for _, t := range pending {
			if _, err := rv.Verify(ctx, t.access); err != nil {
				secs = append(secs, time.Since(t.at).Seconds())
				continue
			}
			if time.Since(t.at) > ttl+5*time.Second {
				return 0, fmt.Errorf("the JWKS-only verifier still accepts a token %s after its revocation", time.Since(t.at).Round(time.Second))
			}
			left = append(left, t)
		}
		pending = left
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return median(secs), nil
}
