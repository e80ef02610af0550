package web

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is everything the pages need. Auth, ReturnTo, SessionSecret,
// SetSessionCookie, ClearSessionCookie, Client and CrossOrigin are
// required.
type Config struct {
	// Auth signs people in and out, and reads users and the audit log
	// for the admin page.
	Auth *sesame.Authenticator
	// Registration is "open" (default) or "closed".
	Registration string
	// ReturnTo decides where a sign-in or sign-out may send the browser.
	ReturnTo *ReturnTo

	// SessionSecret reads the session secret from the request's cookie,
	// the only place it is ever read from.
	SessionSecret func(r *http.Request) (string, bool)
	// SetSessionCookie sends the new session's secret to the browser;
	// ClearSessionCookie tells it to forget it.
	SetSessionCookie   func(w http.ResponseWriter, secret string, expires, now time.Time)
	ClearSessionCookie func(w http.ResponseWriter)
	// Client returns where a request came from (address and agent).
	Client func(r *http.Request) sesame.Client
	// CrossOrigin reports whether an unsafe request comes from an origin
	// that may not make it: the API's csrf rule, which every form post
	// goes through.
	CrossOrigin func(r *http.Request) bool
	// OnLogin, if set, learns the outcome of every sign-in attempt (nil
	// for a success), for metrics.
	OnLogin func(err error)
	Logger  *slog.Logger
}

// Pages serves the portal. Its methods return the handler of each route;
// the server lists them in its routes.
type Pages struct {
	cfg   Config
	pages map[string]*template.Template
	// around holds, for a page that Go writes part of, its templates
	// "before" and "after" that part (see renderAround).
	around map[string][2]*template.Template
	// headers are those of every page. render shares their value slices
	// with each response (saving an allocation for each), so nothing may
	// change an element of one; Add appends to a full slice, which copies.
	headers []header
}

// header is one canonical header name and its values.
type header struct {
	name   string
	values []string
}

// New parses the templates and returns the pages over cfg.
func New(cfg Config) (*Pages, error) {
	if cfg.Auth == nil || cfg.ReturnTo == nil ||
		cfg.SessionSecret == nil || cfg.SetSessionCookie == nil || cfg.ClearSessionCookie == nil ||
		cfg.Client == nil || cfg.CrossOrigin == nil {
		return nil, errors.New("web: Config lacks a required field")
	}
	if cfg.Registration == "" {
		cfg.Registration = "open"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnLogin == nil {
		cfg.OnLogin = func(error) {}
	}
	p := &Pages{cfg: cfg, pages: map[string]*template.Template{}, around: map[string][2]*template.Template{}}
	funcs := template.FuncMap{
		"device": describeCached,
		"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"join":   strings.Join,
		"inc":    func(n int) int { return n + 1 },
		"dec":    func(n int) int { return n - 1 },
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		p.pages[name] = t
		if before, after := t.Lookup("before"), t.Lookup("after"); before != nil && after != nil {
			p.around[name] = [2]*template.Template{before, after}
		}
	}
	// No script from anywhere, no framing, styles and images from this
	// server only, and forms may go only here or where a sign-in may
	// continue (Chromium applies form-action to the redirect after a post).
	csp := "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action " +
		cfg.ReturnTo.formAction() + "; frame-ancestors 'none'"
	p.headers = []header{
		{"Content-Type", []string{"text/html; charset=utf-8"}},
		{"Content-Security-Policy", []string{csp}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}},
		// Not no-referrer: under it a browser sends "Origin: null" with
		// the page's own form posts, which the cross-origin rule refuses.
		// same-origin keeps the URL (and any return_to) from other sites.
		{"Referrer-Policy", []string{"same-origin"}},
		{"Cache-Control", []string{"no-store"}},
	}
	return p, nil
}

// view is what every template gets.
type view struct {
	Title    string       // unless the page's template defines "title"
	Me       *sesame.User // the signed-in user, for the navigation
	Admin    bool
	Error    string // what went wrong, for a person
	Notice   string // what just happened
	Status   int
	ReturnTo string
	Email    string
	RegOpen  bool

	// /account (accountBody): the session of this request; /account's
	// other sessions, or the sessions of a user on /admin
	Current     *sesame.Session
	Sessions    []sesame.Session
	SessionList template.HTML // /admin: sessionList's rendering of Sessions

	// error pages
	RetryAfter int

	// /admin
	Query      string
	Users      []sesame.User
	MoreUsers  bool
	Selected   *sesame.User
	UserByID   map[string]string
	Types      []string
	Type       string
	Events     []sesame.Event
	Page       int
	MorePages  bool
	EventsUser string
}

// render writes the named page with status; a template failure is logged
// and becomes a plain 500, never a half-written page.
// renderBuffers keeps the buffers pages are rendered into: a page is
// written whole (its Content-Length known, nothing sent before the template
// succeeds), and reusing the buffer saves growing and zeroing a fresh one on
// every request (most of the render's cost over the JSON equivalent).
var renderBuffers = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 16<<10)) }}

// maxPooledPage is the largest buffer kept for reuse, so that one huge
// admin page does not pin its memory.
const maxPooledPage = 256 << 10

func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	p.renderAround(w, r, status, name, v, nil)
}

// renderAround renders the page name as render does, but with middle
// writing into the page between the page's templates "before" and
// "after", when middle is not nil. middle writes HTML straight into the
// page (fragment.go), so that the hottest page's content is neither a
// template action nor a string of its own.
func (p *Pages) renderAround(w http.ResponseWriter, r *http.Request, status int, name string, v view, middle func(f fragment, v *view)) {
	t, ok := p.pages[name]
	parts, split := p.around[name]
	if !ok || middle != nil && !split {
		panic("web: no template " + name)
	}
	v.Status = status
	v.RegOpen = p.cfg.Registration != "closed"
	buf := renderBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledPage {
			renderBuffers.Put(buf)
		}
	}()
	var err error
	if middle == nil {
		err = t.Execute(buf, &v)
	} else if err = parts[0].Execute(buf, &v); err == nil {
		middle(fragment{buf}, &v)
		err = parts[1].Execute(buf, &v)
	}
	if err != nil {
		p.cfg.Logger.ErrorContext(r.Context(), "rendering a page", "page", name, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>Error</title><p>Something went wrong. Please try again.</p>")
	}
	h := w.Header()
	for _, x := range p.headers {
		h[x.name] = x.values
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// redirect answers 303 to loc, which is a path of this server or a value
// ReturnTo allowed.
func redirect(w http.ResponseWriter, loc string) {
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "same-origin") // the browser follows it, with this policy
	w.WriteHeader(http.StatusSeeOther)
}

// errCrossOrigin is a form post from another origin.
var errCrossOrigin = errors.New("web: cross-origin form post")

// errBadForm is a post that is not a well-formed form.
var errBadForm = errors.New("web: malformed form")

// fail answers with the error page that fits err: what a person can do
// about it, never a stack trace or an internal error's text.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, me *sesame.User, err error) {
	v := view{Me: me}
	var rl *sesame.RateLimitError
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, errCrossOrigin):
		status, v.Title = http.StatusForbidden, "Request refused"
		v.Error = "This form was sent from another site, so Sesame refused it. If you meant to do this, open Sesame yourself and try again there."
		p.cfg.Logger.WarnContext(r.Context(), "cross-origin form refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	case errors.Is(err, errBadForm):
		status, v.Title = http.StatusBadRequest, "Bad request"
		v.Error = "The form could not be read. Go back and try again."
	case errors.Is(err, sesame.ErrUserNotFound): // gone since the page was shown
		status, v.Title = http.StatusNotFound, "No such user"
		v.Error = "There is no user with that id."
	case errors.As(err, &rl):
		status, v.Title = http.StatusTooManyRequests, "Too many attempts"
		v.RetryAfter = rl.RetryAfter
		w.Header().Set("Retry-After", strconv.Itoa(rl.RetryAfter))
		v.Error = "There have been too many sign-in attempts. Wait " + seconds(rl.RetryAfter) + " and try again."
	case errors.Is(err, sesame.ErrBusy):
		v.Title = "Busy"
		v.RetryAfter = 1
		w.Header().Set("Retry-After", "1")
		v.Error = "Sesame is busy right now. Wait a second and try again."
	case r.Context().Err() != nil:
		v.Title = "Cancelled"
		v.Error = "The request was cancelled."
	default:
		p.cfg.Logger.ErrorContext(r.Context(), "page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		v.Title = "Unavailable"
		v.RetryAfter = 2
		w.Header().Set("Retry-After", "2")
		v.Error = "Sesame cannot reach its data store right now, so nobody can be signed in or out. Try again in a moment."
	}
	p.render(w, r, status, "error", v)
}

func seconds(n int) string {
	if n == 1 {
		return "1 second"
	}
	if n < 120 {
		return strconv.Itoa(n) + " seconds"
	}
	return strconv.Itoa((n+59)/60) + " minutes"
}

// form returns the fields of a form post, after refusing one from another
// origin. Fields are read from the body only, never the query string.
func (p *Pages) form(r *http.Request) (url.Values, error) {
	if p.cfg.CrossOrigin(r) {
		return nil, errCrossOrigin
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errBadForm
	}
	if err := r.ParseForm(); err != nil {
		return nil, errBadForm
	}
	return r.PostForm, nil
}

// signedIn returns the user and session of the request's cookie, or
// sesame.ErrSessionNotFound when there is none or it has ended.
func (p *Pages) signedIn(r *http.Request) (sesame.User, sesame.Session, error) {
	secret, ok := p.cfg.SessionSecret(r)
	if !ok {
		return sesame.User{}, sesame.Session{}, sesame.ErrSessionNotFound
	}
	s, u, err := p.cfg.Auth.Authenticate(r.Context(), secret)
	return u, s, err
}

// Static serves the stylesheet (and whatever else is under static/).
func (p *Pages) Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Files only: no listing of the directory.
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}
