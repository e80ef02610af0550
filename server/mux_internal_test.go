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

// TestRouteMuxAgrees: the routes the server registers, plus a few shapes
// routes.go does not have yet (one path with routes of several kinds of
// method), are registered on a routeMux and on a plain ServeMux with
// handlers that record the request's Pattern. For those paths and the
// spellings and methods around them, both must give the same status, the
// same Location and the same route. And a route for one host turns the
// map off.
func TestRouteMuxAgrees(t *testing.T) {
	st := memstore.New()
	h, err := NewServer(Deps{Auth: sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st}), LiveSessions: st})
	if err != nil {
		t.Fatal(err)
	}
	patterns := append(h.(*routedHandler).mux.patterns,
		"/test/any", "HEAD /test/any", "GET /test/any", // each kind of method on one path
		"/test/getany", "GET /test/getany", // GET and any, no HEAD: HEAD takes GET's
		"POST /test/post", "/test/sub/", // a subtree redirects /test/sub
	)
	record := func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Route", r.Pattern) }
	ours, theirs := newRouteMux(), http.NewServeMux()
	for _, p := range patterns {
		ours.HandleFunc(p, record)
		theirs.HandleFunc(p, record)
	}

	var paths []string
	for _, p := range patterns {
		_, path, ok := strings.Cut(p, " ")
		if !ok {
			path = p
		}
		path = strings.NewReplacer("{$}", "", "{id}", "x1").Replace(path)
		paths = append(paths, path, path+"/", strings.TrimSuffix(path, "/"), strings.ToUpper(path),
			"/"+strings.Replace(path[1:], "/", "%2F", 1), strings.Replace(path, "s", "%73", 1), path+"%00")
	}
	used := 0
	for _, path := range paths {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			continue
		}
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"} {
			serve := func(h http.Handler) *httptest.ResponseRecorder {
				r := httptest.NewRequest(method, "/", nil)
				r.URL, r.RequestURI = u, path
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			a, b := serve(ours), serve(theirs)
			if a.Code != b.Code || a.Header().Get("Location") != b.Header().Get("Location") || a.Header().Get("X-Route") != b.Header().Get("X-Route") {
				t.Errorf("%s %s: the route map answers %d %q by %q, the ServeMux %d %q by %q", method, path,
					a.Code, a.Header().Get("Location"), a.Header().Get("X-Route"), b.Code, b.Header().Get("Location"), b.Header().Get("X-Route"))
			}
			probe := httptest.NewRequest(method, "/", nil)
			probe.URL = u
			if _, ok := ours.route(probe); ok {
				used++
			}
		}
	}
	if used < 50 {
		t.Fatalf("the map answered only %d requests: it is not used", used)
	}

	// A route for one host is more specific than the map's.
	hosted := newRouteMux()
	hosted.HandleFunc("GET /v1/session", record)
	hosted.HandleFunc("GET admin.example.test/v1/session", record)
	r := httptest.NewRequest("GET", "http://admin.example.test/v1/session", nil)
	w := httptest.NewRecorder()
	hosted.ServeHTTP(w, r)
	if got := w.Header().Get("X-Route"); got != "GET admin.example.test/v1/session" {
		t.Errorf("with a route for the host, the request went to %q", got)
	}
}
