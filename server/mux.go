package server

import (
	"net/http"
	"strings"
)

// routeMux is the ServeMux that routes.go registers on. It remembers each
// pattern, so that the description can be checked against what is served,
// and answers the routes without a wildcard ("GET /v1/session",
// "/v1/auth-request") from a map of their paths before the ServeMux walks
// its tree: the hot routes are all of that kind. What the map does not
// answer (a wildcard route, a method the path does not serve: the 405
// with Allow, an unknown path: the 404) goes to the ServeMux as before.
// TestRouteMuxAgrees holds the two to the same choice.
type routeMux struct {
	*http.ServeMux
	patterns []string
	exact    map[string][]exactRoute // by path
	hosts    bool                    // a route names a host: the map is not used
}

// exactRoute is a route whose pattern names one path: its method ("" for
// any) and pattern.
type exactRoute struct {
	method, pattern string
	h               http.Handler
}

func newRouteMux() *routeMux {
	return &routeMux{ServeMux: http.NewServeMux(), exact: map[string][]exactRoute{}}
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h) // panics on a bad or conflicting pattern, before the map sees it
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	switch {
	case !strings.HasPrefix(path, "/"):
		// A route for one host is more specific than any without: the
		// map, which does not look at hosts, would choose wrongly
		// beside it, so the ServeMux alone decides from now on.
		m.hosts = true
	case !strings.ContainsAny(path, "{}") && !strings.HasSuffix(path, "/"):
		// A wildcard or a trailing slash (a subtree) is the ServeMux's.
		m.exact[path] = append(m.exact[path], exactRoute{method, pattern, h})
	}
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// ServeHTTP answers an exact route itself, as the ServeMux would have.
func (m *routeMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e, ok := m.route(r); ok {
		r.Pattern = e.pattern
		e.h.ServeHTTP(w, r)
		return
	}
	m.ServeMux.ServeHTTP(w, r)
}

// route is the exact route the ServeMux would choose for r, if it would
// choose one: the route of r's method, else (for HEAD) the GET route, else
// the route of any method. Only a path spelled in its one plain form is
// looked up: the ServeMux matches an escaped path ("%2F" inside a
// segment) segment by segment, which the decoded path cannot show, so it
// decides those. canonicalPaths has already refused an unclean path, so
// no redirect of the ServeMux's is skipped either.
func (m *routeMux) route(r *http.Request) (exactRoute, bool) {
	if r.URL.RawPath != "" || m.hosts {
		return exactRoute{}, false
	}
	routes := m.exact[r.URL.Path]
	best, rank := -1, 0
	for i, e := range routes {
		k := 0
		switch {
		case e.method == r.Method:
			k = 3
		case e.method == http.MethodGet && r.Method == http.MethodHead:
			k = 2
		case e.method == "":
			k = 1
		}
		if k > rank {
			best, rank = i, k
		}
	}
	if best < 0 {
		return exactRoute{}, false
	}
	return routes[best], true
}
