package web

import (
	"errors"
	"net"
	"net/url"
	"sort"
	"strings"
)

// MaxReturnTo is the longest return_to value followed, in bytes.
const MaxReturnTo = 2048

// ReturnTo decides which return_to values a sign-in or sign-out may send
// the browser on to, so that no link to Sesame becomes an open redirect.
// It follows a value only when it is
//
//   - a path on this server: one leading "/", never "//" (which a browser
//     reads as another host); or
//   - an absolute http or https URL whose origin (scheme, host and port)
//     is the issuer's, whose host is the cookie domain or lies under it,
//     or whose origin is one of the allowed origins.
//
// It judges a value as a browser would read it, and refuses whatever a
// browser could read differently from Go's URL parser: a backslash (which
// browsers treat as "/"), a control character or whitespace anywhere
// (browsers drop tabs and newlines), user information ("user@"), a
// percent sign or anything but letters, digits, ".", "-", ":" and brackets
// in the host, a scheme not followed by "//" ("https:evil.test" is
// relative in a browser), bytes outside printable ASCII (a non-ASCII URL
// must be percent-encoded), a malformed percent escape, and anything longer than MaxReturnTo.
//
// A ReturnTo is safe for concurrent use.
type ReturnTo struct {
	issuer       string // normalised origin
	cookieDomain string // lower case, no leading dot; "" for none
	allowed      map[string]bool
}

// NewReturnTo returns the policy for a server whose issuer URL is issuer,
// ("" for none: then only paths and the allowed origins are followed),
// with cookieDomain ("" for none) and allowedOrigins as the flags of the
// same names give them. It returns an error for an issuer or an origin
// that is not an http(s) origin.
func NewReturnTo(issuer, cookieDomain string, allowedOrigins []string) (*ReturnTo, error) {
	p := &ReturnTo{allowed: map[string]bool{}}
	if issuer != "" {
		iss, ok := originOf(issuer)
		if !ok {
			return nil, errors.New("web: the issuer is not an http(s) URL: " + issuer)
		}
		p.issuer = iss
	}
	p.cookieDomain = strings.TrimPrefix(strings.ToLower(cookieDomain), ".")
	for _, o := range allowedOrigins {
		n, ok := originOf(o)
		if !ok {
			return nil, errors.New("web: not an http(s) origin: " + o)
		}
		p.allowed[n] = true
	}
	return p, nil
}

// Allowed reports whether the browser may be sent to raw.
func (p *ReturnTo) Allowed(raw string) bool {
	if raw == "" || len(raw) > MaxReturnTo {
		return false
	}
	for i := 0; i < len(raw); i++ {
		// Printable ASCII only: no control, space, DEL or non-ASCII byte
		// (so no Unicode whitespace either), and no backslash.
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	if raw[0] == '/' {
		if len(raw) > 1 && raw[1] == '/' {
			return false
		}
		u, err := url.Parse(raw)
		return err == nil && u.Scheme == "" && u.Host == ""
	}
	origin, ok := originOf(raw)
	if !ok {
		return false
	}
	if origin == p.issuer || p.allowed[origin] {
		return true
	}
	if p.cookieDomain == "" {
		return false
	}
	u, _ := url.Parse(raw) // originOf parsed it already
	host := strings.ToLower(u.Hostname())
	return host == p.cookieDomain || strings.HasSuffix(host, "."+p.cookieDomain)
}

// originOf returns the normalised origin of an absolute http(s) URL
// ("scheme://host:port", lower case, default port dropped) and whether raw
// is one that a browser and Go read the same way.
func originOf(raw string) (string, bool) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", false
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if authority == "" {
		return "", false
	}
	for i := 0; i < len(authority); i++ {
		c := authority[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return "", false // '@' (user information), '%', and the rest
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host != authority || u.Opaque != "" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || strings.HasSuffix(host, ".") {
		return "", false
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port == "" {
		if strings.Contains(host, ":") {
			return scheme + "://[" + host + "]", true
		}
		return scheme + "://" + host, true
	}
	return scheme + "://" + net.JoinHostPort(host, port), true
}

// formAction is the CSP form-action source list that lets a form post
// continue wherever Allowed may send it.
func (p *ReturnTo) formAction() string {
	src := []string{"'self'"}
	if p.issuer != "" {
		src = append(src, p.issuer)
	}
	for o := range p.allowed {
		src = append(src, o)
	}
	if p.cookieDomain != "" {
		// ":*": a host source without a port matches the default port
		// only, and return_to may name any port under the domain.
		src = append(src, p.cookieDomain+":*", "*."+p.cookieDomain+":*")
	}
	sort.Strings(src[1:])
	return strings.Join(src, " ")
}
