package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// recorder remembers the status a handler wrote, and turns the plain-text
// errors that net/http itself writes (unknown path, wrong method, body too
// large) into the API's JSON error body.
type recorder struct {
	http.ResponseWriter
	status   int
	rewrote  bool
	wroteHdr bool
}

func (rec *recorder) WriteHeader(status int) {
	if rec.wroteHdr {
		return
	}
	rec.wroteHdr = true
	rec.status = status
	h := rec.Header()
	// Every redirect, the ServeMux's own included ("/static" to
	// "/static/"), says under which policy the browser follows it.
	if status >= 300 && status < 400 && h["Referrer-Policy"] == nil {
		h["Referrer-Policy"] = sameOriginReferrer
	}
	if status >= 400 && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		rec.rewrote = true
		var code, desc string
		switch status {
		case http.StatusNotFound:
			code, desc = errNotFound.code, errNotFound.desc
		case http.StatusMethodNotAllowed:
			code, desc = errMethod.code, errMethod.desc
		case http.StatusRequestEntityTooLarge:
			code, desc = "invalid_request", "request body is larger than 1 MiB"
		default:
			code, desc = "invalid_request", http.StatusText(status)
		}
		body, _ := json.Marshal(errorBody{Error: code, Description: desc})
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)+1))
		rec.ResponseWriter.WriteHeader(status)
		rec.ResponseWriter.Write(append(body, '\n'))
		return
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHdr {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.rewrote {
		return len(b), nil
	}
	return rec.ResponseWriter.Write(b)
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

var (
	// The headers every response carries. They are what a JSON answer
	// needs: nothing sniffs it as another type, nothing frames it
	// (frame-ancestors, and X-Frame-Options for what ignores CSP), and a
	// document made of it can load nothing. Referrer-Policy is the pages'
	// own (package web) and every redirect's (a browser follows it, and
	// the policy applies to where it goes): an answer of the API has no
	// links to follow.
	nosniff    = []string{"nosniff"}
	denyFrames = []string{"DENY"}
	apiCSP     = []string{"default-src 'none'; frame-ancestors 'none'"}
	hstsHeader = []string{"max-age=63072000; includeSubDomains"}
	varyOrigin = []string{"Origin"}

	// Not no-referrer: under it a browser sends "Origin: null" with the
	// pages' own form posts, which the cross-origin rule refuses.
	sameOriginReferrer = []string{"same-origin"}
)

// setSecurityHeaders puts the headers every response carries. The values
// are shared and the keys canonical: no allocation per request. A later
// Add to one of these keys appends past the slice's capacity, so it
// copies rather than changing the shared value.
func setSecurityHeaders(h http.Header, tls bool) {
	h["X-Content-Type-Options"] = nosniff
	h["X-Frame-Options"] = denyFrames
	h["Content-Security-Policy"] = apiCSP
	if tls {
		h["Strict-Transport-Security"] = hstsHeader
	}
}

// observe wraps the whole API: it recovers panics into a 503 (logged, with
// the stack, never sent), sets the headers every response carries, and
// counts requests by route and status.
func observe(log *slog.Logger, m *metrics, tls bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		setSecurityHeaders(w.Header(), tls)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if !rec.wroteHdr {
					writeJSON(rec, http.StatusServiceUnavailable, errorBody{Error: "unavailable", Description: "internal error"})
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			m.observe(route, rec.status, time.Since(start))
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.DebugContext(r.Context(), "request", "method", r.Method, "route", route, "status", rec.status, "duration", time.Since(start))
			}
		}()
		if headerBytes(r) > maxHeaderBytes {
			writeJSON(rec, http.StatusRequestHeaderFieldsTooLarge, errorBody{Error: "invalid_request", Description: "request headers are larger than 64 KiB"})
			return
		}
		// A body declared larger than the limit is refused before any of
		// it is read: waiting for a megabyte that a client says is coming
		// (and may send slowly, or never) would hold the connection for
		// up to ReadTimeout. The connection closes after the answer, so
		// whatever of the body follows is never read.
		if r.ContentLength > maxBodyBytes {
			rec.Header().Set("Connection", "close")
			writeJSON(rec, http.StatusRequestEntityTooLarge, errorBody{Error: "invalid_request", Description: "request body is larger than 1 MiB"})
			return
		}
		if r.Body != http.NoBody { // net/http's body of a request that declares none
			r.Body = http.MaxBytesReader(rec, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(rec, r)
	})
}

// maxHeaderBytes caps the request headers a handler sees. The
// http.Server's own MaxHeaderBytes is set higher (MaxHeaderBytesHard) so
// that a request between the two gets this JSON 431 rather than
// net/http's plain-text one.
const (
	maxHeaderBytes     = 64 << 10
	MaxHeaderBytesHard = 1 << 20
)

// headerBytes approximates the size of the request line and headers as
// sent.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// origins decides cross-origin questions: which origins may make
// credentialed CORS requests and cookie-authenticated state changes.
type origins struct {
	allowed map[string]bool
	cop     *http.CrossOriginProtection
}

func newOrigins(allowed []string) (*origins, error) {
	o := &origins{allowed: map[string]bool{}, cop: http.NewCrossOriginProtection()}
	for _, a := range allowed {
		if err := o.cop.AddTrustedOrigin(a); err != nil {
			return nil, err
		}
		o.allowed[a] = true
	}
	return o, nil
}

// crossOrigin reports whether an unsafe-method request comes from another
// origin than the request's own host and that origin is not allowed. It
// applies net/http's CrossOriginProtection (Sec-Fetch-Site first, then
// Origin against Host) and, stricter than it, also refuses a mismatching
// Origin even when Sec-Fetch-Site claims same-origin. "Origin: null" is
// always another origin. A request with neither header (curl, servers) is
// not cross-origin.
func (o *origins) crossOrigin(r *http.Request) bool {
	if err := o.cop.Check(r); err != nil {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || o.allowed[origin] {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

// cors answers preflights and marks responses for allowed origins only:
// the exact origin is echoed with credentials allowed, never "*". With
// --allowed-origins set, every response varies by Origin, so that no cache
// serves one origin's answer to another; without it no answer depends on
// Origin (a refused cross-origin post is a POST, which no cache keeps),
// and none says it does.
func (o *origins) cors(next http.Handler) http.Handler {
	vary := len(o.allowed) > 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if vary {
			h["Vary"] = varyOrigin // shared, like the security headers: an Add copies
		}
		origin := r.Header.Get("Origin")
		ok := origin != "" && o.allowed[origin]
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if ok {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
