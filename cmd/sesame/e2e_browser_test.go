package main

// The portal and "sesame demo" in real headless Chromium (Debian's
// chromium package), driven by chromedp: sign-in and sign-out, ending a
// session from another device, what scripts can see, cross-origin forms
// and return_to attacks, and both modes of the ABC Bank end to end.
//
// With SESAME_SCREENSHOTS=DIR the tests also write the screenshots the
// README shows (desktop and phone width) into DIR:
//
//	SESAME_SCREENSHOTS=$PWD/docs/img go test -run 'TestBrowser' ./cmd/sesame

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// e2eChromium returns the options that start Chromium, or skips the test
// when it is missing (fails with CI set).
func e2eChromium(t *testing.T) []chromedp.ExecAllocatorOption {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (CI must install it: apt-get install chromium)")
		}
		t.Skip("chromium is not installed; skipping the browser tests")
	}
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1000, 700))
}

// e2eDevice starts a browser of its own (another device, with its own
// cookies and storage) and returns its first tab. Each is a Chromium
// process: headless Chromium refuses tabs in extra browser contexts.
func e2eDevice(t *testing.T, opts []chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// e2eTab returns another tab beside tab, sharing its cookies.
func e2eTab(t *testing.T, tab context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tab)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func e2eRun(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(step, actions...); err != nil {
		var loc, body string
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		chromedp.Run(c, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText.slice(0, 800) : ""`, &body))
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
	}
}

func e2eLocation(t *testing.T, ctx context.Context) string {
	t.Helper()
	var loc string
	e2eRun(t, ctx, "reading the location", chromedp.Location(&loc))
	return loc
}

// e2eSignIn fills Sesame's sign-in form on the current page and submits
// it, then waits for the page it lands on to load.
func e2eSignIn(email, password string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", email, chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		chromedp.Submit("#password", chromedp.ByID),
		chromedp.Sleep(300 * time.Millisecond),
		chromedp.WaitReady("body", chromedp.ByQuery),
	}
}

// e2eScripts reads what any script on the page can: document.cookie,
// localStorage and sessionStorage, as one string.
func e2eScripts(t *testing.T, ctx context.Context) string {
	t.Helper()
	var s string
	e2eRun(t, ctx, "reading what scripts see", chromedp.Evaluate(`document.cookie + "|" + JSON.stringify(Object.entries(localStorage)) + "|" + JSON.stringify(Object.entries(sessionStorage))`, &s))
	return s
}

// e2eCookies returns the browser's cookies for url, as the browser keeps
// them (HttpOnly ones included).
func e2eCookies(t *testing.T, ctx context.Context, u string) []*network.Cookie {
	t.Helper()
	var cs []*network.Cookie
	e2eRun(t, ctx, "reading cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cs, err = network.GetCookies().WithURLs([]string{u}).Do(ctx)
		return err
	}))
	return cs
}

// e2eNoSecretVisible fails if any script could read a value of the
// browser's Sesame cookies (session or refresh), or the access token.
func e2eNoSecretVisible(t *testing.T, ctx context.Context, sesameURL string, extra ...string) {
	t.Helper()
	seen := e2eScripts(t, ctx)
	if seen != `|[]|[]` {
		t.Errorf("scripts can read something: %q (want no cookie and empty storage)", seen)
	}
	for _, c := range e2eCookies(t, ctx, sesameURL) {
		if strings.HasPrefix(c.Name, "__Host-sesame") || strings.HasPrefix(c.Name, "__Secure-sesame") {
			if !c.HTTPOnly || !c.Secure {
				t.Errorf("cookie %s is not HttpOnly and Secure", c.Name)
			}
			if strings.Contains(seen, c.Value) {
				t.Errorf("scripts can read cookie %s", c.Name)
			}
		}
	}
	for _, x := range extra {
		if x != "" && strings.Contains(seen, x) {
			t.Errorf("scripts can read a secret (%d characters)", len(x))
		}
	}
}

var screenshotMu sync.Mutex

// e2eScreenshot writes the page at desktop and phone width into
// $SESAME_SCREENSHOTS/NAME.png and NAME-phone.png, if that is set.
func e2eScreenshot(t *testing.T, ctx context.Context, name string, phone bool) {
	t.Helper()
	e2eScreenshotAt(t, ctx, name, phone, "")
}

// e2eScreenshotAt is e2eScreenshot with the element that selector finds
// at the top of the view ("" for the top of the page).
func e2eScreenshotAt(t *testing.T, ctx context.Context, name string, phone bool, selector string) {
	t.Helper()
	dir := os.Getenv("SESAME_SCREENSHOTS")
	if dir == "" {
		return
	}
	screenshotMu.Lock()
	defer screenshotMu.Unlock()
	var desk, mob []byte
	scroll := `window.scrollTo(0, 0)`
	if selector != "" {
		scroll = `document.querySelector(` + strconv.Quote(selector) + `).scrollIntoView(); window.scrollBy(0, -16)`
	}
	e2eRun(t, ctx, "screenshot "+name,
		chromedp.EmulateViewport(1000, 700), chromedp.Evaluate(scroll, nil), chromedp.Sleep(200*time.Millisecond), chromedp.CaptureScreenshot(&desk))
	if phone {
		e2eRun(t, ctx, "phone screenshot "+name,
			chromedp.EmulateViewport(390, 780, chromedp.EmulateMobile), chromedp.Evaluate(scroll, nil), chromedp.Sleep(200*time.Millisecond), chromedp.CaptureScreenshot(&mob),
			chromedp.EmulateViewport(1000, 700))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), desk, 0o644); err != nil {
		t.Fatal(err)
	}
	if phone {
		if err := os.WriteFile(filepath.Join(dir, name+"-phone.png"), mob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// e2eAttacker serves a page on another loopback origin that posts a form
// to target as soon as it loads (script is allowed on the attacker's own
// page), and returns its URL.
func e2eAttacker(t *testing.T, target string, fields map[string]string) string {
	t.Helper()
	var inputs strings.Builder
	for k, v := range fields {
		fmt.Fprintf(&inputs, `<input type="hidden" name="%s" value="%s">`, k, v)
	}
	page := `<!doctype html><title>win a prize</title><form id="f" method="post" action="` + target + `">` + inputs.String() +
		`</form><script>document.getElementById("f").submit()</script>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func TestBrowserPortal(t *testing.T) {
	browser := e2eChromium(t)
	s := e2eStart(t, "--session-store", "memory")
	email := e2eEmail("browser")
	s.register(t, email, e2ePassword)
	adminEmail := s.createAdmin(t)

	// Device A signs in; the session cookie is HttpOnly, Secure, and no
	// script on the page can read it.
	a := e2eDevice(t, browser)
	e2eRun(t, a, "open /account signed out", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible("#email", chromedp.ByID))
	if loc := e2eLocation(t, a); loc != s.base+"/login?return_to=/account" {
		t.Errorf("/account signed out led to %s", loc)
	}
	e2eScreenshot(t, a, "login", true)
	e2eRun(t, a, "sign in on A", e2eSignIn(email, e2ePassword), chromedp.WaitVisible(`#sessions`, chromedp.ByID))
	if loc := e2eLocation(t, a); loc != s.base+"/account" {
		t.Errorf("signing in led to %s, want /account", loc)
	}
	e2eNoSecretVisible(t, a, s.base)

	// Device B signs in, sees A in its list, and ends it.
	b := e2eDevice(t, browser)
	e2eRun(t, b, "sign in on B", chromedp.Navigate(s.base+"/login"), e2eSignIn(email, e2ePassword), chromedp.WaitVisible(`#sessions`, chromedp.ByID))
	var others int
	e2eRun(t, b, "count B's other sessions", chromedp.Evaluate(`document.querySelectorAll("li.session:not(.current)").length`, &others))
	if others != 1 {
		t.Fatalf("B's /account lists %d other sessions, want 1 (A)", others)
	}
	e2eScreenshot(t, b, "account", true)
	e2eRun(t, b, "end A's session from B", chromedp.Click(`li.session:not(.current) button`, chromedp.ByQuery), chromedp.WaitVisible(`p.notice`, chromedp.ByQuery))
	// A is signed out on its next request.
	e2eRun(t, a, "reload A", chromedp.Reload(), chromedp.WaitVisible("#email", chromedp.ByID))
	if loc := e2eLocation(t, a); !strings.HasPrefix(loc, s.base+"/login") {
		t.Errorf("A after its session ended elsewhere: at %s, want the sign-in page", loc)
	}

	// A page on another loopback origin posting to /logout is refused.
	evil := e2eAttacker(t, s.base+"/logout", map[string]string{"return_to": "/account"})
	e2eRun(t, b, "attacker posts to /logout", chromedp.Navigate(evil), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	var title string
	e2eRun(t, b, "read the refusal", chromedp.Text(`main h1`, &title, chromedp.ByQuery))
	if title != "Request refused" {
		t.Errorf("a cross-origin sign-out form got %q, want the refusal page", title)
	}
	e2eRun(t, b, "B still signed in", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible(`#sessions`, chromedp.ByID))

	// Sign out through the page apps link to.
	e2eRun(t, b, "sign out on B", chromedp.Navigate(s.base+"/logout"), chromedp.Click(`main form button`, chromedp.ByQuery), chromedp.WaitVisible("#email", chromedp.ByID))
	e2eRun(t, b, "B signed out", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible("#email", chromedp.ByID))

	// return_to attacks: the browser stays here; allowed paths are kept.
	c := e2eDevice(t, browser)
	for rt, want := range map[string]string{
		"//evil.test/":                  s.base + "/account",
		"/\\evil.test/":                 s.base + "/account",
		"https:evil.test":               s.base + "/account",
		"javascript:alert(1)":           s.base + "/account",
		"http://127.0.0.1:1@evil.test/": s.base + "/account",
		"/logout":                       s.base + "/logout",
	} {
		e2eRun(t, c, "forget cookies", network.ClearBrowserCookies())
		e2eRun(t, c, "sign in with return_to "+rt, chromedp.Navigate(s.base+"/login?return_to="+url.QueryEscape(rt)), e2eSignIn(email, e2ePassword), chromedp.WaitVisible("main h1", chromedp.ByQuery))
		if loc := e2eLocation(t, c); loc != want {
			t.Errorf("return_to=%q: the browser went to %s, want %s", rt, loc, want)
		}
	}

	// The admin page.
	ad := e2eDevice(t, browser)
	e2eRun(t, ad, "admin signs in", chromedp.Navigate(s.base+"/login?return_to=/admin"), e2eSignIn(adminEmail, e2ePassword), chromedp.WaitVisible("#audit", chromedp.ByID))
	e2eRun(t, ad, "admin finds the user", chromedp.SendKeys("#q", "browser", chromedp.ByID), chromedp.Submit("#q", chromedp.ByID), chromedp.Sleep(300*time.Millisecond), chromedp.WaitVisible("#audit", chromedp.ByID))
	var users string
	e2eRun(t, ad, "read the user list", chromedp.Text(`#users ~ .scroll table`, &users, chromedp.ByQuery))
	if !strings.Contains(users, email) || strings.Contains(users, adminEmail) {
		t.Errorf("admin search for \"browser\" lists %q", users)
	}
	e2eScreenshot(t, ad, "admin", true)

	// The user's view: their sessions and what an admin can do to them,
	// with forms that work without script.
	e2eRun(t, ad, "admin opens the user", chromedp.Click(`#users ~ .scroll table a`, chromedp.ByQuery), chromedp.WaitVisible("#manage", chromedp.ByID))
	e2eScreenshotAt(t, ad, "admin-user", true, `section[aria-labelledby="manage"]`)
	e2eRun(t, ad, "admin disables the user", chromedp.Click(`form[action="/admin/users/disabled"] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//p[contains(@class, "notice")][contains(., "is disabled")]`, chromedp.BySearch))
	s.pageLogin(t, email, e2ePassword, "").wantPage(t, http.StatusUnauthorized)
	e2eRun(t, ad, "admin enables the user", chromedp.Click(`form[action="/admin/users/disabled"] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`//p[contains(@class, "notice")][contains(., "sign in again")]`, chromedp.BySearch))
	// Delete is not sent until its confirmation box is ticked.
	e2eRun(t, ad, "admin presses delete, box not ticked", chromedp.Click(`form[action="/admin/users/delete"] button`, chromedp.ByQuery), chromedp.Sleep(300*time.Millisecond))
	if loc := e2eLocation(t, ad); !strings.Contains(loc, "done=enabled") {
		t.Errorf("an unconfirmed delete left the admin at %s", loc)
	}
	s.login(t, email, e2ePassword) // enabled, not deleted

	// Keyboard alone: Tab from the top reaches the skip link, then the
	// navigation.
	var focused string
	e2eRun(t, ad, "tab to the skip link", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible("#sessions", chromedp.ByID),
		chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.textContent`, &focused))
	if focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}
}

// e2eDemo starts "sesame demo" through run and returns the bank's and
// Sesame's URLs from what it prints.
func e2eDemo(t *testing.T) (bankURL, sesameURL string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	stderr := &e2eLog{}
	go func() {
		done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0"}, e2eNoEnv, strings.NewReader(""), pw, stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo returned %v after its context ended", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop within 30s")
		}
		if strings.Contains(stderr.String(), "panic") {
			t.Errorf("demo log mentions a panic:\n%s", stderr)
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, pr)
	}()
	re := regexp.MustCompile(`^(ABC Bank|Sesame):\s+(http://\S+)/`)
	timeout := time.After(60 * time.Second)
	for bankURL == "" || sesameURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo stopped before printing its URLs; stderr:\n%s", stderr)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				if m[1] == "ABC Bank" {
					bankURL = m[2]
				} else {
					sesameURL = strings.TrimSuffix(m[2], "/login")
				}
			}
		case <-timeout:
			t.Fatalf("demo printed no URLs within 60s; stderr:\n%s", stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return bankURL, sesameURL
}

func e2eBalance(t *testing.T, ctx context.Context, account string) string {
	t.Helper()
	var v string
	e2eRun(t, ctx, "read the "+account+" balance", chromedp.Text(`td[data-account="`+account+`"]`, &v, chromedp.ByQuery))
	return v
}

func TestBrowserDemo(t *testing.T) {
	browser := e2eChromium(t)
	bankURL, sesameURL := e2eDemo(t)
	if u, _ := url.Parse(sesameURL); u == nil || u.Hostname() != "127.0.0.1" {
		t.Fatalf("Sesame at %q, want 127.0.0.1 beside the bank", sesameURL)
	}
	if _, _, err := net.SplitHostPort(strings.TrimPrefix(bankURL, "http://")); err != nil {
		t.Fatal(err)
	}

	t.Run("session mode", func(t *testing.T) {
		tab := e2eDevice(t, browser)
		e2eRun(t, tab, "open session mode", chromedp.Navigate(bankURL+"/session/"), chromedp.Click("#signin", chromedp.ByID),
			e2eSignIn(demoEmail, demoPassword), chromedp.WaitVisible("#who", chromedp.ByID))
		if loc := e2eLocation(t, tab); loc != bankURL+"/session/" {
			t.Fatalf("signing in through Sesame led to %s, want the bank", loc)
		}
		before := e2eBalance(t, tab, "Savings")
		e2eRun(t, tab, "transfer", chromedp.SendKeys("#amount", "25.50", chromedp.ByID), chromedp.Submit("#amount", chromedp.ByID),
			chromedp.WaitVisible("p.notice", chromedp.ByQuery))
		after := e2eBalance(t, tab, "Savings")
		if before != "$8400.00" || after != "$8425.50" {
			t.Errorf("Savings %s then %s, want $8400.00 then $8425.50", before, after)
		}
		e2eNoSecretVisible(t, tab, sesameURL)
		var panel string
		e2eRun(t, tab, "read the panel", chromedp.Text("aside", &panel, chromedp.ByQuery))
		for _, c := range e2eCookies(t, tab, sesameURL) {
			if strings.Contains(panel, c.Value) {
				t.Errorf("the side panel shows the value of cookie %s", c.Name)
			}
		}
		if !strings.Contains(panel, "43 characters") || !strings.Contains(panel, "Kind") {
			t.Errorf("the panel does not show the cookie's length and the session record:\n%s", panel)
		}
		e2eScreenshot(t, tab, "demo-session", true)

		// Another site's form posting a transfer is refused; nothing moves.
		evil := e2eAttacker(t, bankURL+"/session/transfer", map[string]string{"from": "Savings", "to": "Checking", "amount": "1000"})
		e2eRun(t, tab, "attacker posts a transfer", chromedp.Navigate(evil), chromedp.WaitVisible("main h1", chromedp.ByQuery))
		var msg string
		e2eRun(t, tab, "read the refusal", chromedp.Text("main", &msg, chromedp.ByQuery))
		if !strings.Contains(msg, "another site") {
			t.Errorf("a cross-origin transfer got:\n%s", msg)
		}
		e2eRun(t, tab, "back to the bank", chromedp.Navigate(bankURL+"/session/"), chromedp.WaitVisible("#who", chromedp.ByID))
		if got := e2eBalance(t, tab, "Savings"); got != "$8425.50" {
			t.Errorf("Savings %s after a refused cross-origin transfer, want $8425.50", got)
		}

		// End this session from Sesame's /account in another tab: the
		// bank refuses the next request.
		other := e2eTab(t, tab)
		e2eRun(t, other, "end the session on /account", chromedp.Navigate(sesameURL+"/account"), chromedp.WaitVisible("#sessions", chromedp.ByID),
			chromedp.Click(`li.session.current button`, chromedp.ByQuery), chromedp.WaitVisible("#email", chromedp.ByID))
		e2eRun(t, tab, "reload the bank", chromedp.Reload(), chromedp.WaitVisible("#signin", chromedp.ByID))
	})

	t.Run("token mode", func(t *testing.T) {
		tab := e2eDevice(t, browser)
		e2eRun(t, tab, "open token mode", chromedp.Navigate(bankURL+"/spa/"), chromedp.WaitVisible("#login", chromedp.ByID),
			chromedp.SendKeys("#email", demoEmail, chromedp.ByID), chromedp.SendKeys("#password", demoPassword, chromedp.ByID),
			chromedp.Click("#login button", chromedp.ByQuery), chromedp.WaitVisible("#app", chromedp.ByID), chromedp.WaitVisible(`td[data-account]`, chromedp.ByQuery))
		e2eRun(t, tab, "transfer", chromedp.SendKeys("#amount", "10", chromedp.ByID), chromedp.Click("#transfer button", chromedp.ByQuery),
			chromedp.WaitVisible("#transfermsg.notice", chromedp.ByQuery))
		e2eNoSecretVisible(t, tab, sesameURL)
		var refresh *network.Cookie
		for _, c := range e2eCookies(t, tab, sesameURL+"/v1/token") {
			if c.Name == "__Secure-sesame-refresh" {
				refresh = c
			}
		}
		if refresh == nil || !refresh.HTTPOnly || !refresh.Secure || refresh.SameSite != network.CookieSameSiteStrict || refresh.Path != "/v1/token" || refresh.Domain != "127.0.0.1" {
			t.Fatalf("the refresh cookie in the browser: %+v", refresh)
		}
		var claims string
		e2eRun(t, tab, "wait for the record", chromedp.WaitVisible(`#record dd`, chromedp.ByQuery), chromedp.Sleep(300*time.Millisecond), chromedp.Text("#claims", &claims, chromedp.ByID))
		if !strings.Contains(claims, `"sid"`) || !strings.Contains(claims, demoEmail) {
			t.Errorf("the panel's claims: %q", claims)
		}
		e2eScreenshot(t, tab, "demo-token", true)

		// A reload forgets the access token; the sign-in comes back from
		// the refresh cookie, which rotates.
		e2eRun(t, tab, "reload", chromedp.Reload(), chromedp.WaitVisible("#app", chromedp.ByID), chromedp.WaitVisible(`td[data-account]`, chromedp.ByQuery))
		for _, c := range e2eCookies(t, tab, sesameURL+"/v1/token") {
			if c.Name == "__Secure-sesame-refresh" && c.Value == refresh.Value {
				t.Error("the refresh cookie did not rotate on the silent refresh")
			}
		}
		if got := e2eBalance(t, tab, "Savings"); got == "" {
			t.Error("no balance after the reload")
		}
		e2eNoSecretVisible(t, tab, sesameURL)

		// Sign out: the family ends and the cookie goes; a reload stays
		// signed out.
		e2eRun(t, tab, "sign out", chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login", chromedp.ByID))
		for _, c := range e2eCookies(t, tab, sesameURL+"/v1/token") {
			if c.Name == "__Secure-sesame-refresh" {
				t.Error("the refresh cookie is still there after sign-out")
			}
		}
		e2eRun(t, tab, "reload after sign-out", chromedp.Reload(), chromedp.WaitVisible("#login", chromedp.ByID))
	})
}
