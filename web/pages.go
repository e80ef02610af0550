package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sesameauth/sesame"
)

// returnTo is where to go after signing in: raw if it is allowed, else
// fallback.
func (p *Pages) returnTo(raw, fallback string) string {
	if p.cfg.ReturnTo.Allowed(raw) {
		return raw
	}
	return fallback
}

// keepReturnTo is the return_to a form carries on: the value if it is
// allowed, else nothing.
func (p *Pages) keepReturnTo(raw string) string {
	if p.cfg.ReturnTo.Allowed(raw) {
		return raw
	}
	return ""
}

// LoginForm is GET /login: the sign-in form, carrying ?return_to on.
func (p *Pages) LoginForm() http.Handler { return p.returnToForm("login", "Sign in") }

// returnToForm shows a form that carries ?return_to on (when allowed),
// and says who is signed in.
func (p *Pages) returnToForm(name, title string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := view{Title: title, ReturnTo: p.keepReturnTo(r.URL.Query().Get("return_to"))}
		if u, _, err := p.signedIn(r); err == nil {
			v.Me = &u
		}
		p.render(w, r, http.StatusOK, name, v)
	})
}

// Login is POST /login: 303 to return_to (if allowed, else /account) with
// the session cookie; 401 and the form again, with one message for an
// unknown email and a wrong password alike; 429 with Retry-After when
// throttled.
func (p *Pages) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := p.form(r)
		if err != nil {
			p.fail(w, r, nil, err)
			return
		}
		prev, _ := p.cfg.SessionSecret(r)
		email := f.Get("email")
		login, err := p.cfg.Auth.Login(r.Context(), sesame.LoginRequest{
			Email: email, Password: f.Get("password"), Client: p.cfg.Client(r), PreviousSecret: prev,
		})
		p.cfg.OnLogin(err)
		switch {
		case err == nil:
		case errors.Is(err, sesame.ErrInvalidCredentials):
			p.render(w, r, http.StatusUnauthorized, "login", view{
				Title: "Sign in", Email: truncate(email, 320), ReturnTo: p.keepReturnTo(f.Get("return_to")),
				Error: "That email and password do not match an account.",
			})
			return
		default:
			p.fail(w, r, nil, err)
			return
		}
		p.cfg.SetSessionCookie(w, login.Secret, login.Session.AbsoluteExpiresAt, login.Session.CreatedAt)
		redirect(w, p.returnTo(f.Get("return_to"), "/account"))
	})
}

// RegisterForm is GET /register: the sign-up form while registration is
// open, a 403 page when it is closed.
func (p *Pages) RegisterForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.cfg.Registration == "closed" {
			p.registrationClosed(w, r)
			return
		}
		p.render(w, r, http.StatusOK, "register", view{Title: "Create an account"})
	})
}

func (p *Pages) registrationClosed(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusForbidden, "error", view{
		Title: "Registration is closed",
		Error: "This Sesame does not take new accounts. Ask its administrator for one.",
	})
}

// Register is POST /register: creates the account and signs it in (303
// to /account).
func (p *Pages) Register() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := p.form(r)
		if err != nil {
			p.fail(w, r, nil, err)
			return
		}
		if p.cfg.Registration == "closed" {
			p.registrationClosed(w, r)
			return
		}
		email, pw := f.Get("email"), f.Get("password")
		again := func(status int, msg string) {
			p.render(w, r, status, "register", view{Title: "Create an account", Email: truncate(email, 320), Error: msg})
		}
		if f.Get("password_again") != "" && f.Get("password_again") != pw {
			again(http.StatusBadRequest, "The two passwords are not the same.")
			return
		}
		_, err = p.cfg.Auth.Register(r.Context(), email, pw, nil)
		switch {
		case err == nil:
		case errors.Is(err, sesame.ErrInvalidEmail):
			again(http.StatusBadRequest, "That is not an email address Sesame can use.")
			return
		case errors.Is(err, sesame.ErrInvalidPassword):
			again(http.StatusBadRequest, "The password must be at least 8 and at most 1024 bytes long.")
			return
		case errors.Is(err, sesame.ErrEmailTaken):
			again(http.StatusConflict, "That email cannot be registered. If it is yours, sign in instead.")
			return
		default:
			p.fail(w, r, nil, err)
			return
		}
		prev, _ := p.cfg.SessionSecret(r)
		login, err := p.cfg.Auth.Login(r.Context(), sesame.LoginRequest{Email: email, Password: pw, Client: p.cfg.Client(r), PreviousSecret: prev})
		p.cfg.OnLogin(err)
		if err != nil {
			p.fail(w, r, nil, err)
			return
		}
		p.cfg.SetSessionCookie(w, login.Secret, login.Session.AbsoluteExpiresAt, login.Session.CreatedAt)
		redirect(w, "/account")
	})
}

// notices are the messages /account shows after an action, by the code
// the action's redirect names (never text from the request).
var notices = map[string]string{
	"ended":    "That session has ended.",
	"others":   "Every other session has ended.",
	"password": "Your password has changed, and every other session has ended.",
}

// Account is GET /account: the signed-in user's sessions and password
// form; 303 to /login?return_to=/account when not signed in.
func (p *Pages) Account() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, u, s, ok := p.need(w, r, false, "/login?return_to=/account")
		if !ok {
			return
		}
		var v view
		if r.URL.RawQuery != "" { // most requests have none: no query map to make
			v.Notice = notices[r.URL.Query().Get("done")]
		}
		p.account(w, r, http.StatusOK, u, s, v)
	})
}

func (p *Pages) account(w http.ResponseWriter, r *http.Request, status int, u sesame.User, s sesame.Session, v view) {
	list, err := p.cfg.Auth.Sessions(r.Context(), u.ID)
	if err != nil {
		p.fail(w, r, &u, err)
		return
	}
	// The list is the store's own copy: this session first, the others
	// after it, most recently seen first.
	if i := slices.IndexFunc(list, func(x sesame.Session) bool { return x.ID == s.ID }); i >= 0 {
		list[0], list[i] = list[i], list[0]
		list = list[1:]
	}
	slices.SortFunc(list, func(a, b sesame.Session) int { return b.LastSeenAt.Compare(a.LastSeenAt) })
	v.Me, v.Admin, v.Current, v.Sessions = &u, u.HasRole(sesame.RoleAdmin), &s, list
	p.renderAround(w, r, status, "account", v, accountBody)
}

// need reads a request that needs a signed-in user: the form first (for
// a post; refused from another origin), then the session. When it cannot
// go on it answers the request itself (303 to signIn, or an error page)
// and returns ok false.
func (p *Pages) need(w http.ResponseWriter, r *http.Request, post bool, signIn string) (f url.Values, u sesame.User, s sesame.Session, ok bool) {
	if post {
		var err error
		if f, err = p.form(r); err != nil {
			p.fail(w, r, nil, err)
			return nil, u, s, false
		}
	}
	u, s, err := p.signedIn(r)
	if errors.Is(err, sesame.ErrSessionNotFound) {
		redirect(w, signIn)
		return nil, u, s, false
	} else if err != nil {
		p.fail(w, r, nil, err)
		return nil, u, s, false
	}
	return f, u, s, true
}

// postSignedIn runs an /account form post: refused from another origin,
// 303 to /login when not signed in.
func (p *Pages) postSignedIn(do func(w http.ResponseWriter, r *http.Request, f url.Values, u sesame.User, s sesame.Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, u, s, ok := p.need(w, r, true, "/login?return_to=/account"); ok {
			do(w, r, f, u, s)
		}
	})
}

// EndSession is POST /account/sessions/end: ends one of the user's
// sessions (field id); ending this one signs out.
func (p *Pages) EndSession() http.Handler {
	return p.postSignedIn(func(w http.ResponseWriter, r *http.Request, f url.Values, u sesame.User, s sesame.Session) {
		id := f.Get("id")
		err := p.cfg.Auth.RevokeSession(r.Context(), u.ID, id, p.cfg.Client(r))
		switch {
		case errors.Is(err, sesame.ErrNotFound):
			p.account(w, r, http.StatusNotFound, u, s, view{Error: "That session had already ended."})
			return
		case err != nil:
			p.fail(w, r, &u, err)
			return
		}
		if id == s.ID {
			p.cfg.ClearSessionCookie(w)
			redirect(w, "/login")
			return
		}
		redirect(w, "/account?done=ended")
	})
}

// EndOtherSessions is POST /account/sessions/end-others: "sign out
// everywhere else".
func (p *Pages) EndOtherSessions() http.Handler {
	return p.postSignedIn(func(w http.ResponseWriter, r *http.Request, f url.Values, u sesame.User, s sesame.Session) {
		if _, err := p.cfg.Auth.RevokeSessions(r.Context(), u.ID, s.ID, p.cfg.Client(r)); err != nil {
			p.fail(w, r, &u, err)
			return
		}
		redirect(w, "/account?done=others")
	})
}

// ChangePassword is POST /account/password: fields current_password and
// new_password; every other session and refresh family ends.
func (p *Pages) ChangePassword() http.Handler {
	return p.postSignedIn(func(w http.ResponseWriter, r *http.Request, f url.Values, u sesame.User, s sesame.Session) {
		err := p.cfg.Auth.ChangePassword(r.Context(), sesame.PasswordChange{
			User: u, SessionID: s.ID, KeepSession: true,
			Current: f.Get("current_password"), New: f.Get("new_password"), Client: p.cfg.Client(r),
		})
		switch {
		case err == nil:
			redirect(w, "/account?done=password")
		case errors.Is(err, sesame.ErrInvalidCredentials):
			p.account(w, r, http.StatusBadRequest, u, s, view{Error: "Your current password was not right, so the password is unchanged."})
		case errors.Is(err, sesame.ErrInvalidPassword):
			p.account(w, r, http.StatusBadRequest, u, s, view{Error: "The new password must be at least 8 and at most 1024 bytes long."})
		default:
			p.fail(w, r, &u, err)
		}
	})
}

// LogoutForm is GET /logout: a page with a sign-out button (a form to
// this same origin), so that any app can link to it.
func (p *Pages) LogoutForm() http.Handler { return p.returnToForm("logout", "Sign out") }

// Logout is POST /logout: ends the cookie's session, clears the cookie and
// answers 303 to return_to if allowed, else to /login.
func (p *Pages) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := p.form(r)
		if err != nil {
			p.fail(w, r, nil, err)
			return
		}
		if secret, ok := p.cfg.SessionSecret(r); ok {
			err := p.cfg.Auth.Logout(r.Context(), secret, p.cfg.Client(r))
			if err != nil && !errors.Is(err, sesame.ErrSessionNotFound) {
				p.fail(w, r, nil, err)
				return
			}
		}
		p.cfg.ClearSessionCookie(w)
		redirect(w, p.returnTo(f.Get("return_to"), "/login"))
	})
}

// adminPageSize is how many users or events one page of /admin shows;
// adminEventWindow how many of the newest events it filters.
const (
	adminPageSize    = 50
	adminEventWindow = 5000
)

// eventTypes are the audit event types /admin filters by.
var eventTypes = []string{
	sesame.EventLoginSucceeded, sesame.EventLoginFailed, sesame.EventLogout, sesame.EventSessionRevoked,
	sesame.EventPasswordChanged, sesame.EventUserCreated, sesame.EventTokenIssued, sesame.EventTokenRefreshed,
	sesame.EventTokenReuse, sesame.EventTokenRevoked,
	sesame.EventUserDisabled, sesame.EventUserEnabled, sesame.EventRolesChanged, sesame.EventEmailChanged, sesame.EventUserDeleted,
}

// admin runs an /admin request: 303 to /login when not signed in, a 403
// page without the admin role.
func (p *Pages) admin(post bool, do func(w http.ResponseWriter, r *http.Request, f url.Values, me sesame.User)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, u, _, ok := p.need(w, r, post, "/login")
		if !ok {
			return
		}
		if !u.HasRole(sesame.RoleAdmin) {
			p.render(w, r, http.StatusForbidden, "error", view{Me: &u, Title: "Administrators only",
				Error: "This page is for administrators, and your account does not have that role."})
			return
		}
		do(w, r, f, u)
	})
}

// Admin is GET /admin: users found by email (?q), one user's sessions
// (?user), and the audit log filtered by user and event type (?type),
// newest first, a page at a time (?page).
func (p *Pages) Admin() http.Handler {
	return p.admin(false, func(w http.ResponseWriter, r *http.Request, _ url.Values, me sesame.User) {
		q := r.URL.Query()
		v := view{Me: &me, Admin: true, Notice: adminNotices[q.Get("done")],
			Query: truncate(strings.TrimSpace(q.Get("q")), 320), Types: eventTypes, UserByID: map[string]string{}}
		all, err := p.cfg.Auth.Users(r.Context())
		if err != nil {
			p.fail(w, r, &me, err)
			return
		}
		needle := strings.ToLower(v.Query)
		for _, u := range all {
			v.UserByID[u.ID] = u.Email
			if id := q.Get("user"); id != "" && u.ID == id {
				v.Selected = &u
			}
			if needle == "" || strings.Contains(u.Email, needle) {
				if len(v.Users) == adminPageSize {
					v.MoreUsers = true
					continue
				}
				v.Users = append(v.Users, u)
			}
		}
		if v.Selected != nil {
			if v.Sessions, err = p.cfg.Auth.Sessions(r.Context(), v.Selected.ID); err != nil {
				p.fail(w, r, &me, err)
				return
			}
			v.SessionList = sessionList(v.Sessions, time.Now())
		}
		if t := q.Get("type"); slices.Contains(eventTypes, t) {
			v.Type = t
		}
		if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n <= adminEventWindow/adminPageSize {
			v.Page = n
		} else {
			v.Page = 1
		}
		eq := sesame.EventQuery{Limit: adminEventWindow}
		if v.Selected != nil {
			eq.UserID = v.Selected.ID
		}
		events, err := p.cfg.Auth.Events(r.Context(), eq)
		if err != nil {
			p.fail(w, r, &me, err)
			return
		}
		if v.Type != "" {
			events = slices.DeleteFunc(events, func(e sesame.Event) bool { return e.Type != v.Type })
		}
		from := (v.Page - 1) * adminPageSize
		if from < len(events) {
			v.Events = events[from:min(from+adminPageSize, len(events))]
			v.MorePages = from+adminPageSize < len(events)
		}
		p.render(w, r, http.StatusOK, "admin", v)
	})
}

// adminNotices are the messages /admin shows after an action, by the code
// its redirect names.
var adminNotices = map[string]string{
	"ended":    "Every session of that user has ended.",
	"disabled": "That user is disabled: they cannot sign in, and every session of theirs has ended.",
	"enabled":  "That user can sign in again.",
	"granted":  "That user is now an administrator.",
	"removed":  "That user is no longer an administrator, and every session of theirs has ended.",
	"deleted":  "That user is deleted, and every session of theirs has ended.",
}

// adminUser runs an /admin form post about the user in field user_id: a
// 404 page when there is none. The administrator is the actor of what
// do records in the audit log, as through the API.
func (p *Pages) adminUser(do func(w http.ResponseWriter, r *http.Request, f url.Values, me, u sesame.User, c sesame.Client)) http.Handler {
	return p.admin(true, func(w http.ResponseWriter, r *http.Request, f url.Values, me sesame.User) {
		u, err := p.cfg.Auth.User(r.Context(), f.Get("user_id"))
		if errors.Is(err, sesame.ErrUserNotFound) {
			p.render(w, r, http.StatusNotFound, "error", view{Me: &me, Admin: true, Title: "No such user", Error: "There is no user with that id."})
			return
		} else if err != nil {
			p.fail(w, r, &me, err)
			return
		}
		c := p.cfg.Client(r)
		c.Actor = me.ID
		do(w, r, f, me, u, c)
	})
}

// adminDone answers an /admin action that changed the user id: 303 back
// to the user's view with the notice done.
func adminDone(w http.ResponseWriter, done, id string) {
	redirect(w, "/admin?done="+done+"&user="+url.QueryEscape(id))
}

// AdminEndSessions is POST /admin/sessions/end: ends every session and
// refresh family of the user in field user_id.
func (p *Pages) AdminEndSessions() http.Handler {
	return p.adminUser(func(w http.ResponseWriter, r *http.Request, f url.Values, me, u sesame.User, c sesame.Client) {
		n, err := p.cfg.Auth.RevokeSessions(r.Context(), u.ID, "", c)
		if err != nil {
			p.fail(w, r, &me, err)
			return
		}
		p.cfg.Logger.InfoContext(r.Context(), "admin ended user's sessions", "admin_id", me.ID, "user_id", u.ID, "sessions", n)
		adminDone(w, "ended", u.ID)
	})
}

// boolField reads a form field that must be "true" or "false".
func boolField(f url.Values, name string) (bool, error) {
	switch f.Get(name) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errBadForm
}

// adminSwitch runs an /admin form post that turns something about the
// user in field user_id on or off: field must be "true" or "false" (else
// a 400 page); set does it and returns the notice of the redirect.
func (p *Pages) adminSwitch(field string, set func(r *http.Request, u sesame.User, on bool, c sesame.Client) (done string, err error)) http.Handler {
	return p.adminUser(func(w http.ResponseWriter, r *http.Request, f url.Values, me, u sesame.User, c sesame.Client) {
		on, err := boolField(f, field)
		done := ""
		if err == nil {
			done, err = set(r, u, on, c)
		}
		if err != nil {
			p.fail(w, r, &me, err)
			return
		}
		p.cfg.Logger.InfoContext(r.Context(), "admin changed a user", "admin_id", me.ID, "user_id", u.ID, field, on)
		adminDone(w, done, u.ID)
	})
}

// AdminSetDisabled is POST /admin/users/disabled: disables (field
// disabled=true; every session and refresh family ends) or enables
// (disabled=false) the user in field user_id, as PATCH
// /v1/admin/users/{id} does.
func (p *Pages) AdminSetDisabled() http.Handler {
	return p.adminSwitch("disabled", func(r *http.Request, u sesame.User, disabled bool, c sesame.Client) (string, error) {
		_, err := p.cfg.Auth.SetDisabled(r.Context(), u.ID, disabled, c)
		if disabled {
			return "disabled", err
		}
		return "enabled", err
	})
}

// AdminSetAdmin is POST /admin/users/admin-role: grants (field
// admin=true) or removes (admin=false; every session and refresh family
// ends) the admin role of the user in field user_id, keeping the user's
// other roles, as PATCH /v1/admin/users/{id} with the changed roles does.
func (p *Pages) AdminSetAdmin() http.Handler {
	return p.adminSwitch("admin", func(r *http.Request, u sesame.User, admin bool, c sesame.Client) (string, error) {
		roles := slices.DeleteFunc(slices.Clone(u.Roles), func(role string) bool { return role == sesame.RoleAdmin })
		done := "removed"
		if admin {
			roles, done = append(roles, sesame.RoleAdmin), "granted"
		}
		_, err := p.cfg.Auth.SetRoles(r.Context(), u.ID, roles, c)
		return done, err
	})
}

// AdminDeleteUser is POST /admin/users/delete: deletes the user in field
// user_id, ending every session and refresh family first, as DELETE
// /v1/admin/users/{id} does. The form must carry confirm=yes (a checkbox
// the administrator ticks); without it nothing changes and the answer is
// a 400 page that says so.
func (p *Pages) AdminDeleteUser() http.Handler {
	return p.adminUser(func(w http.ResponseWriter, r *http.Request, f url.Values, me, u sesame.User, c sesame.Client) {
		if f.Get("confirm") != "yes" {
			p.render(w, r, http.StatusBadRequest, "error", view{Me: &me, Admin: true, Title: "Not deleted",
				Error: "The user was not deleted: tick the box that confirms it, then press the button again."})
			return
		}
		if err := p.cfg.Auth.DeleteUser(r.Context(), u.ID, c); err != nil {
			p.fail(w, r, &me, err)
			return
		}
		p.cfg.Logger.InfoContext(r.Context(), "admin deleted a user", "admin_id", me.ID, "user_id", u.ID)
		redirect(w, "/admin?done=deleted")
	})
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
