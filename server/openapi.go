package server

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPI is the OpenAPI 3.1 description of every route in routes.go.
// TestOpenAPIDescribesEveryRoute holds the two together: a route added
// without its description (or the other way round) fails it.
//
//go:embed openapi.json
var openAPI []byte

// handleOpenAPI serves the description, with the issuer as its server.
func (s *server) handleOpenAPI() http.Handler {
	body := openAPI
	if s.Issuer != "" {
		var doc map[string]any
		if err := json.Unmarshal(openAPI, &doc); err == nil {
			doc["servers"] = []map[string]string{{"url": s.Issuer}}
			if b, err := json.Marshal(doc); err == nil {
				body = b
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(body)
	})
}

// routedHandler is what NewServer returns: the handler, and the patterns
// of its routes.
type routedHandler struct {
	http.Handler
	patterns []string
	mux      *routeMux
}

// Routes returns the ServeMux patterns ("GET /v1/session", "/v1/forward-auth")
// of every route a handler made by NewServer serves, in the order
// routes.go registers them; nil for any other handler.
func Routes(h http.Handler) []string {
	if r, ok := h.(*routedHandler); ok {
		return append([]string(nil), r.patterns...)
	}
	return nil
}
