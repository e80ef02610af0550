package httpauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
)

// netHTTPSessionCookie is SessionCookie as net/http reads cookies: the
// first cookie of the name whose value is a well-formed secret.
func netHTTPSessionCookie(r *http.Request, name string) (string, bool) {
	for _, c := range r.CookiesNamed(name) {
		if sesame.ValidSecret(c.Value) {
			return c.Value, true
		}
	}
	return "", false
}

// FuzzSessionCookie holds SessionCookie, which scans the Cookie header
// without allocating, to net/http's cookie parser: the same secret, or
// none, for any header lines an attacker sends.
func FuzzSessionCookie(f *testing.F) {
	secret, _ := sesame.NewSecret()
	f.Add("__Host-sesame="+secret, "")
	f.Add(`a=b; __Host-sesame="`+secret+`"`, "x=y")
	f.Add(" __Host-sesame = "+secret+" ;", "__Host-sesame=bad; __Host-sesame="+secret)
	f.Add("__Host-sesame=short; __host-sesame="+secret, "\t__Host-sesame=\t"+secret+"\t")
	f.Add(strings.Repeat(";", 3001)+"__Host-sesame="+secret, "")
	f.Add("__Host-sesame="+secret+"\x00", `__Host-sesame="`+secret)
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		for _, lines := range [][]string{{line1}, {line1, line2}} {
			r := &http.Request{Header: http.Header{"Cookie": lines}}
			for _, name := range []string{httpauth.DefaultCookieName, "__Secure-sesame"} {
				got, gotOK := httpauth.SessionCookie(r, name)
				want, wantOK := netHTTPSessionCookie(r, name)
				if got != want || gotOK != wantOK {
					t.Fatalf("Cookie %q, name %q: SessionCookie = %q, %v; net/http reads %q, %v", lines, name, got, gotOK, want, wantOK)
				}
			}
		}
	})
}
