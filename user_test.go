package sesame_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sesameauth/sesame"
)

// emailsWithInvisibles are addresses that registered before control,
// format and unassigned characters were refused (issue 7 item 8).
var emailsWithInvisibles = map[string]string{
	"NEL (C1 control)":          "adm\u0085in@x.test",
	"CSI (C1 control)":          "admin\u009b31m@x.test",
	"ESC (C0 control)":          "admin\x1b[31m@x.test",
	"DEL":                       "adm\x7fin@x.test",
	"zero width space":          "adm\u200bin@x.test",
	"zero width joiner":         "adm\u200din@x.test",
	"BOM":                       "\ufeffadmin@x.test",
	"right-to-left override":    "admin\u202e@x.test",
	"left-to-right isolate":     "admin@\u2066x.test",
	"soft hyphen":               "ad\u00admin@x.test",
	"word joiner":               "admin\u2060@x.test",
	"unassigned U+0378":         "adm\u0378in@x.test",
	"private use U+E000":        "admin\ue000@x.test",
	"line separator":            "admin\u2028@x.test",
	"paragraph separator":       "admin\u2029@x.test",
	"Ogham space mark":          "adm\u1680in@x.test",
	"interlinear annotation":    "adm\ufff9in@x.test",
	"tag character":             "admin\U000e0041@x.test",
	"Mongolian vowel separator": "adm\u180ein@x.test",
}

func TestNormalizeEmailRefusesInvisibles(t *testing.T) {
	for name, e := range emailsWithInvisibles {
		if n, err := sesame.NormalizeEmail(e); !errors.Is(err, sesame.ErrInvalidEmail) {
			t.Errorf("%s: NormalizeEmail(%+q) = %+q, %v; want ErrInvalidEmail", name, e, n, err)
		}
	}
	// What is visible stays accepted: letters, marks and digits of any
	// script, and the punctuation and symbols an address may hold.
	for _, e := range []string{"admin@x.test", "zoë@x.test", "ünïcödé@bücher.test", "用户@例子.test", "a+tag@x.test", "o'brien@x.test", "δοκιμή@x.test"} {
		if _, err := sesame.NormalizeEmail(e); err != nil {
			t.Errorf("NormalizeEmail(%+q): %v; want it accepted", e, err)
		}
	}
}

// FuzzNormalizeEmail: whatever it is given, NormalizeEmail either refuses
// it or returns a short, valid UTF-8 address with nothing invisible in it
// that normalises to itself.
func FuzzNormalizeEmail(f *testing.F) {
	for _, e := range emailsWithInvisibles {
		f.Add(e)
	}
	for _, e := range []string{"admin@x.test", " Admin@X.test ", "ａｄｍｉｎ@x.test", "a@b", "\"a b\"@x.test", "a@@x.test", "x@x..test", "\xff@x.test"} {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := sesame.NormalizeEmail(s)
		if err != nil {
			if !errors.Is(err, sesame.ErrInvalidEmail) {
				t.Fatalf("NormalizeEmail(%+q): error %v, want ErrInvalidEmail", s, err)
			}
			return
		}
		if !utf8.ValidString(n) || len(n) > 254 || strings.Count(n, "@") != 1 {
			t.Fatalf("NormalizeEmail(%+q) = %+q: not a short valid address", s, n)
		}
		for _, r := range n {
			if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) {
				t.Fatalf("NormalizeEmail(%+q) = %+q holds %U", s, n, r)
			}
		}
		if again, err := sesame.NormalizeEmail(n); err != nil || again != n {
			t.Fatalf("NormalizeEmail(%+q) = %+q, but that normalises to %+q, %v", s, n, again, err)
		}
	})
}
