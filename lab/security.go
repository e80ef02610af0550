package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// defence is one exposure of the security row: what an attacker could
// do, to which approach, what Sesame does about it, and the tests in this
// repository that prove the defence holds (package directory and test
// name; lab's TestDefenceTestsExist checks that each exists).
type defence struct {
	threat, approach, exposure, defence string
	tests                               []string
}

var defences = []defence{
	{"CSRF", "session cookie", "A browser sends the cookie with any request to Sesame, including one a hostile page starts.",
		"SameSite=Lax, and every state-changing request carrying the cookie is refused with 403 csrf when Sec-Fetch-Site or Origin says it comes from another origin (not listed in --allowed-origins), before the store is asked.",
		[]string{"cmd/sesame TestE2ECSRF", "httpauth TestCrossOriginBeforeStore"}},
	{"CSRF", "bearer token", "None by itself: a browser never adds an Authorization header on its own, and CORS does not let another origin send one unless --allowed-origins lists it.",
		"The access token is read only from the Authorization header, never from a query string or a cookie.",
		[]string{"cmd/sesame TestTokenUserinfo"}},
	{"XSS", "session cookie", "A script injected into the page cannot read the cookie (HttpOnly), but can send requests that carry it while the page is open.",
		"HttpOnly; Secure; the __Host- prefix; an opaque 256-bit identifier of which the store keeps only a hash.",
		[]string{"cmd/sesame TestE2ELogin", "cmd/sesame TestE2EForgedCookies"}},
	{"XSS", "bearer token", "A script injected into a page that holds the access token can read it and use it elsewhere until it expires or its family is revoked.",
		"Short-lived access tokens (10 min by default); refresh-token reuse detection ends the family; a revoked family's tokens are refused at once by Sesame.",
		[]string{"cmd/sesame TestTokenRefresh", "cmd/sesame TestTokenMultiNode", "token TestRevocation"}},
	{"Forgery", "bearer token", "Anyone can write a JWT: alg none, HMAC with the public key, keys named in jku/jwk/x5u headers, unknown kid.",
		"Only the configured algorithm and the server's own keys are accepted.",
		[]string{"cmd/sesame TestTokenForgery", "token TestAttacks"}},
}

// securityStep measures the security row against the real server: the
// session cookie's attributes, a cross-site request carrying the cookie,
// a CORS preflight from an unlisted origin asking to send Authorization,
// and what a script can read.
func securityStep(ctx context.Context, r *labRun) error {
	row := r.row("security")
	kind := r.stores[0]
	r.progress("security: sesame serve on %s: cookie attributes, cross-site requests, CORS", kind)
	p, stop, err := r.server(kind).start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := register(ctx, p.base); err != nil {
		return err
	}
	// The login's Set-Cookie.
	resp, err := postJSON(ctx, p.base+"/v1/session", map[string]string{"email": labEmail, "password": labPassword})
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return answerError("login", resp, body)
	}
	var raw, cookie string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "__Host-sesame=") {
			raw = v
			cookie, _, _ = strings.Cut(v, ";")
		}
	}
	if raw == "" {
		return fmt.Errorf("login: no __Host-sesame cookie in %q", resp.Header.Values("Set-Cookie"))
	}
	attrs := strings.ToLower(raw)
	checks := []struct {
		name string
		ok   bool
	}{
		{"HttpOnly", strings.Contains(attrs, "; httponly")},
		{"Secure", strings.Contains(attrs, "; secure")},
		{"SameSite=Lax", strings.Contains(attrs, "; samesite=lax")},
		{"Path=/", strings.Contains(attrs, "; path=/")},
		{"no Domain", !strings.Contains(attrs, "; domain=")},
	}
	present := 0
	var missing []string
	for _, c := range checks {
		if c.ok {
			present++
		} else {
			missing = append(missing, c.name)
		}
	}
	r.add("security", "session cookie attributes present (HttpOnly, Secure, SameSite=Lax, Path=/, no Domain)", "of 5", float64(present), "API.md", 5)

	// A cross-site request carrying the cookie, as a hostile page's form
	// would send it, then the same from no origin at all (curl).
	do := func(method, path string, hdr map[string]string) (int, http.Header, error) {
		req, err := http.NewRequestWithContext(ctx, method, p.base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header, nil
	}
	cross, _, err := do(http.MethodDelete, "/v1/session", map[string]string{"Cookie": cookie, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if err != nil {
		return err
	}
	stillOK, _, err := do(http.MethodGet, "/v1/session", map[string]string{"Cookie": cookie})
	if err != nil {
		return err
	}
	same, _, err := do(http.MethodDelete, "/v1/session", map[string]string{"Cookie": cookie})
	if err != nil {
		return err
	}
	r.add("security", "status of a cross-site DELETE /v1/session carrying the cookie", "HTTP status", float64(cross), "the same request from no origin", float64(same))
	r.add("security", "status of GET /v1/session after that cross-site attempt", "HTTP status", float64(stillOK), "")

	// A CORS preflight from an unlisted origin, asking to send
	// Authorization: a browser sends the real request only if allowed.
	_, h, err := do(http.MethodOptions, "/v1/userinfo", map[string]string{"Origin": "https://evil.example",
		"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
	if err != nil {
		return err
	}
	allowed := 0.0
	if h.Get("Access-Control-Allow-Origin") != "" {
		allowed = 1
	}
	r.add("security", "CORS lets an unlisted origin send an Authorization header (1 yes, 0 no)", "yes/no", allowed, "")

	// What a script can read: the access token is in the JSON body by
	// design; the cookie is HttpOnly.
	tk, err := retryBusy(ctx, 10, func() (tokens, error) { t, _, err := passwordGrant(ctx, p.base); return t, err })
	if err != nil {
		return err
	}
	inQuery, _, err := do(http.MethodGet, "/v1/userinfo?access_token="+url.QueryEscape(tk.AccessToken), nil)
	if err != nil {
		return err
	}
	r.add("security", "status of GET /v1/userinfo with the access token in the query string", "HTTP status", float64(inQuery), "")
	httpOnly := 0.0
	if checks[0].ok {
		httpOnly = 1
	}
	r.add("security", "script can read the session cookie (1 yes, 0 no)", "yes/no", 1-httpOnly, "")
	r.add("security", "script can read the access token (1 yes, 0 no)", "yes/no", 1, "")

	t := table{caption: "Exposure per approach, the defence Sesame uses, and the tests in this repository that prove it (go test -run NAME ./PACKAGE)",
		head: []string{"threat", "approach", "exposure", "Sesame's defence", "tests"}}
	for _, d := range defences {
		t.rows = append(t.rows, []string{d.threat, d.approach, d.exposure, d.defence, strings.Join(d.tests, "; ")})
	}
	row.tables = append(row.tables, t)
	m := table{caption: "Measured against the real server", head: []string{"probe", "answer"}}
	cookieAttrs := fmt.Sprintf("%d of 5 present", present)
	if len(missing) > 0 {
		cookieAttrs += " (missing: " + strings.Join(missing, ", ") + ")"
	}
	m.rows = [][]string{
		{"session cookie attributes", cookieAttrs},
		{"cross-site DELETE /v1/session with the cookie", fmt.Sprintf("%d (session still live: GET answered %d)", cross, stillOK)},
		{"the same DELETE with no Origin (curl)", fmt.Sprint(same)},
		{"CORS preflight from https://evil.example asking for Authorization", map[float64]string{0: "not allowed (no Access-Control-Allow-Origin)", 1: "allowed"}[allowed]},
		{"access token in ?access_token=", fmt.Sprint(inQuery)},
	}
	row.tables = append(row.tables, m)
	row.Measured = fmt.Sprintf("The cookie carried %d of 5 protective attributes; a cross-site request with it got %d and left the session live (%d); an unlisted origin may not send Authorization (CORS %s); an access token in a query string got %d. A script can read an access token it holds, never the cookie.",
		present, cross, stillOK, map[float64]string{0: "refused", 1: "allowed"}[allowed], inQuery)
	switch {
	case present == 5 && cross == http.StatusForbidden && stillOK == http.StatusOK && allowed == 0:
		row.Verdict = "True as exposures: cross-site requests with the cookie are refused here, while a token held by a script stays readable by an injected one, bounded only by its lifetime and revocation."
	default:
		row.Verdict = "A defence failed in this run: see the measured probes."
	}
	return nil
}
