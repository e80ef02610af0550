package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
	"github.com/sesameauth/sesame/server"
)

// openAPIPath turns a ServeMux path into an OpenAPI path: "/{$}" is "/",
// a subtree "/static/" is "/static/{path}", and "{name...}" is "{name}".
func openAPIPath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	p = strings.ReplaceAll(p, "...}", "}")
	if p == "" {
		return "/"
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p += "{path}"
	}
	return p
}

var openAPIMethods = []string{"get", "head", "post", "put", "patch", "delete", "options"}

// TestOpenAPIDescribesEveryRoute serves GET /v1/openapi.json from the real
// server, validates it as OpenAPI 3.1 (pb33f/libopenapi-validator, against
// the specification's own JSON Schema), and holds it to the routes the
// server registers, both ways.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}, Issuer: "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.Bytes()

	doc, err := libopenapi.NewDocument(body)
	if err != nil {
		t.Fatalf("libopenapi cannot read /v1/openapi.json: %v", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi version %q, want 3.1.x", v)
	}
	if ok, errs := schema_validation.ValidateOpenAPIDocument(doc); !ok {
		for _, e := range errs {
			t.Errorf("/v1/openapi.json is not valid OpenAPI 3.1: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s: %s", se.FieldPath, se.Reason)
			}
		}
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Errorf("/v1/openapi.json does not build (unresolved $ref?): %v", err)
	}

	var parsed struct {
		Servers []struct{ URL string } `json:"servers"`
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Servers) != 1 || parsed.Servers[0].URL != "http://127.0.0.1:8080" {
		t.Errorf("servers = %+v, want the issuer", parsed.Servers)
	}

	routes := server.Routes(h)
	if len(routes) < 20 {
		t.Fatalf("server.Routes = %q: the routes are not recorded", routes)
	}
	const fix = "describe it in server/openapi.json (and in prose in docs/API.md)"
	served := map[string]bool{} // "get /v1/session", or "* /v1/forward-auth" for any method
	for _, pattern := range routes {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "*", pattern
		}
		p := openAPIPath(path)
		served[strings.ToLower(method)+" "+p] = true
		item, ok := parsed.Paths[p]
		if !ok {
			t.Errorf("route %q is served but paths[%q] is missing: %s", pattern, p, fix)
			continue
		}
		if method == "*" {
			for _, m := range openAPIMethods {
				if _, ok := item[m]; !ok {
					t.Errorf("route %q answers every method but paths[%q].%s is missing: %s", pattern, p, m, fix)
				}
			}
			continue
		}
		if _, ok := item[strings.ToLower(method)]; !ok {
			t.Errorf("route %q is served but paths[%q].%s is missing: %s", pattern, p, strings.ToLower(method), fix)
		}
	}
	for p, item := range parsed.Paths {
		for m := range item {
			if !slices.Contains(openAPIMethods, m) {
				continue // parameters, summary...
			}
			if !served[m+" "+p] && !served["* "+p] && !(m == "head" && served["get "+p]) {
				t.Errorf("server/openapi.json describes %s %s, which the server does not serve: remove it, or register the route in server/routes.go", strings.ToUpper(m), p)
			}
		}
	}
}

// TestAPIDocNamesEveryRoute: docs/API.md, the prose reference, names the
// path of every route the server registers.
func TestAPIDocNamesEveryRoute(t *testing.T) {
	st := memstore.New()
	auth := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Hasher: password.NewHasher(password.Fast)})
	h, err := server.NewServer(server.Deps{Auth: auth, LiveSessions: st, Ready: []sesame.Pinger{st}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range server.Routes(h) {
		_, path, ok := strings.Cut(pattern, " ")
		if !ok {
			path = pattern
		}
		path = strings.TrimSuffix(path, "{$}")
		if path != "/" && !strings.Contains(string(doc), path) {
			t.Errorf("docs/API.md does not mention %s (route %q): describe it there", path, pattern)
		}
	}
}

// TestOpenAPIRoutesRecorded: Routes knows only handlers NewServer made.
func TestOpenAPIRoutesRecorded(t *testing.T) {
	if r := server.Routes(http.NotFoundHandler()); r != nil {
		t.Errorf("Routes(another handler) = %q, want nil", r)
	}
}
