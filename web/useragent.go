package web

import (
	"strings"
)

// DescribeUserAgent names the browser and operating system a User-Agent
// header claims, in words: "Firefox 128 on Windows", "Safari 17 on
// iPhone", "curl 8.5". It reads only what the header says (any client can
// claim anything), never fails, and returns at most about 60 bytes of
// plain text made from a fixed vocabulary and version digits, so nothing
// the client sent is shown through it but those digits.
func DescribeUserAgent(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := browserOf(ua)
	os := osOf(ua)
	switch {
	case browser == "" && os == "":
		return "Unknown device"
	case browser == "":
		return "A browser on " + os
	case os == "":
		return browser
	}
	return browser + " on " + os
}

// browsers are checked in order: most browsers also claim to be the ones
// after them ("Chrome/… Safari/…", "Edg/… Chrome/…").
var browsers = []struct{ token, name string }{ // a name ending in "program" takes no version
	{"Edg/", "Edge"},
	{"EdgA/", "Edge"},
	{"EdgiOS/", "Edge"},
	{"OPR/", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"YaBrowser/", "Yandex Browser"},
	{"Vivaldi/", "Vivaldi"},
	{"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"},
	{"HeadlessChrome/", "Headless Chrome"},
	{"Chromium/", "Chromium"},
	{"Firefox/", "Firefox"},
	{"Chrome/", "Chrome"},
	{"curl/", "curl"},
	{"Wget/", "Wget"},
	{"Go-http-client/", "Go program"},
	{"python-requests/", "Python program"},
	{"sesame-cli", "Sesame command line"},
	{"sesame-e2e", "Sesame test client"},
}

func browserOf(ua string) string {
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			if strings.HasSuffix(b.name, "program") || strings.HasPrefix(b.name, "Sesame") {
				return b.name
			}
			return b.name + version(ua[i+len(b.token):], b.name == "curl" || b.name == "Wget")
		}
	}
	// Safari says "Version/17.1 … Safari/605": the version is Version's.
	if strings.Contains(ua, "Safari/") {
		if i := strings.Index(ua, "Version/"); i >= 0 {
			return "Safari" + version(ua[i+len("Version/"):], false)
		}
		return "Safari"
	}
	return ""
}

// version returns " 12" for the leading digits of s ("12.0.1" → " 12"),
// or " 8.5" with minor, or "" when s starts with no digit. At most 6
// digits a part.
func version(s string, minor bool) string {
	major := digits(s)
	if major == "" {
		return ""
	}
	if minor {
		if rest := s[len(major):]; strings.HasPrefix(rest, ".") {
			if m := digits(rest[1:]); m != "" {
				return " " + major + "." + m
			}
		}
	}
	return " " + major
}

func digits(s string) string {
	n := 0
	for n < len(s) && n < 6 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return s[:n]
}

func osOf(ua string) string {
	switch {
	case strings.Contains(ua, "iPhone"):
		return "iPhone"
	case strings.Contains(ua, "iPad"):
		return "iPad"
	case strings.Contains(ua, "Android"):
		return "Android"
	case strings.Contains(ua, "CrOS"):
		return "ChromeOS"
	case strings.Contains(ua, "Windows"):
		return "Windows"
	case strings.Contains(ua, "Macintosh"), strings.Contains(ua, "Mac OS X"):
		return "macOS"
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		return "Linux"
	case strings.Contains(ua, "FreeBSD"):
		return "FreeBSD"
	}
	return ""
}
