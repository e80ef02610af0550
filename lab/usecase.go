package lab

import (
	"fmt"
	"strings"
)

// figure returns the value of the first figure of row whose name starts
// with prefix.
func (r *labRun) figure(row, prefix string) (Figure, bool) {
	for _, f := range r.res.Figures {
		if f.Row == row && strings.HasPrefix(f.Name, prefix) {
			return f, true
		}
	}
	return Figure{}, false
}

// useCase fills the use-case row from what the other rows measured: the
// recommendation the numbers support, with the numbers it rests on.
func useCase(r *labRun) {
	row := r.row("use-case")
	first := r.stores[0]
	var said []string
	var recs []string
	verdict := "Choose by client: cookie sessions for server-rendered web apps, short-lived tokens for APIs and single-page or mobile apps."
	if c, ok := r.figure("statelessness", "server CPU per cookie request (GET /v1/session), "+first); ok {
		if b, ok := r.figure("statelessness", "server CPU per bearer request (GET /v1/userinfo), "+first); ok {
			ratio := b.Value / c.Value
			r.add("use-case", "bearer ÷ cookie server CPU per request, "+first, "ratio", ratio, "cookie request")
			said = append(said, fmt.Sprintf("a bearer request costs %.2f× a cookie request's CPU on %s", ratio, first))
			if ratio > 0.8 {
				verdict = "Choose by client, not by speed (per request the two cost about the same here): cookie sessions for server-rendered web apps, short-lived tokens for APIs and single-page or mobile apps."
			} else {
				verdict = "Choose by client; where requests are many and CPU is tight, bearer tokens save server CPU here: cookie sessions for server-rendered web apps, short-lived tokens for APIs and single-page or mobile apps."
			}
		}
	}
	if c, ok := r.figure("storage", "request header bytes, session cookie"); ok {
		if b, ok := r.figure("storage", "request header bytes, bearer token, EdDSA"); ok {
			r.add("use-case", "bearer (EdDSA) ÷ cookie header bytes", "ratio", b.Value/c.Value, "session cookie header")
			said = append(said, fmt.Sprintf("a bearer header is %.1f× the cookie's bytes", b.Value/c.Value))
		}
	}
	if a, ok := r.figure("revocation", "time to first refusal, token with expiry alone"); ok {
		r.add("use-case", "how long a revoked token lives for a JWKS-only upstream", "s", a.Value, a.Baseline, *a.BaselineValue)
		said = append(said, fmt.Sprintf("a revoked token stays valid %.1f s for an upstream that checks only the JWKS (its TTL)", a.Value))
		recs = append(recs, "Give upstreams that verify tokens alone a short --access-token-ttl, or have them ask Sesame (forward auth, /v1/userinfo) when revocation must be immediate.")
	}
	if o, ok := r.figure("revocation", "time to first refusal p99, token, with the revocation feed, other node"); ok {
		r.add("use-case", "revocation p99 on another node, token with the feed", "ms", o.Value, "")
		said = append(said, fmt.Sprintf("revocation reached another node in %.1f ms (p99)", o.Value))
	}
	recs = append(recs,
		"A server-rendered web app on one domain: the session cookie (HttpOnly, SameSite, CSRF-checked), nothing for scripts to steal.",
		"A single-page or mobile app, or a service calling APIs: tokens, with the refresh token in an HttpOnly cookie for browsers, kept short-lived.")
	if len(said) == 0 {
		row.Measured = "Not enough rows measured in this run to support a recommendation (--only)."
		row.Verdict = "—"
		return
	}
	row.Measured = "Here " + strings.Join(said, "; ") + "."
	row.Verdict = verdict
	row.Notes = append(recs, "Read off the other rows of this run; rerun the whole lab to recompute it.")
	row.Command = r.rerun("storage,statelessness,revocation")
}
