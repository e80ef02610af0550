package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// sampleResults is a report with every row filled as a run fills it: a
// figure or more each, tables and plots of each kind, for testing the page
// without a two-minute run.
func sampleResults() *Results {
	res := &Results{Machine: machine(), Command: "sesame lab --quick", Quick: true, Stores: []string{"memory", "sqlite"}, Started: time.Now(), Seconds: 61}
	r := &labRun{res: res, rowByID: map[string]*Row{}, quick: true, storeArg: "memory,sqlite", stores: res.Stores}
	for _, row := range rows {
		rw := &Row{ID: row.id, Title: row.title, Textbook: row.textbook, Measured: "measured 42 <here> & there", Verdict: "a verdict", Command: r.rerun(row.id)}
		r.rowByID[row.id] = rw
		res.Rows = append(res.Rows, rw)
	}
	r.add("storage", "server bytes per signed-in user, cookie session, memory", "bytes", 460, "")
	r.add("statelessness", "store reads per cookie request, memory", "reads/request", 1, "")
	r.add("scalability", "throughput, cookie, 1 node(s)", "requests/s", 7600, "bare net/http handler", 8100)
	r.add("expiration", "idle timeout: shortest idle refused", "ms", 2018, "configured --session-idle-timeout", 2000)
	r.add("revocation", "time to first refusal p99, session (cookie), same node", "ms", 0.6, "")
	r.add("security", "status of a cross-site DELETE /v1/session carrying the cookie", "HTTP status", 403, "the same request from no origin", 204)
	r.add("use-case", "bearer ÷ cookie server CPU per request, memory", "ratio", 1.12, "cookie request")
	r.row("storage").plots = append(r.row("storage").plots, barPlot("bars", "bytes", []bar{{"cookie", 460, ""}, {"token, with a <long> name", 757, ""}}))
	r.row("scalability").plots = append(r.row("scalability").plots, linePlot("lines", "nodes", "requests/s", false, []series{{"cookie", []xy{{1, 7600}, {2, 7000}, {3, 6900}}}}))
	r.row("revocation").plots = append(r.row("revocation").plots, cdfPlot("cdf", []series{{"session", []xy{{0.2, 0}, {0.3, 0}, {1.5, 0}}}}))
	r.row("expiration").plots = append(r.row("expiration").plots, scatterPlot("scatter", "ms", "answer", []series{{"ok", []xy{{1990, 1}}}, {"refused", []xy{{2010, 0}}}}))
	r.row("security").tables = append(r.row("security").tables, table{caption: "t", head: []string{"a", "b"}, rows: [][]string{{"<script>alert(1)</script>", "2"}}})
	return res
}

// reportFile returns the report to test: SESAME_LAB_REPORT if set (CI
// points it at the page "sesame lab --quick" just wrote), else the sample
// rendered into a temporary directory.
func reportFile(t *testing.T) string {
	if p := os.Getenv("SESAME_LAB_REPORT"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	page, err := render(sampleResults())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(p, page, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReportHasNoExternalReference reads the page's source for anything
// that would make a browser fetch: a src or href that is not a fragment,
// CSS url() or @import, a script.
func TestReportHasNoExternalReference(t *testing.T) {
	page, err := os.ReadFile(reportFile(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)\s(src|href|xlink:href|action|srcset|poster|data)\s*=\s*["']?[^"'#\s>]`),
		regexp.MustCompile(`(?i)url\(|@import|<script|<link|<iframe|<object|<embed`),
	} {
		if m := re.FindString(string(page)); m != "" {
			t.Errorf("report.html holds %q, which a browser would fetch or run", m)
		}
	}
	if strings.Contains(string(page), "<script>alert(1)</script>") {
		t.Error("a table cell is not escaped")
	}
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI must install it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// TestReportInChromium renders the page in headless Chromium at desktop
// and phone width, checks that every row of the table and every row's
// section carries a number, that nothing is fetched from anywhere, and
// that nothing overflows a phone's width. With SESAME_LAB_SCREENSHOTS
// set, it writes the first screen at desktop and phone width there
// (docs/img/ holds them) and the whole page at desktop width.
func TestReportInChromium(t *testing.T) {
	bin := chromiumPath(t)
	file := reportFile(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var fetched []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			if u := e.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
				mu.Lock()
				fetched = append(fetched, u)
				mu.Unlock()
			}
		}
	})
	var (
		tableRows  int
		noNumber   []string
		sectionsOK map[string]int
		svgs       int
		desktop    []byte
		full       []byte
		phone      []byte
		phoneWidth int
	)
	err := chromedp.Run(ctx,
		network.Enable(),
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate("file://"+file),
		chromedp.WaitVisible("#summary", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#summary tbody tr").length`, &tableRows),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#summary tbody tr")).filter(tr => !/\d/.test(tr.querySelector(".measured").textContent)).map(tr => tr.dataset.row)`, &noNumber),
		chromedp.Evaluate(`Object.fromEntries(Array.from(document.querySelectorAll("section[data-row]")).map(s => [s.dataset.row, Array.from(s.querySelectorAll("td.value")).filter(td => td.dataset.value !== "" && isFinite(Number(td.dataset.value))).length]))`, &sectionsOK),
		chromedp.Evaluate(`document.querySelectorAll("figure svg").length`, &svgs),
		chromedp.CaptureScreenshot(&desktop),
		chromedp.FullScreenshot(&full, 100),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible("#summary", chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &phoneWidth),
		chromedp.CaptureScreenshot(&phone),
	)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if tableRows != len(rows) {
		t.Errorf("the table has %d rows, want %d", tableRows, len(rows))
	}
	if len(noNumber) > 0 {
		t.Errorf("table rows without a number in 'Measured here': %v", noNumber)
	}
	for _, row := range rows {
		if sectionsOK[row.id] == 0 {
			t.Errorf("section %s shows no numeric figure", row.id)
		}
	}
	if svgs == 0 {
		t.Error("no plot on the page")
	}
	if phoneWidth > 392 {
		t.Errorf("at 390 px the page is %d px wide: it does not fit a phone", phoneWidth)
	}
	mu.Lock()
	if len(fetched) > 0 {
		t.Errorf("the page made requests: %v", fetched)
	}
	mu.Unlock()
	if dir := os.Getenv("SESAME_LAB_SCREENSHOTS"); dir != "" {
		for name, png := range map[string][]byte{"lab-report-desktop.png": desktop, "lab-report-phone.png": phone, "lab-report-full.png": full} {
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
