package web_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sesameauth/sesame/web"
)

func TestReturnTo(t *testing.T) {
	p, err := web.NewReturnTo("http://127.0.0.1:8080", "example.test", []string{"http://localhost:9000", "HTTPS://App.Other.test:443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{"/", true},
		{"/account", true},
		{"/a/b?c=d#e", true},
		{"/%2F%2Fevil.test", true}, // a path on this server, however it reads
		{"http://127.0.0.1:8080/x", true},
		{"HTTP://127.0.0.1:8080", true},
		{"http://localhost:9000/cb", true},
		{"https://app.other.test/", true},
		{"https://app.other.test:443/", true},
		{"https://example.test/", true},
		{"http://a.b.example.test:8443/p", true},
		{"https://EXAMPLE.test", true},

		{"", false},
		{"account", false},
		{"//evil.test", false},
		{"//evil.test/", false},
		{"/\\evil.test", false},
		{"\\/evil.test", false},
		{"/x\\y", false},
		{"/\t/evil.test", false},
		{"/ /evil.test", false},
		{" /account", false},
		{"/account ", false},
		{"/a\nb", false},
		{"/a\rb", false},
		{"/a\x00b", false},
		{"/a\x7fb", false},
		{"/a\u00a0b", false},
		{"/a\u2028b", false},
		{"/caf\u00e9", false},
		{"http://evil.test", false},
		{"https://127.0.0.1:8080/", false}, // another scheme is another origin
		{"http://127.0.0.1:8081/", false},
		{"http://127.0.0.1/", false},
		{"http://localhost:8080/", false},
		{"http://127.0.0.1:8080@evil.test/", false},
		{"http://user@127.0.0.1:8080/", false},
		{"http://user:pw@127.0.0.1:8080/", false},
		{"http:127.0.0.1:8080/", false},
		{"http:/127.0.0.1:8080/", false},
		{"https:evil.test", false},
		{"javascript:alert(1)", false},
		{"javascript://127.0.0.1:8080/%0aalert(1)", false},
		{"data:text/html,hi", false},
		{"ftp://127.0.0.1:8080/", false},
		{"http://evil%2etest/", false},
		{"http://127.0.0.1%3a8080/", false},
		{"https://example.test.evil.test/", false},
		{"https://evilexample.test/", false},
		{"https://example.test./", false},
		{"http://[::1]:8080/", false},
		{"http:///evil.test", false},
		{"http://", false},
		{"http://localhost:9000.evil.test/", false},
		{"/" + strings.Repeat("a", web.MaxReturnTo), false},
	} {
		if got := p.Allowed(tc.raw); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestReturnToNoCookieDomain(t *testing.T) {
	p, err := web.NewReturnTo("https://sesame.example.test", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		"https://sesame.example.test/login": true,
		"https://sesame.example.test:443/":  true,
		"https://app.example.test/":         false,
		"http://sesame.example.test/":       false,
	} {
		if got := p.Allowed(raw); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", raw, got, want)
		}
	}
	if _, err := web.NewReturnTo("not a url", "", nil); err == nil {
		t.Error("NewReturnTo accepted an issuer that is not a URL")
	}
	if _, err := web.NewReturnTo("https://x.test", "", []string{"x.test"}); err == nil {
		t.Error("NewReturnTo accepted an origin without a scheme")
	}
}

// FuzzReturnTo checks that whatever Allowed follows, a browser resolving it
// against the issuer lands on this server, under the cookie domain, or on
// an allowed origin, and that Go's parser agrees with the checks on the
// text.
func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/account", "//evil.test", "/\\evil", "http://127.0.0.1:8080/x", "https://a.example.test/", "http://u@127.0.0.1:8080", "https:evil", "/\t/x"} {
		f.Add(s)
	}
	const issuer = "http://127.0.0.1:8080"
	p, err := web.NewReturnTo(issuer, "example.test", []string{"http://localhost:9000"})
	if err != nil {
		f.Fatal(err)
	}
	base, _ := url.Parse(issuer + "/login")
	f.Fuzz(func(t *testing.T, raw string) {
		if !p.Allowed(raw) {
			return
		}
		if strings.ContainsAny(raw, "\\ \t\r\n") {
			t.Fatalf("followed %q, which has a backslash or whitespace", raw)
		}
		ref, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("followed %q, which does not parse: %v", raw, err)
		}
		u := base.ResolveReference(ref)
		if u.User != nil {
			t.Fatalf("followed %q, with user information", raw)
		}
		host := strings.ToLower(u.Hostname())
		origin := strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
		switch {
		case origin == issuer, origin == "http://localhost:9000":
		case (u.Scheme == "http" || u.Scheme == "https") && (host == "example.test" || strings.HasSuffix(host, ".example.test")):
		default:
			t.Fatalf("followed %q, which leads to %s", raw, u)
		}
	})
}
