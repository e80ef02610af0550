package server

import (
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonAppender is a response body that encodes itself by appending to a
// buffer, with no reflection and no allocation: the bodies of the routes
// every signed-in request takes (GET /v1/session, GET /v1/userinfo).
// writeJSON uses it when the value has it. Its output is byte for byte what
// encoding/json writes with HTML escaping (FuzzAppendJSON holds the two
// together), so a client never sees which encoder answered.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// Header values the hot routes share: assigned to the header map directly
// (the keys are canonical), they cost no canonicalisation and no
// allocation. Nothing may write into them; an Add copies.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeHot is writeJSON for the bodies of the hot routes, taking the value
// as itself rather than boxed in an interface (an allocation on every
// signed-in request).
func writeHot[T hotBody](w http.ResponseWriter, status int, v T) {
	w.Header()["Content-Type"] = jsonContentType
	writeAppended(w, status, v)
}

// hotBody is the bodies writeHot writes: exactly these types, as in
// writeJSON.
type hotBody interface {
	sessionResponse | userinfoResponse
	jsonAppender
}

// writeAppended writes a jsonAppender's body; see writeJSON.
func writeAppended[T jsonAppender](w http.ResponseWriter, status int, v T) {
	bp := jsonBufs.Get().(*[]byte)
	b := append(v.appendJSON((*bp)[:0]), '\n')
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client went away; nothing to do
	if cap(b) <= 64<<10 {
		*bp = b
		jsonBufs.Put(bp)
	}
}

const hexDigits = "0123456789abcdef"

// htmlSafe reports whether encoding/json with HTML escaping writes the
// ASCII byte c as itself inside a string.
func htmlSafe(c byte) bool {
	return c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// does with HTML escaping: <, > and & as \u003c, \u003e and \u0026, control
// characters escaped, U+2028 and U+2029 escaped, and each byte of invalid
// UTF-8 replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONStrings appends ss as a JSON array (nil as null, as
// encoding/json does: the responses turn a nil list into an empty one).
func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// the fraction it has).
func appendJSONTime(b []byte, t time.Time) []byte {
	// The layout alone, not within quotes: AppendFormat takes its fast
	// path only for exactly time.RFC3339Nano.
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendUserJSON and appendSessionJSON are functions, not appendJSON
// methods: userJSON is embedded in larger answers (PATCH
// /v1/admin/users/{id} adds "disabled"), and a method would be promoted to
// them, so that writeJSON would write the embedded part alone.
func appendUserJSON(b []byte, u userJSON) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, u.ID)
	b = append(b, `,"email":`...)
	b = appendJSONString(b, u.Email)
	b = append(b, `,"roles":`...)
	b = appendJSONStrings(b, u.Roles)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, u.CreatedAt)
	return append(b, '}')
}

func appendSessionJSON(b []byte, s sessionJSON) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, s.CreatedAt)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTime(b, s.ExpiresAt)
	return append(b, '}')
}

func (r sessionResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"user":`...)
	b = appendUserJSON(b, r.User)
	b = append(b, `,"session":`...)
	b = appendSessionJSON(b, r.Session)
	return append(b, '}')
}

func (r userinfoResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"sub":`...)
	b = appendJSONString(b, r.Sub)
	b = append(b, `,"email":`...)
	b = appendJSONString(b, r.Email)
	b = append(b, `,"roles":`...)
	b = appendJSONStrings(b, r.Roles)
	b = append(b, `,"auth":`...)
	b = appendJSONString(b, r.Auth)
	if r.SID != "" {
		b = append(b, `,"sid":`...)
		b = appendJSONString(b, r.SID)
	}
	return append(b, '}')
}
