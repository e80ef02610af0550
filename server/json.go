package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 1 << 20

// maxJSONDepth caps the nesting of a JSON request body. Sesame's requests
// are flat objects; anything deeper is hostile.
const maxJSONDepth = 16

// errBadRequest is wrapped by everything decodeJSON refuses.
var errBadRequest = errors.New("bad request")

// badRequest returns an error that becomes 400 invalid_request with msg as
// its description.
func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", desc: fmt.Sprintf(format, args...)}
}

// isJSON reports whether the request declares a JSON body. Cross-site forms
// can only send text/plain, form-urlencoded or multipart bodies without a
// preflight, so insisting on JSON closes that door too.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || (len(mt) > 17 && mt[:12] == "application/" && mt[len(mt)-5:] == "+json"))
}

// readBody reads the whole (already size-capped) body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", desc: "request body is larger than 1 MiB"}
	}
	if err != nil {
		return nil, badRequest("request body could not be read")
	}
	return b, nil
}

// decodeJSON decodes a JSON request body into a T. It refuses a body that
// is not declared as JSON, is not valid UTF-8, is not a single object, nests
// deeper than maxJSONDepth, repeats a key, or has a field T does not know.
func decodeJSON[T any](r *http.Request) (T, error) {
	var v T
	if !isJSON(r) {
		return v, badRequest("Content-Type must be application/json")
	}
	b, err := readBody(r)
	if err != nil {
		return v, err
	}
	if err := unmarshalStrict(b, &v); err != nil {
		return v, err
	}
	return v, nil
}

// unmarshalStrict is decodeJSON without the request: the part a fuzzer
// drives.
func unmarshalStrict(b []byte, v any) error {
	if !utf8.Valid(b) {
		return badRequest("request body is not valid UTF-8")
	}
	if err := checkSurrogates(b); err != nil {
		return err
	}
	if err := checkJSONShape(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return badRequest("field %q has the wrong type", ute.Field)
		}
		return badRequest("request body is not the expected JSON object: %s", jsonErrText(err))
	}
	return nil
}

// checkSurrogates refuses a \u escape that encodes half of a UTF-16
// surrogate pair without its other half. encoding/json decodes such an
// escape to U+FFFD, so different inputs (passwords "\ud800x" and
// "\udfffx") would decode to one string. Anything else malformed is left
// to the decoder, which refuses it.
func checkSurrogates(b []byte) error {
	bad := badRequest("request body has a \\u escape of an unpaired UTF-16 surrogate")
	inString := false
	for i := 0; i < len(b); i++ {
		if !inString {
			inString = b[i] == '"'
			continue
		}
		switch b[i] {
		case '"':
			inString = false
		case '\\':
			r, ok := escapedRune(b, i)
			if !ok {
				i++ // another escape: skip the escaped byte
				continue
			}
			i += 5
			switch {
			case r >= 0xdc00 && r <= 0xdfff:
				return bad
			case r >= 0xd800 && r <= 0xdbff:
				lo, ok := escapedRune(b, i+1)
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return bad
				}
				i += 6
			}
		}
	}
	return nil
}

// escapedRune reads the \uXXXX escape at b[i:], if there is one.
func escapedRune(b []byte, i int) (rune, bool) {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// jsonErrText keeps decoder messages that describe the input only.
func jsonErrText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON"
	}
	if s := err.Error(); len(s) < 120 && bytes.HasPrefix([]byte(s), []byte("json: unknown field")) {
		return s[len("json: "):]
	}
	return "malformed JSON"
}

// checkJSONShape walks the tokens of b: it must be exactly one JSON object,
// nest at most maxJSONDepth deep and never repeat a key within an object
// (encoding/json would silently keep the last, letting two parsers
// disagree about what was sent).
func checkJSONShape(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		keys     map[string]struct{}
		isObject bool
		wantKey  bool
	}
	var stack []frame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return badRequest("request body is malformed JSON")
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return badRequest("request body must be a JSON object")
			}
			first = false
		} else if len(stack) == 0 {
			return badRequest("request body has data after the JSON object")
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.isObject && top.wantKey {
				if k, ok := tok.(string); ok {
					// encoding/json matches field names case-insensitively
					// ("EMAIL" fills Email), so keys that fold alike repeat.
					k = foldKey(k)
					if _, dup := top.keys[k]; dup {
						return badRequest("request body repeats the key %q", truncate(k, 64))
					}
					top.keys[k] = struct{}{}
					top.wantKey = false
					continue
				}
			} else if top.isObject {
				top.wantKey = true // this token is (or opens) the value
			}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return badRequest("request body nests deeper than %d levels", maxJSONDepth)
				}
				stack = append(stack, frame{isObject: d == '{', wantKey: d == '{', keys: map[string]struct{}{}})
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		}
	}
	if first {
		return badRequest("request body is empty")
	}
	return nil
}

// foldKey maps every rune to the smallest rune of its Unicode simple case
// folding orbit: two keys fold alike exactly when bytes.EqualFold (what
// encoding/json uses to match field names) says they are equal.
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		return m
	}, s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// writeJSON writes v as the JSON response with the given status. The hot
// routes' bodies encode themselves (jsonAppender); anything else goes
// through encoding/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	// Exact types, not the interface: a type embedding one of these would
	// be promoted its appendJSON and lose its own fields.
	switch a := v.(type) {
	case sessionResponse:
		writeAppended(w, status, a)
		return
	case userinfoResponse:
		writeAppended(w, status, a)
		return
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v) // the client went away; nothing to do
}
