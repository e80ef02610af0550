package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sesameauth/sesame"
)

// fuzzJSONSeeds are hostile request bodies and valid ones.
var fuzzJSONSeeds = []string{
	// valid
	`{"email":"a@x.test","password":"correct horse"}`,
	`{}`,
	` { "email" : "a@x.test" } `,
	"{\"email\":\"\\u00e9@x.test\",\"password\":\"\\ud83d\\ude00 \\\" \\\\ \\n\"}",
	`{"email":"a@x.test","password":null}`,
	`{"email":"ａｄｍｉｎ@x.test","password":"ｐａｓｓｗｏｒｄ"}`,
	"{\"email\":\"a@x.test\"}\n",
	// duplicate keys
	`{"email":"a@x.test","email":"b@x.test","password":"p"}`,
	`{"password":"a","password":"b"}`,
	`{"email":"a@x.test","EMAIL":"b@x.test"}`,
	`{"email":"a@x.test","\u0065mail":"b@x.test"}`,
	// nesting
	`{"email":` + strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100) + `}`,
	`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
	`{"x":` + strings.Repeat("[", 15) + strings.Repeat("]", 15) + `}`,
	strings.Repeat("[", 1000),
	// unpaired surrogates (encoding/json would make each U+FFFD)
	"{\"email\":\"a@x.test\",\"password\":\"\\ud800abcdefgh\"}",
	"{\"email\":\"a@x.test\",\"password\":\"\\udfffabcdefgh\"}",
	"{\"email\":\"a@x.test\",\"password\":\"\\ude00\\ud83d\"}",
	"{\"email\":\"a@x.test\",\"password\":\"\\ud83d\\u0041\"}",
	"{\"email\":\"a@x.test\",\"password\":\"\\\\ud800\"}",
	// invalid UTF-8
	"{\"email\":\"a@x.test\",\"password\":\"\xff\xfe\"}",
	"{\"email\":\"a\xc3\"}",
	"{\"\xff\":1}",
	"\xef\xbb\xbf{}",
	// truncated
	`{"email":"a@x.test","password":"p`,
	`{"email":"a@x.test",`,
	`{"email"`,
	`{`,
	``,
	` `,
	// trailing garbage
	`{"email":"a@x.test"} x`,
	`{"email":"a@x.test"}{"email":"b@x.test"}`,
	`{}]`,
	`{}}`,
	`{} {}`,
	`{}null`,
	// not an object
	`[{"email":"a@x.test"}]`,
	`"a@x.test"`,
	`null`,
	`1`,
	`true`,
	// unknown fields, wrong types
	`{"email":"a@x.test","password":"p","roles":["admin"]}`,
	`{"email":1,"password":"p"}`,
	`{"email":"a@x.test","password":12345678}`,
	`{"email":["a@x.test"]}`,
	`{"password":{"p":"q"}}`,
	`{"password":true}`,
	`{"email":"a@x.test" /* c */}`,
	`{'email':'a@x.test'}`,
	`{email:"a@x.test"}`,
	`{"email":"a@x.test",}`,
	`{"email":"a@x.test" "password":"p"}`,
	`{"email":NaN}`,
	`{"email":1e999}`,
	"{\"email\":\"a\x00b\"}",
	`{"email":"\ud800"}`,
}

// FuzzDecodeJSON drives the strict decoder behind every JSON request body.
// It must never panic; it refuses with 400 invalid_request; and whatever it
// accepts is valid JSON, one object, that plain encoding/json decodes to the
// same value, so no other parser can read a different request out of it.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range fuzzJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var strict credentials
		err := unmarshalStrict(b, &strict)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.code != "invalid_request" {
				t.Fatalf("unmarshalStrict(%q) = %v, want a 400 invalid_request", b, err)
			}
			if !utf8.ValidString(ae.desc) || len(ae.desc) > 256 {
				t.Fatalf("unmarshalStrict(%q): description %q is not short valid UTF-8", b, ae.desc)
			}
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("unmarshalStrict accepted %q, which is not valid UTF-8 JSON", b)
		}
		var plain credentials
		if err := json.Unmarshal(b, &plain); err != nil {
			t.Fatalf("unmarshalStrict accepted %q, which encoding/json refuses: %v", b, err)
		}
		if strict != plain {
			t.Fatalf("unmarshalStrict(%q) = %+v, encoding/json = %+v", b, strict, plain)
		}
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
			t.Fatalf("unmarshalStrict accepted %q, which is not a JSON object (%v)", b, err)
		}

		// The same for a generic value: any object is accepted or refused
		// alike, and when accepted decodes the same.
		var strictAny, plainAny map[string]any
		if err := unmarshalStrict(b, &strictAny); err != nil {
			t.Fatalf("unmarshalStrict(%q) accepted into a struct but not into a map: %v", b, err)
		}
		json.Unmarshal(b, &plainAny)
		if !reflect.DeepEqual(strictAny, plainAny) {
			t.Fatalf("unmarshalStrict(%q) = %v, encoding/json = %v", b, strictAny, plainAny)
		}
	})
}

// FuzzSessionCookie drives the session cookie's parsing with arbitrary
// Cookie headers: it must never panic, and must return only values of the
// exact form the server issues, taken from the header itself.
func FuzzSessionCookie(f *testing.F) {
	secret, _ := sesame.NewSecret()
	for _, s := range [][2]string{
		{CookieName + "=" + secret, ""},
		{"a=b; " + CookieName + "=" + secret + "; c=d", ""},
		{CookieName + `="` + secret + `"`, ""},
		{CookieName + "=" + secret + "=", ""},
		{CookieName + "=" + secret[:42], ""},
		{CookieName + "=" + secret + "A", ""},
		{CookieName + "=+" + secret[1:], ""},
		{CookieName + "=", ""},
		{CookieName, ""},
		{"__host-sesame=" + secret, ""},
		{"sesame=" + secret, ""},
		{CookieName + "=abc; " + CookieName + "=" + secret, ""},
		{CookieName + "=abc", CookieName + "=" + secret},
		{";;;;;", "=;=;="},
		{CookieName + "=" + secret + "\x00", ""},
		{CookieName + "= " + secret, ""},
		{CookieName + "=" + secret + " ", ""},
		{"\xff\xfe" + CookieName + "=" + secret, ""},
		{CookieName + "=" + strings.Repeat("A", 100000), ""},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		hdr := http.Header{"Cookie": {h1}}
		if h2 != "" {
			hdr["Cookie"] = append(hdr["Cookie"], h2)
		}
		r := &http.Request{Method: http.MethodGet, Header: hdr}
		v, ok := (&server{cookieName: CookieName}).sessionCookie(r)
		switch {
		case ok && !sesame.ValidSecret(v):
			t.Fatalf("sessionCookie(%q, %q) accepted %q, which ValidSecret refuses", h1, h2, v)
		case ok && !strings.Contains(h1+h2, v):
			t.Fatalf("sessionCookie(%q, %q) = %q, which is not in the headers", h1, h2, v)
		case !ok && v != "":
			t.Fatalf("sessionCookie(%q, %q) refused but returned %q", h1, h2, v)
		}
		// The exact form the server sets is always read back.
		if s, found := strings.CutPrefix(h1, CookieName+"="); found && h2 == "" && sesame.ValidSecret(s) {
			if !ok || v != s {
				t.Fatalf("sessionCookie(%q) = %q, %v; want %q, true", h1, v, ok, s)
			}
		}
	})
}

// A \u escape of half a surrogate pair is refused; a whole pair, or a
// backslash followed by the letters "ud800", is not.
func TestUnpairedSurrogates(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"password":"\ud800abcdefgh"}`, false},
		{`{"password":"\udfffabcdefgh"}`, false},
		{`{"password":"abcdefgh\uD800"}`, false},
		{`{"password":"\ude00\ud83d"}`, false},
		{`{"password":"\ud83d\u0041"}`, false},
		{`{"email":"a\ud800@x.test"}`, false},
		{`{"password":"\ud83d\ude00 \uD83D\uDE00"}`, true},
		{`{"password":"\\ud800"}`, true},
		{`{"password":"\ufffd\u00e9"}`, true},
	} {
		var v credentials
		err := unmarshalStrict([]byte(c.body), &v)
		if (err == nil) != c.ok {
			t.Errorf("unmarshalStrict(%s) = %v, want ok %t", c.body, err, c.ok)
		}
	}
}
