package sesame

import (
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Role names known to the server. Every user has RoleUser.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Password length bounds, in bytes of UTF-8 after NFKC normalisation.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 1024
)

// maxEmailBytes is RFC 5321's limit on a forward path.
const maxEmailBytes = 254

// User is an account. PasswordHash is a PHC string (see package password);
// it never leaves the server.
type User struct {
	ID           string
	Email        string // normalised: see NormalizeEmail
	Roles        []string
	PasswordHash string
	CreatedAt    time.Time
	// Disabled users cannot sign in (the answer is the same as for a wrong
	// password), and their sessions and refresh families were ended when
	// they were disabled.
	Disabled bool
	// CredentialGen advances whenever what a login proves stops being
	// enough: with every password change (in the same write as the new
	// hash) and when all the user's sessions are ended. A login reads it
	// with the hash it verifies and again, from the store, after it has
	// created its session or refresh family; if it moved, the login ends
	// what it created. Stores keep it; a new user starts at zero.
	CredentialGen int64
}

// HasRole reports whether u carries role.
func (u User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// NormalizeEmail trims s, applies NFKC and lower-cases it, so that
// "Admin@x.test" and "ａｄｍｉｎ@x.test" name the same account. It returns
// ErrInvalidEmail unless the result is a bare address (no display name, no
// comments, no spaces) of at most 254 bytes with no control, format,
// private-use or unassigned character in it.
func NormalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	e := strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))
	if e == "" || len(e) > maxEmailBytes || strings.ContainsFunc(e, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '"' || r == '(' || r == ')' || r == ',' || r == ';' || r == '\\'
	}) {
		return "", ErrInvalidEmail
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || at > 64 || at == len(e)-1 || strings.Count(e, "@") != 1 {
		return "", ErrInvalidEmail
	}
	if strings.ContainsFunc(e, invisible) {
		return "", ErrInvalidEmail
	}
	domain := e[at+1:]
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return "", ErrInvalidEmail
	}
	return e, nil
}

// invisible reports whether r may not appear in an email: a control
// character (Cc: C0 and C1, such as U+0085), a format character (Cf: zero
// width space U+200B, BOM U+FEFF, right-to-left override U+202E, soft
// hyphen U+00AD, ...), a surrogate or private-use code point, any space or
// separator, or a code point Unicode has not assigned. Each
// makes two addresses look alike, or rewrites what a terminal or a page
// shows around it.
func invisible(r rune) bool {
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)
}

// NormalizePassword applies NFKC to p and checks its length: at least
// MinPasswordBytes and at most MaxPasswordBytes of UTF-8. The whole result is
// what gets hashed; nothing is ever truncated.
func NormalizePassword(p string) (string, error) {
	if !utf8.ValidString(p) {
		return "", ErrInvalidPassword
	}
	n := norm.NFKC.String(p)
	if len(n) < MinPasswordBytes || len(n) > MaxPasswordBytes {
		return "", ErrInvalidPassword
	}
	return n, nil
}
