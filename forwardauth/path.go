package forwardauth

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Errors CanonicalPath returns; each matches ErrBadPath with errors.Is.
var (
	// ErrBadPath is what every path that does not canonicalize matches.
	ErrBadPath = errors.New("forwardauth: path does not canonicalize")

	errNotAbsolute = pathError("the path does not start with /")
	errBadEscape   = pathError("a % is not followed by two hexadecimal digits")
	errEncSlash    = pathError("the path has an encoded slash (%2F)")
	errEncDot      = pathError("the path has an encoded dot segment")
	errNotUTF8     = pathError("the decoded path is not UTF-8")
	errControl     = pathError("the path has a control character")
	errParam       = pathError("the path has a ; (a path parameter, which some applications cut off before reading the path)")
	errBackslash   = pathError("the path has a backslash, which some applications read as a slash")
)

type pathError string

func (e pathError) Error() string        { return "forwardauth: " + string(e) }
func (e pathError) Is(target error) bool { return target == ErrBadPath }

// CanonicalPath returns the path of a request URI (a path with an optional
// "?query", as in X-Forwarded-Uri or the path of X-Original-URL) in the one
// form access rules are matched against: the query cut off, every %XX
// escape decoded, "." and ".." segments removed (".." above the root stays
// at the root) and runs of slashes made one. A path that is already
// canonical is returned without allocating.
//
// It returns an error matching ErrBadPath, and no path, when the path does
// not start with "/", has a "%" that is not followed by two hex digits, an
// encoded slash (%2F) or an encoded dot segment ("%2e", ".%2E" and the
// like as a whole segment), a control character raw or encoded, a ";" or a
// backslash raw or encoded (servlet containers cut ";params" off a segment,
// so "/public/..;/admin" is "/admin" to them, and some servers read "\" as
// "/"), or decodes to bytes that are not UTF-8. Those are the requests where the proxy, the
// rules and the application behind them could disagree about which path
// was asked for, so they are refused rather than guessed at.
func CanonicalPath(uri string) (string, error) {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if uri == "" || uri[0] != '/' {
		return "", errNotAbsolute
	}
	if isCanonical(uri) {
		return uri, nil
	}
	// out holds the canonical path so far; segs the offsets where each of
	// its segments starts, so ".." can drop the last one.
	out := make([]byte, 0, len(uri))
	var segs [32]int
	starts := segs[:0]
	rest := uri[1:]
	for {
		seg, next, more := strings.Cut(rest, "/")
		dec, err := decodeSegment(seg)
		if err != nil {
			return "", err
		}
		switch dec {
		case "", ".":
			// an empty segment (a repeated slash) or "." adds nothing;
			// at the end it leaves the trailing slash.
		case "..":
			if n := len(starts); n > 0 {
				out = out[:starts[n-1]]
				starts = starts[:n-1]
			}
		default:
			starts = append(starts, len(out))
			out = append(out, '/')
			out = append(out, dec...)
		}
		if !more {
			if dec == "" || dec == "." || dec == ".." {
				out = append(out, '/')
			}
			break
		}
		rest = next
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	if !utf8.Valid(out) {
		return "", errNotUTF8
	}
	return string(out), nil
}

// isCanonical reports whether p (starting with "/") needs no work: no
// escapes, no control characters, no empty, "." or ".." segment except an
// empty last one (a trailing slash), and valid UTF-8.
func isCanonical(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%', c < 0x20, c == 0x7f, c == ';', c == '\\':
			return false
		case c == '/' && i+1 < len(p):
			switch rest := p[i+1:]; {
			case rest[0] == '/',
				rest == ".", strings.HasPrefix(rest, "./"),
				rest == "..", strings.HasPrefix(rest, "../"):
				return false
			}
		}
	}
	return utf8.ValidString(p)
}

// decodeSegment percent-decodes one path segment, refusing what
// CanonicalPath documents. It allocates only when seg has an escape.
func decodeSegment(seg string) (string, error) {
	if strings.IndexByte(seg, '%') < 0 {
		for i := 0; i < len(seg); i++ {
			if err := refused(seg[i]); err != nil {
				return "", err
			}
		}
		return seg, nil
	}
	b := make([]byte, 0, len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return "", errBadEscape
			}
			c = unhex(seg[i+1])<<4 | unhex(seg[i+2])
			i += 2
			if c == '/' {
				return "", errEncSlash
			}
		}
		if err := refused(c); err != nil {
			return "", err
		}
		b = append(b, c)
	}
	if d := string(b); d == "." || d == ".." {
		return "", errEncDot
	} else {
		return d, nil
	}
}

// refused says why a byte of a decoded path is not accepted, or nil.
func refused(c byte) error {
	switch {
	case c < 0x20 || c == 0x7f:
		return errControl
	case c == ';':
		return errParam
	case c == '\\':
		return errBackslash
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
