package web

import (
	"bytes"
	"testing"
	"time"
)

// TestWhenMatchesLayout: the session list's hand-made timestamps read
// exactly as the templates' "when" (the layout "2006-01-02 15:04 UTC").
func TestWhenMatchesLayout(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	for _, tm := range []time.Time{
		time.Date(2026, 12, 5, 9, 7, 59, 0, time.UTC),
		time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2027, 3, 1, 0, 30, 0, 0, paris), // another zone: shown in UTC
		time.Date(1999, 10, 10, 10, 10, 0, 0, time.UTC),
	} {
		f := fragment{new(bytes.Buffer)}
		f.when(tm)
		if got, want := f.b.String(), tm.UTC().Format("2006-01-02 15:04 UTC"); got != want {
			t.Errorf("when(%v) = %q, want %q", tm, got, want)
		}
	}
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", time.Minute: "1 minute ago", 59 * time.Minute: "59 minutes ago",
		time.Hour: "1 hour ago", 47 * time.Hour: "47 hours ago", 48 * time.Hour: "2 days ago",
	} {
		if got := string(appendAgo(nil, d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDeviceCacheIsBounded: the cache of user-agent descriptions never
// holds more than its bound, and answers as DescribeUserAgent does.
func TestDeviceCacheIsBounded(t *testing.T) {
	for i := range 3 * maxCachedDevices {
		ua := "Mozilla/5.0 (Windows NT 10.0) Firefox/" + string(rune('0'+i%10)) + time.Duration(i).String()
		if got, want := describeCached(ua), DescribeUserAgent(ua); got != want {
			t.Fatalf("describeCached(%q) = %q, want %q", ua, got, want)
		}
	}
	devices.RLock()
	n := len(devices.m)
	devices.RUnlock()
	if n > maxCachedDevices {
		t.Errorf("the device cache holds %d entries, more than %d", n, maxCachedDevices)
	}
}
