// Package bank is the seed's ABC Bank: a small bank app that relies on
// Sesame exactly as a third-party app would, through HTTP and the httpauth
// middleware, with no access to Sesame's stores. "sesame demo" runs it
// beside Sesame.
//
// It shows both ways of keeping a person signed in:
//
//   - Session mode (/session/): the pages are protected by
//     httpauth.RequireSession. Signing in goes through Sesame's /login,
//     which sets the opaque __Host-sesame cookie; on every request the
//     bank asks Sesame (GET /v1/session) whom the cookie belongs to, so a
//     session ended anywhere is refused on the next request. The transfer
//     form is a state-changing POST that httpauth refuses from another
//     origin.
//   - Token mode (/spa/): a single-page app in plain JavaScript signs in
//     with POST /v1/token and refresh_token_in=cookie, keeps the access
//     token in memory only, calls the bank's JSON API with
//     Authorization: Bearer (verified here against Sesame's JWKS, with no
//     call to Sesame), refreshes silently from the HttpOnly refresh cookie
//     (so a reload keeps the sign-in) and signs out with a revoke.
//
// Each page has a side panel with what Sesame keeps for the sign-in
// against what the browser holds, and what each request carried. Cookies
// do not see ports, so on one loopback host the bank receives the cookie
// Sesame set; across real hosts the same shape needs --cookie-domain or
// forward auth.
package bank

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/httpauth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the Sesame session cookie the bank reads.
const CookieName = httpauth.DefaultCookieName

// Config configures the bank.
type Config struct {
	// Sesame is Sesame's base URL (its issuer), as the browser reaches it.
	Sesame string
	// Self is the bank's own base URL, as the browser reaches it.
	Self string
	// Tokens verifies bearer tokens: an httpauth.RemoteVerifier over
	// Sesame's JWKS.
	Tokens sesame.TokenVerifier
	// Client makes the bank's calls to Sesame (default: 5 s timeout).
	Client *http.Client
	Logger *slog.Logger
}

// Bank is the app: accounts by user, and the handler.
type Bank struct {
	cfg    Config
	auth   *httpauth.Auth
	page   *template.Template
	mu     sync.Mutex
	ledger map[string]*customer // by Sesame user id
}

type customer struct {
	Accounts  []*account
	Transfers []transfer
}

type account struct {
	Name  string `json:"name"`
	Cents int64  `json:"cents"`
}

type transfer struct {
	Time  time.Time `json:"time"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Cents int64     `json:"cents"`
	Via   string    `json:"via"` // "session" or "token"
}

// New returns the bank.
func New(cfg Config) (*Bank, error) {
	if cfg.Sesame == "" || cfg.Self == "" || cfg.Tokens == nil {
		return nil, errors.New("bank: Config needs Sesame, Self and Tokens")
	}
	cfg.Sesame = strings.TrimRight(cfg.Sesame, "/")
	cfg.Self = strings.TrimRight(cfg.Self, "/")
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Bank{cfg: cfg, ledger: map[string]*customer{}}
	b.auth = httpauth.New(httpauth.Config{
		Sessions:   &remoteSessions{base: cfg.Sesame, client: cfg.Client},
		Tokens:     cfg.Tokens,
		CookieName: CookieName,
		// The default CrossOrigin: net/http's CrossOriginProtection
		// refuses an unsafe request from any other origin.
		OnError: b.refuse,
	})
	t, err := template.New("bank").Funcs(template.FuncMap{
		"money": money,
		"when":  func(t time.Time) string { return t.UTC().Format("15:04:05 UTC") },
		"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	b.page = t
	return b, nil
}

// Handler returns the bank's routes.
func (b *Bank) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", b.home())
	mux.Handle("GET /session/{$}", b.auth.Optional(b.sessionPage()))
	mux.Handle("POST /session/transfer", b.auth.RequireSession(b.sessionTransfer()))
	mux.Handle("GET /spa/{$}", b.spaPage())
	mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	mux.Handle("GET /api/accounts", b.auth.RequireToken(b.apiAccounts()))
	mux.Handle("POST /api/transfer", b.auth.RequireToken(b.apiTransfer()))
	return headers(mux)
}

// headers sets what every answer of the bank carries. Pages allow script
// from the bank alone, and connections to the bank and Sesame.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin") // no-referrer would make form posts carry "Origin: null"
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (b *Bank) csp() string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' " + b.cfg.Sesame +
		"; form-action 'self' " + b.cfg.Sesame + "; base-uri 'none'; frame-ancestors 'none'"
}

// customerOf returns the user's accounts, opening them with a starting
// balance on first sight.
func (b *Bank) customerOf(userID string) *customer {
	c, ok := b.ledger[userID]
	if !ok {
		c = &customer{Accounts: []*account{{Name: "Checking", Cents: 1_250_00}, {Name: "Savings", Cents: 8_400_00}}}
		b.ledger[userID] = c
	}
	return c
}

// snapshot returns copies of the user's accounts and transfers.
func (b *Bank) snapshot(userID string) ([]account, []transfer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.customerOf(userID)
	accts := make([]account, len(c.Accounts))
	for i, a := range c.Accounts {
		accts[i] = *a
	}
	ts := make([]transfer, len(c.Transfers))
	for i := range c.Transfers {
		ts[i] = c.Transfers[len(c.Transfers)-1-i] // newest first
	}
	return accts, ts
}

// errTransfer is a transfer the bank refuses, with a reason for a person.
type errTransfer string

func (e errTransfer) Error() string { return string(e) }

// move transfers cents between two of the user's accounts.
func (b *Bank) move(userID, from, to, amount, via string) error {
	cents, err := parseMoney(amount)
	if err != nil {
		return err
	}
	if from == to {
		return errTransfer("choose two different accounts")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.customerOf(userID)
	var src, dst *account
	for _, a := range c.Accounts {
		switch a.Name {
		case from:
			src = a
		case to:
			dst = a
		}
	}
	if src == nil || dst == nil {
		return errTransfer("no such account")
	}
	if src.Cents < cents {
		return errTransfer("not enough money in " + from)
	}
	src.Cents -= cents
	dst.Cents += cents
	c.Transfers = append(c.Transfers, transfer{Time: time.Now().UTC(), From: from, To: to, Cents: cents, Via: via})
	if len(c.Transfers) > 100 {
		c.Transfers = c.Transfers[len(c.Transfers)-100:]
	}
	return nil
}

// parseMoney reads "12.34" or "12" as cents: positive, at most a million.
func parseMoney(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 7 || len(frac) > 2 {
		return 0, errTransfer("enter an amount like 25 or 25.50")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err1 := strconv.ParseUint(whole, 10, 32)
	f, err2 := strconv.ParseUint(frac, 10, 8)
	if err1 != nil || err2 != nil {
		return 0, errTransfer("enter an amount like 25 or 25.50")
	}
	cents := int64(w)*100 + int64(f)
	if cents <= 0 || cents > 1_000_000_00 {
		return 0, errTransfer("the amount must be more than 0 and at most 1,000,000")
	}
	return cents, nil
}

func money(cents int64) string {
	return fmt.Sprintf("$%d.%02d", cents/100, cents%100)
}

// refuse answers what the middleware refused: JSON for the API, a page
// for the rest.
func (b *Bank) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		httpauth.WriteError(w, r, err)
		return
	}
	status, msg := http.StatusServiceUnavailable, "The bank cannot reach Sesame right now. Try again in a moment."
	switch {
	case errors.Is(err, httpauth.ErrCrossOrigin):
		status, msg = http.StatusForbidden, "This request came from another site, so the bank refused it. Nothing was changed."
	case errors.Is(err, httpauth.ErrNoCredentials), errors.Is(err, sesame.ErrSessionNotFound):
		status, msg = http.StatusUnauthorized, "You are not signed in, or your session has ended."
	}
	b.render(w, status, "message.html", map[string]any{"Title": http.StatusText(status), "Message": msg, "Sesame": b.cfg.Sesame, "Self": b.cfg.Self})
}

func (b *Bank) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := b.page.ExecuteTemplate(&buf, name, data); err != nil {
		b.cfg.Logger.Error("bank: rendering", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", b.csp())
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (b *Bank) home() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.render(w, http.StatusOK, "home.html", map[string]any{"Sesame": b.cfg.Sesame, "Self": b.cfg.Self})
	})
}

// cookieFacts describes the session cookie the request carried without
// showing it: its length and the start of its SHA-256.
type cookieFacts struct {
	Present bool
	Length  int
	Hash    string
}

func factsOf(r *http.Request) cookieFacts {
	secret, ok := httpauth.SessionCookie(r, CookieName)
	if !ok {
		return cookieFacts{}
	}
	sum := sha256.Sum256([]byte(secret))
	return cookieFacts{Present: true, Length: len(secret), Hash: hex.EncodeToString(sum[:6])}
}

// sessionPage is session mode's page: a sign-in link, or the accounts,
// the transfer form and the side panel.
func (b *Bank) sessionPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := map[string]any{
			"Sesame": b.cfg.Sesame, "Self": b.cfg.Self, "Cookie": factsOf(r),
			"Login":  b.cfg.Sesame + "/login?return_to=" + url.QueryEscape(b.cfg.Self+"/session/"),
			"Logout": b.cfg.Sesame + "/logout?return_to=" + url.QueryEscape(b.cfg.Self+"/session/"),
			"Done":   r.URL.Query().Get("done") == "1",
		}
		p, ok := httpauth.FromContext(r.Context())
		if !ok {
			b.render(w, http.StatusOK, "session.html", data)
			return
		}
		data["User"] = p.User
		data["Accounts"], data["Transfers"] = b.snapshot(p.User.ID)
		if rec, err := b.sessionRecord(r, p.Session.ID); err == nil {
			data["Record"] = rec
		} else {
			b.cfg.Logger.Warn("bank: reading the session record from Sesame", "err", err)
		}
		b.render(w, http.StatusOK, "session.html", data)
	})
}

// sessionTransfer is the transfer form's POST: httpauth has already
// refused it if it came from another origin.
func (b *Bank) sessionTransfer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.FromContext(r.Context())
		if err := r.ParseForm(); err != nil {
			b.refuseTransfer(w, err)
			return
		}
		if err := b.move(p.User.ID, r.PostForm.Get("from"), r.PostForm.Get("to"), r.PostForm.Get("amount"), httpauth.ViaSession); err != nil {
			b.refuseTransfer(w, err)
			return
		}
		http.Redirect(w, r, "/session/?done=1", http.StatusSeeOther)
	})
}

func (b *Bank) refuseTransfer(w http.ResponseWriter, err error) {
	var te errTransfer
	msg := "The form could not be read."
	if errors.As(err, &te) {
		msg = "Transfer refused: " + string(te) + "."
	}
	b.render(w, http.StatusBadRequest, "message.html", map[string]any{"Title": "Transfer refused", "Message": msg, "Sesame": b.cfg.Sesame, "Self": b.cfg.Self})
}

// record is what Sesame keeps for a sign-in, as GET /v1/sessions shows it.
type record struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Kind       string    `json:"kind"`
	Current    bool      `json:"current"`
}

// sessionRecord asks Sesame for the record of the request's session, with
// the request's own cookie.
func (b *Bank) sessionRecord(r *http.Request, id string) (record, error) {
	secret, _ := httpauth.SessionCookie(r, CookieName)
	var out struct {
		Sessions []record `json:"sessions"`
	}
	if err := b.getJSON(r.Context(), "/v1/sessions", &http.Cookie{Name: CookieName, Value: secret}, &out); err != nil {
		return record{}, err
	}
	for _, s := range out.Sessions {
		if s.ID == id {
			return s, nil
		}
	}
	return record{}, sesame.ErrSessionNotFound
}

// getJSON GETs a Sesame path with the cookie and decodes the 200 answer.
// It returns sesame.ErrSessionNotFound for a 401.
func (b *Bank) getJSON(ctx context.Context, path string, c *http.Cookie, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.Sesame+path, nil)
	if err != nil {
		return err
	}
	req.AddCookie(c)
	req.Header.Set("User-Agent", "abc-bank")
	res, err := b.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("bank: asking Sesame: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(out)
	case http.StatusUnauthorized:
		return sesame.ErrSessionNotFound
	default:
		return fmt.Errorf("bank: Sesame answered %s for %s", res.Status, path)
	}
}

// remoteSessions authenticates a session cookie by asking Sesame (GET
// /v1/session with the cookie): what an app that cannot read Sesame's
// store does. Every request costs a round trip, and a session ended
// anywhere is refused on the next one.
type remoteSessions struct {
	base   string
	client *http.Client
}

func (rs *remoteSessions) Authenticate(ctx context.Context, secret string) (sesame.Session, sesame.User, error) {
	var out struct {
		User struct {
			ID    string   `json:"id"`
			Email string   `json:"email"`
			Roles []string `json:"roles"`
		} `json:"user"`
		Session struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"session"`
	}
	b := &Bank{cfg: Config{Sesame: rs.base, Client: rs.client}}
	if err := b.getJSON(ctx, "/v1/session", &http.Cookie{Name: CookieName, Value: secret}, &out); err != nil {
		return sesame.Session{}, sesame.User{}, err
	}
	u := sesame.User{ID: out.User.ID, Email: out.User.Email, Roles: out.User.Roles}
	s := sesame.Session{ID: out.Session.ID, UserID: u.ID, CreatedAt: out.Session.CreatedAt, ExpiresAt: out.Session.ExpiresAt, Kind: sesame.KindCookie}
	return s, u, nil
}

// spaPage serves token mode's single page; its script does the rest.
func (b *Bank) spaPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.render(w, http.StatusOK, "spa.html", map[string]any{"Sesame": b.cfg.Sesame, "Self": b.cfg.Self})
	})
}

// apiAccounts is GET /api/accounts: the caller's accounts and transfers,
// and what the request carried.
func (b *Bank) apiAccounts() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.FromContext(r.Context())
		accts, ts := b.snapshot(p.User.ID)
		writeJSON(w, http.StatusOK, map[string]any{
			"email": p.User.Email, "accounts": accts, "transfers": ts, "carried": carried(r),
		})
	})
}

// apiTransfer is POST /api/transfer {"from","to","amount"}.
func (b *Bank) apiTransfer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := httpauth.FromContext(r.Context())
		var in struct{ From, To, Amount string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "the body is not JSON"})
			return
		}
		if err := b.move(p.User.ID, in.From, in.To, in.Amount, httpauth.ViaToken); err != nil {
			var te errTransfer
			msg := "the transfer failed"
			if errors.As(err, &te) {
				msg = string(te)
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": msg})
			return
		}
		accts, ts := b.snapshot(p.User.ID)
		writeJSON(w, http.StatusOK, map[string]any{"accounts": accts, "transfers": ts, "carried": carried(r)})
	})
}

// carried says what credentials a request brought, never their values.
func carried(r *http.Request) map[string]any {
	return map[string]any{
		"authorization": strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "),
		"cookie":        factsOf(r).Present,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
