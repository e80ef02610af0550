package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
)

// TestRouteMuxAgrees: for every route the server registers, and paths
// and methods around them, the exact-route map either chooses the route
// the ServeMux would choose or leaves the request to the ServeMux.
func TestRouteMuxAgrees(t *testing.T) {
	st := memstore.New()
	h, err := NewServer(Deps{Auth: sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st}), LiveSessions: st})
	if err != nil {
		t.Fatal(err)
	}
	m := h.(*routedHandler).mux
	// Two routes of one path with and without a method, which routes.go
	// does not have, to hold the precedence too.
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	m.Handle("/test/any", nop)
	m.Handle("HEAD /test/any", nop)
	m.Handle("GET /test/any", nop)

	var paths []string
	for _, p := range m.patterns {
		_, path, ok := strings.Cut(p, " ")
		if !ok {
			path = p
		}
		paths = append(paths, path, path+"/", strings.ToUpper(path), "/"+strings.Replace(path[1:], "/", "%2F", 1), strings.Replace(path, "s", "%73", 1))
	}
	used := 0
	for _, path := range paths {
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"} {
			u, err := url.ParseRequestURI(path)
			if err != nil {
				continue
			}
			r := httptest.NewRequest(method, "/", nil)
			r.URL, r.RequestURI = u, path
			_, want := m.ServeMux.Handler(r)
			e, ok := m.route(r)
			if !ok {
				continue
			}
			used++
			if e.pattern != want {
				t.Errorf("%s %s: the map chooses %q, the ServeMux %q", method, path, e.pattern, want)
			}
		}
	}
	if used < 20 {
		t.Fatalf("the map answered only %d requests: it is not used", used)
	}
}
