package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestE2EThrottle covers login throttling per account and per address.
func TestE2EThrottle(t *testing.T) {
	t.Parallel()

	t.Run("account", func(t *testing.T) {
		t.Parallel()
		s := e2eStart(t)

		t.Run("consecutive failures", func(t *testing.T) {
			email := e2eEmail("throttled")
			s.register(t, email, e2ePassword)
			limited := 0
			for i := 1; i <= 10; i++ {
				r := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "wrong guess"})
				if r.status == http.StatusTooManyRequests {
					r.want(t, http.StatusTooManyRequests, "rate_limited")
					e2eRetryAfter(t, r)
					limited = i
					break
				}
				r.want(t, http.StatusUnauthorized, "invalid_credentials")
			}
			if limited != 6 {
				t.Fatalf("first 429 at consecutive wrong password %d of 10 for one account, want 6: exactly after --login-account-limit 5 (0 = never)", limited)
			}
			for _, e := range []string{email, strings.ToUpper(email), " " + email} {
				r := s.do(t, "POST", "/v1/session", map[string]string{"email": e, "password": e2ePassword}).
					want(t, http.StatusTooManyRequests, "rate_limited")
				e2eRetryAfter(t, r)
				if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
					t.Errorf("throttled login set a cookie: %q", sc)
				}
			}
			// The throttle is the account's, not the address's.
			s.newUser(t, "bystander")
		})

		t.Run("30 in parallel", func(t *testing.T) {
			email := e2eEmail("parallel")
			s.register(t, email, e2ePassword)
			var (
				mu     sync.Mutex
				counts = map[int]int{}
				wg     sync.WaitGroup
			)
			for range 30 {
				wg.Go(func() {
					r, err := s.send(t, "POST", "/v1/session", map[string]string{"email": email, "password": "wrong guess"})
					if err != nil {
						t.Error(err)
						return
					}
					if r.status == http.StatusTooManyRequests {
						e2eRetryAfter(t, r)
					}
					mu.Lock()
					counts[r.status]++
					mu.Unlock()
				})
			}
			wg.Wait()
			t.Logf("statuses: %v", counts)
			if counts[401] > 10 {
				t.Errorf("%d of 30 parallel wrong passwords were checked (401), want at most 10", counts[401])
			}
			// 503: no hashing slot came free in time (a loaded machine); such
			// an attempt checked nothing and counts for nothing.
			if counts[401]+counts[429]+counts[503] != 30 {
				t.Errorf("statuses %v, want only 401, 429 and 503", counts)
			}
			// An attempt turned away busy was taken back from the count, so
			// the account may be short of its limit even after some 429s:
			// more wrong guesses lock it, within 10 checked in all.
			checked := counts[401]
			for tries := 0; tries < 40; tries++ {
				r := s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": "wrong guess"})
				if r.status == http.StatusServiceUnavailable {
					continue
				}
				if r.status == http.StatusTooManyRequests {
					break
				}
				r.want(t, http.StatusUnauthorized, "invalid_credentials")
				if checked++; checked > 10 {
					t.Fatalf("%d wrong passwords checked (401) for one account, want 429 within 10", checked)
				}
			}
			s.do(t, "POST", "/v1/session", map[string]string{"email": email, "password": e2ePassword}).
				want(t, http.StatusTooManyRequests, "rate_limited")
		})
	})

	t.Run("X-Forwarded-For ignored", func(t *testing.T) {
		t.Parallel()
		s := e2eStart(t, "--login-address-limit", "5")
		limited := 0
		for i := 1; i <= 8; i++ {
			r := s.do(t, "POST", "/v1/session", map[string]string{"email": e2eEmail("spoof"), "password": "wrong guess"},
				e2eHeader("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)),
				e2eHeader("X-Real-IP", fmt.Sprintf("198.51.100.%d", i)))
			if r.status == http.StatusTooManyRequests {
				r.want(t, http.StatusTooManyRequests, "rate_limited")
				e2eRetryAfter(t, r)
				limited = i
				break
			}
			r.want(t, http.StatusUnauthorized, "invalid_credentials")
		}
		if limited != 6 {
			t.Errorf("per-address limit 5 with a new X-Forwarded-For each time: first 429 at attempt %d, want 6 (0 = never)", limited)
		}
	})

	t.Run("X-Forwarded-For from a trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := e2eStart(t, "--login-address-limit", "5", "--trusted-proxies", "127.0.0.1/32")
		for i := 1; i <= 7; i++ {
			s.do(t, "POST", "/v1/session", map[string]string{"email": e2eEmail("proxied"), "password": "wrong guess"},
				e2eHeader("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))).
				want(t, http.StatusUnauthorized, "invalid_credentials")
		}
		limited := 0
		for i := 1; i <= 7; i++ {
			r := s.do(t, "POST", "/v1/session", map[string]string{"email": e2eEmail("proxied"), "password": "wrong guess"},
				e2eHeader("X-Forwarded-For", "198.51.100.7"))
			if r.status == http.StatusTooManyRequests {
				limited = i
				break
			}
			r.want(t, http.StatusUnauthorized, "invalid_credentials")
		}
		if limited != 6 {
			t.Errorf("per-address limit 5 for one forwarded client: first 429 at attempt %d, want 6 (0 = never)", limited)
		}
		email := e2eEmail("proxied")
		s.register(t, email, e2ePassword)
		l := s.login(t, email, e2ePassword, e2eHeader("X-Forwarded-For", "192.0.2.44"))
		list, _ := s.do(t, "GET", "/v1/sessions", nil, e2eCookie(l.cookie)).want(t, http.StatusOK).json(t)["sessions"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["ip"] != "192.0.2.44" {
			t.Errorf("sessions %v: want the forwarded client address 192.0.2.44", list)
		}
	})
}

// TestE2ECSRF covers cross-origin refusal of cookie-authenticated state
// changes, and CORS.
func TestE2ECSRF(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--allowed-origins", "https://app.test")
	email, victim := s.newUser(t, "csrf")
	other := s.login(t, email, e2ePassword)
	self := "http://" + s.host

	hostile := []struct {
		name string
		opts []e2eOpt
	}{
		{"Origin evil", []e2eOpt{e2eHeader("Origin", "https://evil.test")}},
		{"Sec-Fetch-Site cross-site", []e2eOpt{e2eHeader("Sec-Fetch-Site", "cross-site")}},
		{"Sec-Fetch-Site same-site", []e2eOpt{e2eHeader("Sec-Fetch-Site", "same-site")}},
		{"Origin null", []e2eOpt{e2eHeader("Origin", "null")}},
		{"Origin evil and cross-site", []e2eOpt{e2eHeader("Origin", "https://evil.test"), e2eHeader("Sec-Fetch-Site", "cross-site")}},
		{"Origin on another port", []e2eOpt{e2eHeader("Origin", "http://127.0.0.1:1")}},
		{"Origin extending an allowed one", []e2eOpt{e2eHeader("Origin", "https://app.test.evil.test")}},
	}
	t.Run("refused", func(t *testing.T) {
		for _, h := range hostile {
			for _, ep := range []struct{ method, path string }{
				{"DELETE", "/v1/session"},
				{"DELETE", "/v1/sessions"},
				{"DELETE", "/v1/sessions/" + other.sessionID},
				{"POST", "/v1/password"},
			} {
				var body any
				if ep.method == "POST" {
					body = map[string]string{"current_password": e2ePassword, "new_password": "attacker's choice 1"}
				}
				r := s.do(t, ep.method, ep.path, body, append([]e2eOpt{e2eCookie(victim.cookie)}, h.opts...)...)
				if r.status != http.StatusForbidden || r.errorCode() != "csrf" {
					t.Errorf("%s %s with %s: %d %s, want 403 csrf", ep.method, ep.path, h.name, r.status, r.body)
				}
			}
		}
		s.wantAlive(t, victim.cookie, "the victim's session after refused cross-origin requests")
		s.wantAlive(t, other.cookie, "the victim's other session after refused cross-origin requests")
		s.login(t, email, e2ePassword) // the password did not change
	})

	t.Run("GET is not refused", func(t *testing.T) {
		for _, h := range hostile {
			s.do(t, "GET", "/v1/session", nil, append([]e2eOpt{e2eCookie(victim.cookie)}, h.opts...)...).want(t, http.StatusOK)
			s.do(t, "GET", "/v1/sessions", nil, append([]e2eOpt{e2eCookie(victim.cookie)}, h.opts...)...).want(t, http.StatusOK)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		for _, h := range []struct {
			name string
			opts []e2eOpt
		}{
			{"neither header (curl)", nil},
			{"same-origin Origin", []e2eOpt{e2eHeader("Origin", self)}},
			{"Sec-Fetch-Site same-origin", []e2eOpt{e2eHeader("Sec-Fetch-Site", "same-origin")}},
			{"same-origin Origin and Sec-Fetch-Site", []e2eOpt{e2eHeader("Origin", self), e2eHeader("Sec-Fetch-Site", "same-origin")}},
			{"Sec-Fetch-Site none", []e2eOpt{e2eHeader("Sec-Fetch-Site", "none")}},
			{"allowed origin", []e2eOpt{e2eHeader("Origin", "https://app.test")}},
			{"allowed origin, cross-site", []e2eOpt{e2eHeader("Origin", "https://app.test"), e2eHeader("Sec-Fetch-Site", "cross-site")}},
		} {
			s.do(t, "DELETE", "/v1/sessions", nil, append([]e2eOpt{e2eCookie(victim.cookie)}, h.opts...)...).want(t, http.StatusNoContent)
		}
		s.do(t, "DELETE", "/v1/session", nil, e2eCookie(victim.cookie), e2eHeader("Origin", "https://app.test"),
			e2eHeader("Sec-Fetch-Site", "cross-site")).want(t, http.StatusNoContent)
		s.wantDead(t, victim.cookie, "after an allowed logout")
	})

	t.Run("CORS", func(t *testing.T) {
		pre := func(origin string) e2eResp {
			return s.do(t, "OPTIONS", "/v1/session", nil, e2eHeader("Origin", origin),
				e2eHeader("Access-Control-Request-Method", "DELETE"),
				e2eHeader("Access-Control-Request-Headers", "content-type"))
		}
		r := pre("https://app.test")
		if r.status < 200 || r.status > 299 {
			t.Errorf("preflight from the allowed origin: status %d, want 2xx", r.status)
		}
		if v := r.header.Values("Access-Control-Allow-Origin"); len(v) != 1 || v[0] != "https://app.test" {
			t.Errorf("preflight from the allowed origin: Access-Control-Allow-Origin %q, want exactly https://app.test", v)
		}
		if v := r.header.Get("Access-Control-Allow-Credentials"); v != "true" {
			t.Errorf("preflight from the allowed origin: Access-Control-Allow-Credentials %q, want true", v)
		}
		if !e2eVary(r.header, "Origin") {
			t.Errorf("preflight: Vary %q does not include Origin", r.header.Values("Vary"))
		}
		for _, o := range []string{"https://evil.test", "null", "https://app.test.evil.test", "https://APP.test", "https://app.test/", "http://app.test", self} {
			r := pre(o)
			if v := r.header.Values("Access-Control-Allow-Origin"); len(v) > 0 {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want none", o, v)
			}
			if v := r.header.Get("Access-Control-Allow-Credentials"); v != "" {
				t.Errorf("preflight from %s: Access-Control-Allow-Credentials %q, want none", o, v)
			}
		}
		g := s.do(t, "GET", "/healthz", nil, e2eHeader("Origin", "https://app.test")).want(t, http.StatusOK)
		if v := g.header.Get("Access-Control-Allow-Origin"); v != "https://app.test" {
			t.Errorf("GET from the allowed origin: Access-Control-Allow-Origin %q, want https://app.test", v)
		}
		if !e2eVary(g.header, "Origin") {
			t.Errorf("GET: Vary %q does not include Origin", g.header.Values("Vary"))
		}
		g = s.do(t, "GET", "/healthz", nil, e2eHeader("Origin", "https://evil.test")).want(t, http.StatusOK)
		if v := g.header.Values("Access-Control-Allow-Origin"); len(v) > 0 {
			t.Errorf("GET from an unknown origin: Access-Control-Allow-Origin %q, want none", v)
		}
	})
}

// TestE2EHashFlood floods a server that computes one hash at a time, with
// at most two waiting, with 45 registrations and logins at once: every
// answer is the normal one or 503 unavailable with Retry-After, some are
// 503 (the bound holds: the 46th caller is not queued behind the 45th),
// and the server works normally afterwards.
func TestE2EHashFlood(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--hash-concurrency", "1", "--hash-queue", "2")
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		wg     sync.WaitGroup
	)
	note := func(kind string, r e2eResp, normal int) {
		switch r.status {
		case normal:
		case http.StatusServiceUnavailable:
			r.want(t, http.StatusServiceUnavailable, "unavailable")
			e2eRetryAfter(t, r)
			if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("503 set a cookie: %q", sc)
			}
		default:
			t.Errorf("%s during a hash flood: %d %s, want %d or 503", kind, r.status, r.body, normal)
		}
		mu.Lock()
		counts[kind+" "+http.StatusText(r.status)]++
		mu.Unlock()
	}
	for i := range 45 {
		wg.Go(func() {
			kind, path, normal, email, password := "register", "/v1/users", http.StatusCreated, e2eEmail("flood"), e2ePassword
			if i%3 == 2 {
				kind, path, normal, email, password = "login", "/v1/session", http.StatusUnauthorized, e2eEmail("ghost"), "wrong guess"
			}
			r, err := s.send(t, "POST", path, map[string]string{"email": email, "password": password})
			if err != nil {
				t.Errorf("%s during a hash flood: %v", kind, err)
				return
			}
			note(kind, r, normal)
		})
	}
	wg.Wait()
	if counts["register Service Unavailable"]+counts["login Service Unavailable"] == 0 {
		t.Errorf("45 hashing requests at once against one slot and a queue of 2: no 503, so nothing bounds the queue; outcomes %v", counts)
	}
	if counts["register Created"]+counts["login Unauthorized"] == 0 {
		t.Errorf("45 hashing requests at once: none was served; outcomes %v", counts)
	}
	s.do(t, "GET", "/readyz", nil).want(t, http.StatusOK)
	s.do(t, "POST", "/v1/session", map[string]string{"email": e2eEmail("ghost"), "password": "wrong guess"}).
		want(t, http.StatusUnauthorized, "invalid_credentials")
	s.newUser(t, "afterflood")
}
