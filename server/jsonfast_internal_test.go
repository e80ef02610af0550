package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"
)

// stdJSON is what writeJSON wrote before jsonAppender: encoding/json with
// HTML escaping, and a newline.
func stdJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appended is the fast encoder's body, through writeJSON as a handler
// writes it.
func appended(v any) []byte {
	w := httptest.NewRecorder()
	writeJSON(w, 200, v)
	return w.Body.Bytes()
}

// FuzzAppendJSON holds the hand-written encoders of the hot responses to
// encoding/json's output byte for byte, for any strings (invalid UTF-8,
// control characters, HTML, U+2028) and times.
func FuzzAppendJSON(f *testing.F) {
	f.Add("0fb266a94ef2c8950ff653ffc04da22d", "ada@x.test", "user", "admin", int64(1764900000123), int64(1800))
	f.Add("\x00\x1f\"\\<>&\u2028\u2029\x7f", "é\xff\xfe", "\t\n\r\b\f", "", int64(0), int64(-5))
	f.Add("", "</script><script>alert(1)</script>", "a\u2028b", "\xe2\x80", int64(-62135596800000), int64(1<<40))
	f.Fuzz(func(t *testing.T, id, email, role1, role2 string, ms, secs int64) {
		at := time.UnixMilli(ms).UTC()
		if y := at.Year(); y < 0 || y > 9999 {
			t.Skip() // time.Time refuses to marshal these; no store holds one
		}
		exp := at.Add(time.Duration(secs%(1<<33)) * time.Second)
		if y := exp.Year(); y < 0 || y > 9999 {
			t.Skip()
		}
		for _, roles := range [][]string{nil, {}, {role1}, {role1, role2}} {
			for _, v := range []any{
				sessionResponse{User: userJSON{ID: id, Email: email, Roles: roles, CreatedAt: at}, Session: sessionJSON{ID: role2, CreatedAt: at, ExpiresAt: exp}},
				userinfoResponse{Sub: id, Email: email, Roles: roles, Auth: role1, SID: role2},
			} {
				if got, want := appended(v), stdJSON(t, v); !bytes.Equal(got, want) {
					t.Fatalf("%T: appendJSON wrote\n%q\nencoding/json writes\n%q", v, got, want)
				}
			}
		}
	})
}

// TestAppendJSONEveryByte checks each single byte and a few runes on their
// own, so that the escaping table is held to encoding/json even without
// fuzzing.
func TestAppendJSONEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, s := range []string{string(rune(c)), string([]byte{byte(c)}), "a" + string([]byte{byte(c)}) + "b"} {
			got := appendJSONString(nil, s)
			want := stdJSON(t, s)
			if !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("%q: got %s, want %s", s, got, want)
			}
		}
	}
}

// TestWriteJSONEmbedded: an answer that embeds a part the fast encoders
// write (the admin API's user adds "disabled" to userJSON) is written
// whole, exactly as encoding/json writes it.
func TestWriteJSONEmbedded(t *testing.T) {
	at := time.UnixMilli(1764900000123).UTC()
	u := userJSON{ID: "0fb266a94ef2c8950ff653ffc04da22d", Email: "ada@x.test", Roles: []string{"user"}, CreatedAt: at}
	for _, v := range []any{
		adminUserJSON{userJSON: u, Disabled: true},
		struct {
			sessionResponse
			Extra string `json:"extra"`
		}{sessionResponse{User: u, Session: sessionJSON{ID: "s", CreatedAt: at, ExpiresAt: at}}, "kept"},
		struct {
			userinfoResponse
			Extra string `json:"extra"`
		}{userinfoResponse{Sub: u.ID, Roles: u.Roles, Auth: "session"}, "kept"},
	} {
		if got, want := appended(v), stdJSON(t, v); !bytes.Equal(got, want) {
			t.Errorf("%T: writeJSON wrote\n%s\nencoding/json writes\n%s", v, got, want)
		}
	}
}
