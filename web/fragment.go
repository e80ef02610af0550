package web

import (
	"bytes"
	"html"
	"html/template"
	"strconv"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// The list of sessions is the only part of a page that grows with the
// data, and html/template pays a reflective call to an escaper for every
// value action (about 2 µs and 5 allocations each here,
// docs/BENCHMARKS.md): the five or so fields of each session row made
// /account cost four times GET /v1/sessions. So /account's content is
// written here, straight into the page between its templates "before"
// and "after" (renderAround), and /admin's list of a user's sessions is
// built here as one value its template inserts.
//
// A fragment is safe by construction: markup takes only a markup, which a
// string variable does not convert to without an explicit conversion, so
// in practice only constants written here; every value goes through
// text, which escapes it with html.EscapeString (fit for element text and
// double-quoted attribute values, the only places values go).

// markup is HTML written in this file. Never convert data to it.
type markup string

// fragment writes HTML into b: markup as is, text escaped.
type fragment struct{ b *bytes.Buffer }

func (f fragment) markup(m markup) { f.b.WriteString(string(m)) }

func (f fragment) text(s string) { f.b.WriteString(html.EscapeString(s)) }

// when writes t as "2006-01-02 15:04 UTC", as the "when" of the
// templates does (without parsing that layout for every row).
func (f fragment) when(t time.Time) {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, _ := t.Clock()
	var tmp [24]byte
	b := strconv.AppendInt(tmp[:0], int64(y), 10)
	b = append(b, '-', byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10),
		' ', byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10))
	f.b.Write(append(b, " UTC"...))
}

// ago writes how long before now t was, in words.
func (f fragment) ago(t, now time.Time) {
	var tmp [24]byte
	f.b.Write(appendAgo(tmp[:0], now.Sub(t)))
}

// accountBody is what /account shows of the user: the email and roles,
// then where they are signed in (this session first, with a sign-out
// button; the others each with an "end" button).
//
// It is written between /account's templates "before" and "after", from
// v.Me, v.Current and v.Sessions (the others).
func accountBody(f fragment, v *view) {
	u, others := v.Me, v.Sessions
	f.markup("<section class=\"card\">\n<dl class=\"facts\">\n  <dt>Email</dt><dd>")
	f.text(u.Email)
	// The password form's username, for password managers (the form is
	// in the template "after"; the form attribute joins them).
	f.markup("<input type=\"text\" name=\"username\" autocomplete=\"username\" form=\"password-form\" hidden value=\"")
	f.text(u.Email)
	f.markup("\"></dd>\n  <dt>Roles</dt><dd>")
	for i, r := range u.Roles {
		if i > 0 {
			f.markup(", ")
		}
		f.text(r)
	}
	f.markup("</dd>\n</dl>\n</section>\n\n<section class=\"card\" aria-labelledby=\"sessions\">\n<h2 id=\"sessions\">Where you are signed in</h2>\n")
	f.sessions(v.Current, others, true, time.Now())
	if len(others) > 0 {
		f.markup("\n<form method=\"post\" action=\"/account/sessions/end-others\">\n  <button type=\"submit\" class=\"danger\">Sign out everywhere else</button>\n</form>")
	} else {
		f.markup("\n<p class=\"hint\">You are not signed in anywhere else.</p>")
	}
	f.markup("\n</section>")
}

// sessionList is the <ul> of a user's sessions on /admin.
func sessionList(list []sesame.Session, now time.Time) template.HTML {
	f := fragment{new(bytes.Buffer)}
	f.b.Grow(64 + 512*len(list))
	f.sessions(nil, list, false, now)
	return template.HTML(f.b.String())
}

// sessions writes a <ul> of sessions: current (if any) first, tagged
// "this device" with a sign-out button, then others, each with an "end"
// button when endable.
func (f fragment) sessions(current *sesame.Session, others []sesame.Session, endable bool, now time.Time) {
	f.markup(`<ul class="sessions">`)
	if current != nil {
		f.markup("\n  <li class=\"session current\">\n    <div>\n      <strong>")
		f.text(describeCached(current.UserAgent))
		f.markup(`</strong> <span class="tag">this device</span>`)
		f.sessionMeta(current, now)
		f.markup("    </div>\n    <form method=\"post\" action=\"/account/sessions/end\">\n      <input type=\"hidden\" name=\"id\" value=\"")
		f.text(current.ID)
		f.markup("\">\n      <button type=\"submit\" class=\"secondary\" aria-label=\"Sign out of this device\">Sign out</button>\n    </form>\n  </li>")
	}
	for i := range others {
		s := &others[i]
		device := describeCached(s.UserAgent)
		f.markup("\n  <li class=\"session\">\n    <div>\n      <strong>")
		f.text(device)
		f.markup(`</strong>`)
		if s.Kind == sesame.KindToken {
			f.markup(` <span class="tag">app (tokens)</span>`)
		}
		f.sessionMeta(s, now)
		f.markup("    </div>")
		if endable {
			f.markup("\n    <form method=\"post\" action=\"/account/sessions/end\">\n      <input type=\"hidden\" name=\"id\" value=\"")
			f.text(s.ID)
			f.markup("\">\n      <button type=\"submit\" class=\"danger\" aria-label=\"End the session of ")
			f.text(device)
			f.markup(" signed in ")
			f.when(s.CreatedAt)
			f.markup("\">End</button>\n    </form>")
		}
		f.markup("\n  </li>")
	}
	f.markup("\n</ul>")
}

// sessionMeta writes "From ADDRESS · signed in WHEN · last seen AGO".
func (f fragment) sessionMeta(s *sesame.Session, now time.Time) {
	f.markup("\n      <p class=\"meta\">")
	if s.IP != "" {
		f.markup("From ")
		f.text(s.IP)
		f.markup(" · ")
	}
	f.markup("signed in ")
	f.when(s.CreatedAt)
	f.markup(" · last seen ")
	f.ago(s.LastSeenAt, now)
	f.markup("</p>\n")
}

// appendAgo appends how long ago something was, d before now, in words.
func appendAgo(b []byte, d time.Duration) []byte {
	n, unit := 0, ""
	switch {
	case d < time.Minute:
		return append(b, "just now"...)
	case d < time.Hour:
		n, unit = int(d/time.Minute), " minute"
	case d < 48*time.Hour:
		n, unit = int(d/time.Hour), " hour"
	default:
		n, unit = int(d/(24*time.Hour)), " day"
	}
	b = append(strconv.AppendInt(b, int64(n), 10), unit...)
	if n != 1 {
		b = append(b, 's')
	}
	return append(b, " ago"...)
}

// devices caches DescribeUserAgent by user agent: a person's few
// browsers recur on every page, and describing one scans the string for
// some twenty names. It is bounded: when full it starts again empty, and
// long user agents are not kept.
var devices = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const (
	maxCachedDevices   = 1024
	maxCachedUserAgent = 512
)

func describeCached(ua string) string {
	if len(ua) > maxCachedUserAgent {
		return DescribeUserAgent(ua)
	}
	devices.RLock()
	d, ok := devices.m[ua]
	devices.RUnlock()
	if ok {
		return d
	}
	d = DescribeUserAgent(ua)
	devices.Lock()
	if len(devices.m) >= maxCachedDevices {
		clear(devices.m)
	}
	devices.m[ua] = d
	devices.Unlock()
	return d
}
