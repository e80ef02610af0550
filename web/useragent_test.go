package web_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sesameauth/sesame/web"
)

func TestDescribeUserAgent(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36":                         "Chrome 120 on Windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91":       "Edge 120 on Windows",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0":                                                                  "Firefox 128 on Linux",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15":                   "Safari 17 on macOS",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": "Safari 17 on iPhone",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36":              "Chrome 120 on Android",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36":                           "Headless Chrome 131 on Linux",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36":                          "Chrome 120 on ChromeOS",
		"curl/8.5.0":                "curl 8.5",
		"Go-http-client/1.1":        "Go program",
		"":                          "Unknown device",
		"<script>alert(1)</script>": "Unknown device",
		"Mozilla/5.0 (Windows NT 10.0) <img src=x onerror=alert(1)>": "A browser on Windows",
		"Chrome/<b>9": "Chrome",
	} {
		if got := web.DescribeUserAgent(ua); got != want {
			t.Errorf("DescribeUserAgent(%q) = %q, want %q", ua, got, want)
		}
	}
}

// FuzzDescribeUserAgent checks that no header makes the description carry
// anything but words of the vocabulary, digits, dots and spaces.
func FuzzDescribeUserAgent(f *testing.F) {
	f.Add("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36")
	f.Add("curl/8.5.0")
	f.Add("Version/17 Safari/1 iPhone")
	f.Fuzz(func(t *testing.T, ua string) {
		d := web.DescribeUserAgent(ua)
		if !utf8.ValidString(d) || len(d) > 64 || d == "" {
			t.Fatalf("DescribeUserAgent(%q) = %q", ua, d)
		}
		if strings.ContainsFunc(d, func(r rune) bool {
			return !(r == ' ' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) {
			t.Fatalf("DescribeUserAgent(%q) = %q: a character outside the vocabulary", ua, d)
		}
	})
}
