package token

import (
	"slices"
	"testing"

	"github.com/sesameauth/sesame"
)

// TestCloneClaims: a copy shares no storage with the original, an append
// to one of its slices cannot reach the other slice, and nil stays nil.
func TestCloneClaims(t *testing.T) {
	orig := sesame.Claims{Audience: []string{"a", "b"}, Roles: make([]string, 1, 8)}
	orig.Roles[0] = "user"
	c := cloneClaims(orig)
	c.Audience[0], c.Roles[0] = "changed", "changed"
	if orig.Audience[0] != "a" || orig.Roles[0] != "user" {
		t.Fatalf("writing the copy changed the original: %+v", orig)
	}
	c = cloneClaims(orig)
	_ = append(c.Audience, "appended")
	if c.Roles[0] != "user" {
		t.Errorf("an append to the copy's audience overwrote its roles: %q", c.Roles)
	}
	_ = append(c.Roles, "appended")
	if len(orig.Roles[:2]) == 2 && orig.Roles[:2][1] == "appended" {
		t.Errorf("an append to the copy's roles reached the original's storage")
	}
	if n := cloneClaims(sesame.Claims{}); n.Audience != nil || n.Roles != nil {
		t.Errorf("nil slices came back as %#v, %#v", n.Audience, n.Roles)
	}
	if e := cloneClaims(sesame.Claims{Roles: []string{}}); e.Roles == nil || e.Audience != nil {
		t.Errorf("an empty roles slice came back as %#v, audience %#v", e.Roles, e.Audience)
	}
	if got := cloneClaims(orig); !slices.Equal(got.Audience, orig.Audience) || !slices.Equal(got.Roles, orig.Roles) {
		t.Errorf("copy %+v differs from %+v", got, orig)
	}
}
