package forwardauth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesameauth/sesame/forwardauth"
)

func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/app", "/app"},
		{"/app/", "/app/"},
		{"/app?x=1", "/app"},
		{"/app/?next=/admin/", "/app/"},
		{"//admin", "/admin"},
		{"/a//b///c", "/a/b/c"},
		{"/admin/../x", "/x"},
		{"/x/../admin/", "/admin/"},
		{"/../../admin", "/admin"},
		{"/./admin/./", "/admin/"},
		{"/admin/.", "/admin/"},
		{"/admin/..", "/"},
		{"/a%20b", "/a b"},
		{"/%61dmin/", "/admin/"},
		{"/file%2ehtml", "/file.html"},
		{"/caf%C3%A9", "/café"},
		{"/Admin/", "/Admin/"},
		{"/a/...", "/a/..."},
		{"/a/.b", "/a/.b"},
	} {
		got, err := forwardauth.CanonicalPath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "admin", "http://x/admin", "?/admin",
		"/admin%2Fx", "/admin%2fx", "/%2F",
		"/%2e%2e/admin", "/%2E/admin", "/.%2e/admin", "/x/%2e%2E", "/x/%2e",
		"/a%", "/a%2", "/a%zz", "/a%%32%65",
		"/a%00", "/a\x00b", "/a\nb", "/a%0d%0a",
		"/%ff", "/%C3",
		// what servlet containers and Windows servers read as another path
		"/public/..;/admin/x", "/public/%2e%2e;/admin/x", "/admin;x/y", "/admin%3bx/y", "/a;b",
		"/public/..\\admin/x", "/public/..%5cadmin/x", "/public/..%5Cadmin/x", "/a\\b",
	} {
		if got, err := forwardauth.CanonicalPath(in); !errors.Is(err, forwardauth.ErrBadPath) {
			t.Errorf("CanonicalPath(%q) = %q, %v; want ErrBadPath", in, got, err)
		}
	}
}

func TestCanonicalPathNoAllocation(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if _, err := forwardauth.CanonicalPath("/admin/users/42?page=2"); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("a canonical path costs %v allocations, want 0", n)
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"app.example.test":      "app.example.test",
		"App.Example.TEST":      "app.example.test",
		"app.example.test:8443": "app.example.test",
		"app.example.test.":     "app.example.test",
		"APP.example.test.:443": "app.example.test",
		"[::1]:8080":            "::1",
		"::1":                   "::1",
		"127.0.0.1:80":          "127.0.0.1",
		"":                      "",
	} {
		if got := forwardauth.NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

const example = `default: deny              # deny | signed_in | bypass (when no rule matches)
rules:
  - host: public.example.test          # exact, or "*.example.test"
    policy: bypass                     # no sign-in needed
  - host: "*.example.test"
    path: /admin/                      # prefix of the original path
    methods: [GET, POST]               # optional
    roles: [admin]                     # signed in with any of these roles
  - host: app.example.test
    policy: signed_in
    audience: https://app.example.test # aud of the minted token
`

func TestDecide(t *testing.T) {
	rs, err := forwardauth.Parse("rules.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, method, path string
		rule               int
		policy             forwardauth.Policy
	}{
		{"public.example.test", "GET", "/", 0, forwardauth.Bypass},
		{"public.example.test", "POST", "/admin/", 0, forwardauth.Bypass},
		{"app.example.test", "GET", "/admin/", 1, forwardauth.Roles},
		{"app.example.test", "GET", "/admin", 1, forwardauth.Roles},
		{"wiki.example.test", "POST", "/admin/x", 1, forwardauth.Roles},
		{"app.example.test", "DELETE", "/admin/x", 2, forwardauth.SignedIn},
		{"app.example.test", "GET", "/Admin/", 2, forwardauth.SignedIn}, // paths are case-sensitive
		{"app.example.test", "GET", "/", 2, forwardauth.SignedIn},
		{"example.test", "GET", "/admin/", -1, forwardauth.Deny}, // *.example.test is not example.test
		{"wiki.example.test", "GET", "/", -1, forwardauth.Deny},
		{"app.example.test.evil.test", "GET", "/", -1, forwardauth.Deny},
		{"evilapp.example.test", "GET", "/", -1, forwardauth.Deny},
	} {
		d := rs.Decide(tc.host, tc.method, tc.path)
		if d.Index != tc.rule || d.Policy != tc.policy {
			t.Errorf("Decide(%q, %q, %q) = rule %d %v, want rule %d %v", tc.host, tc.method, tc.path, d.Index, d.Policy, tc.rule, tc.policy)
		}
	}
	if d := rs.Decide("app.example.test", "GET", "/"); d.Rule.Audience != "https://app.example.test" || d.Name() != "rule 3" {
		t.Errorf("rule 3 = %+v", d.Rule)
	}
	if d := rs.Decide("x.test", "GET", "/"); d.Name() != "default" {
		t.Errorf("default decision named %q", d.Name())
	}
	// Other methods on app.example.test/admin/ fall to rule 3 (signed_in).
	if len(rs.Warnings) != 1 || !strings.Contains(rs.Warnings[0], "rules.yaml:5:") || !strings.Contains(rs.Warnings[0], "line 9") {
		t.Errorf("warnings = %q, want one about rule 2 falling to rule 3", rs.Warnings)
	}
}

func TestDecideNoAllocation(t *testing.T) {
	rs, err := forwardauth.Parse("rules.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		rs.Decide(forwardauth.NormalizeHost("app.example.test:443"), "GET", "/admin/x")
	})
	if n != 0 {
		t.Errorf("Decide costs %v allocations, want 0", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"unknown key", "default: deny\nrules:\n  - host: a.test\n    polcy: bypass\n", `r.yaml:4: unknown key polcy`},
		{"unknown top key", "default: deny\nrule: []\n", `r.yaml:2: unknown key rule`},
		{"unknown policy", "rules:\n  - host: a.test\n    policy: allow\n", `r.yaml:3: rule 1: unknown policy "allow"`},
		{"unknown default", "default: allow\n", `r.yaml:1: unknown default "allow"`},
		{"both", "rules:\n  - host: a.test\n    policy: bypass\n    roles: [admin]\n", `r.yaml:4: rule 1: has both policy and roles`},
		{"neither", "rules:\n  - host: a.test\n    policy: bypass\n  - host: b.test\n    path: /x\n", `r.yaml:4: rule 2: has neither policy nor roles`},
		{"empty roles", "rules:\n  - roles: []\n", `r.yaml:2: rule 1: roles is empty`},
		{"not yaml", "rules: [\n", `r.yaml:1:`},
		{"tab", "rules:\n\t- host: a\n", `r.yaml:2:`},
		{"type", "rules:\n  - methods: GET\n    policy: bypass\n", `r.yaml:2:`},
		{"duplicate key", "rules:\n  - policy: bypass\n    policy: deny\n", `r.yaml:3:`},
		{"bad wildcard", "rules:\n  - host: a.*.test\n    policy: bypass\n", `r.yaml:2: rule 1: host "a.*.test"`},
		{"port", "rules:\n  - host: a.test:8080\n    policy: bypass\n", `r.yaml:2: rule 1: host "a.test:8080"`},
		{"path not canonical", "rules:\n  - path: /a/../b\n    policy: bypass\n", `r.yaml:2: rule 1: path "/a/../b" is not canonical`},
		{"path relative", "rules:\n  - path: admin/\n    policy: bypass\n", `r.yaml:2: rule 1: path "admin/"`},
		{"method", "rules:\n  - methods: [\"GE T\"]\n    policy: bypass\n", `r.yaml:2: rule 1: method "GE T"`},
		{"empty file", "", `r.yaml:1: the file is empty`},
		{"two documents", "default: deny\n---\ndefault: bypass\n", `r.yaml:2: a second YAML document`},
		{"list", "- a\n", `r.yaml:1:`},
		{"deny audience", "rules:\n  - policy: deny\n    audience: https://a.test\n", `r.yaml:3: rule 1: a deny rule`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := forwardauth.Parse("r.yaml", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, %v; want an error containing %q", rs, err, tc.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	rs, err := forwardauth.Parse("r.yaml", []byte("rules:\n  - name: api\n    host: API.Example.test\n    methods: [get]\n    roles: [ops]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Default != forwardauth.Deny {
		t.Errorf("default = %v, want deny when left out", rs.Default)
	}
	r := rs.Rules[0]
	if r.Name != "api" || r.Host != "api.example.test" || r.Path != "/" || r.Methods[0] != "GET" || r.Line != 2 {
		t.Errorf("rule = %+v", r)
	}
	if forwardauth.SignedInDefault().Decide("x", "GET", "/").Policy != forwardauth.SignedIn {
		t.Error("without a file, requests need a signed-in user")
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := forwardauth.Load(p); err != nil {
		t.Fatal(err)
	}
	if _, err := forwardauth.Load(p + ".missing"); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestShadowWarnings(t *testing.T) {
	for _, tc := range []struct {
		file string
		warn bool
	}{
		{"rules:\n  - path: /admin/\n    methods: [GET]\n    roles: [admin]\n  - policy: bypass\n", true},
		{"rules:\n  - path: /admin/\n    methods: [GET]\n    roles: [admin]\n  - path: /admin/x\n    policy: bypass\n", true},  // overlaps
		{"rules:\n  - path: /admin/\n    methods: [GET]\n    roles: [admin]\n  - path: /public/\n    policy: bypass\n", false}, // apart
		{"rules:\n  - path: /admin/\n    methods: [GET]\n    roles: [admin]\n  - path: /admin/\n    roles: [admin]\n", false},  // same answer
		{"rules:\n  - host: a.test\n    methods: [GET]\n    policy: deny\n  - host: \"*.test\"\n    policy: bypass\n", true},
		{"rules:\n  - host: a.test\n    methods: [GET]\n    policy: deny\n  - host: b.test\n    policy: bypass\n", false},
		{"rules:\n  - methods: [GET]\n    policy: deny\n  - methods: [GET]\n    policy: bypass\n", false}, // no other methods
	} {
		rs, err := forwardauth.Parse("r.yaml", []byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rs.Warnings) > 0; got != tc.warn {
			t.Errorf("%q: warnings %q, want warning %v", tc.file, rs.Warnings, tc.warn)
		}
	}
}
