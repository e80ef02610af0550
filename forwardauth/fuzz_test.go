package forwardauth_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sesameauth/sesame/forwardauth"
)

// FuzzCanonicalPath checks that whatever an attacker puts in the original
// URI, an accepted path is in the one form the rules expect: absolute, no
// empty, "." or ".." segment, no control character, valid UTF-8, and
// unchanged by a second pass.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/admin/../x", "/%2e%2e/admin", "//admin", "/a%2Fb", "/%zz", "/a/./b?q=/..", "/caf%C3%A9", "/..%2f", "/a%25", "/public/..;/admin", "/a%5cb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := forwardauth.CanonicalPath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") ||
			strings.Contains(out+"/", "/./") || strings.Contains(out+"/", "/../") || !utf8.ValidString(out) {
			t.Fatalf("CanonicalPath(%q) = %q: not canonical", in, out)
		}
		if strings.ContainsAny(out, ";\\") {
			t.Fatalf("CanonicalPath(%q) = %q: a ; or backslash another server may read differently", in, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] == 0x7f {
				t.Fatalf("CanonicalPath(%q) = %q: control character", in, out)
			}
		}
		if !strings.ContainsAny(out, "%?") { // a decoded %25 or %3F reads differently a second time
			if again, err := forwardauth.CanonicalPath(out); err != nil || again != out {
				t.Fatalf("CanonicalPath(%q) = %q, but CanonicalPath(%q) = %q, %v", in, out, out, again, err)
			}
		}
	})
}

// FuzzParse checks that no rule file makes the parser panic, and that an
// accepted one holds only rules that decide: one known policy each, roles
// exactly for the roles policy, canonical paths.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("default: bypass\n"))
	f.Add([]byte("rules:\n  - host: a.test\n    policy: bypass\n    roles: [x]\n"))
	f.Add([]byte("rules: [{host: '*.a.test', path: /x/, methods: [GET], roles: [a, b]}]\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := forwardauth.Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if rs.Default > forwardauth.Bypass {
			t.Fatalf("default %v", rs.Default)
		}
		for _, r := range rs.Rules {
			if (r.Policy == forwardauth.Roles) != (len(r.Roles) > 0) || r.Policy > forwardauth.Roles {
				t.Fatalf("rule %+v", r)
			}
			if c, err := forwardauth.CanonicalPath(r.Path); err != nil || c != r.Path {
				t.Fatalf("rule path %q is not canonical", r.Path)
			}
			rs.Decide(strings.TrimPrefix(r.Host, "*."), "GET", r.Path)
		}
	})
}
