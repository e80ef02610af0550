package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// termSafe returns s as it may be printed to a terminal: every character
// that is not a visible letter, mark, number, punctuation, symbol or the
// plain space (control characters, C1 escape sequences, bidi overrides and
// other format characters, invalid UTF-8) is written as a Go escape (\x1b,
// \u202e), and a backslash as \\, so nothing a user chose can move the
// cursor, recolour the screen, reorder a line or pass for something else.
// A string with nothing to escape is returned as is.
func termSafe(s string) string {
	if !strings.ContainsFunc(s, needsEscape) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case !needsEscape(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return r == '\\' || (r != ' ' && !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S))
}
