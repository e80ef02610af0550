package redisstore

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want config
	}{
		{"redis://127.0.0.1:6379", config{addrs: []string{"127.0.0.1:6379"}}},
		{"redis://localhost", config{addrs: []string{"localhost:6379"}}},
		{"redis://:s3cret@10.0.0.1:6380/9", config{addrs: []string{"10.0.0.1:6380"}, password: "s3cret", db: 9}},
		{"redis://sesame:pw@[::1]:6379/2", config{addrs: []string{"[::1]:6379"}, username: "sesame", password: "pw", db: 2}},
		{"rediss://redis.example:6380/0", config{addrs: []string{"redis.example:6380"}, tls: true}},
		{"redis://h1:7000,h2:7001,h3:7002/?cluster=true", config{addrs: []string{"h1:7000", "h2:7001", "h3:7002"}, cluster: true}},
		{"redis://h1:7000?cluster=true&timeout=500ms&dial_timeout=1s", config{addrs: []string{"h1:7000"}, cluster: true, timeout: 500 * time.Millisecond, dialTimeout: time.Second}},
		{"redis://h:1/3?cache_mb=0", config{addrs: []string{"h:1"}, db: 3, cacheMB: -1}},
		{"redis://h:1/3?cache_mb=256", config{addrs: []string{"h:1"}, db: 3, cacheMB: 256}},
	} {
		got, err := parseURL(c.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", c.url, err)
			continue
		}
		if c.want.timeout == 0 {
			c.want.timeout = defaultTimeout
		}
		if c.want.dialTimeout == 0 {
			c.want.dialTimeout = defaultDialTimeout
		}
		switch c.want.cacheMB {
		case 0:
			c.want.cacheMB = defaultCacheMB
		case -1:
			c.want.cacheMB = 0
		}
		got.host = ""
		if !slices.Equal(got.addrs, c.want.addrs) || got.username != c.want.username || got.password != c.want.password ||
			got.db != c.want.db || got.cluster != c.want.cluster || got.tls != c.want.tls ||
			got.timeout != c.want.timeout || got.dialTimeout != c.want.dialTimeout || got.cacheMB != c.want.cacheMB {
			t.Errorf("parseURL(%q) = %+v, want %+v", c.url, got, c.want)
		}
	}
	for _, bad := range []string{
		"", "127.0.0.1:6379", "http://h:1", "redis://", "redis://h:0", "redis://h:x",
		"redis://h:1/x", "redis://h:1/1/2", "redis://h1:1,h2:2", "redis://h1:1,h2:2/3?cluster=true",
		"redis://h:1?cluster=maybe", "redis://h:1?timeout=-1s", "redis://h:1?pool=3",
		"redis://h:1?cache_mb=-1", "redis://h:1?cache_mb=lots", "redis://h:1?cache_mb=16385",
	} {
		if c, err := parseURL(bad); err == nil {
			t.Errorf("parseURL(%q) = %+v, want an error", bad, c)
		}
	}
	// The password never shows in an error.
	if _, err := parseURL("redis://u:hunter2@h:1/x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("parseURL error %v", err)
	}
	if _, err := parseURL("redis://u:hunter2@h:1/%zz"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("parseURL error %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	_, hash := sesame.NewSecret()
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	for _, s := range []sesame.Session{
		{ID: "id", UserID: "u", SecretHash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
			AbsoluteExpiresAt: now.Add(time.Hour), IP: "2001:db8::1", UserAgent: "curl/8", Kind: sesame.KindToken},
		{ID: "id", UserID: "u", SecretHash: hash, Kind: sesame.KindCookie}, // zero times
		{ID: "id", UserID: "u", SecretHash: hash, CreatedAt: now, IP: strings.Repeat("é", 100), UserAgent: "a:b:c\x00", Kind: sesame.KindCookie},
	} {
		kind := byte(kindCookieByte)
		if s.Kind == sesame.KindToken {
			kind = kindTokenByte
		}
		got, err := decodeRecord(encodeRecord(s, kind, 42), s.UserID, s.ID)
		if err != nil {
			t.Fatalf("decodeRecord: %v", err)
		}
		if !got.CreatedAt.Equal(s.CreatedAt) || !got.ExpiresAt.Equal(s.ExpiresAt) || !got.LastSeenAt.Equal(s.LastSeenAt) ||
			!got.AbsoluteExpiresAt.Equal(s.AbsoluteExpiresAt) || got.IP != s.IP || got.UserAgent != s.UserAgent ||
			got.Kind != s.Kind || got.SecretHash != s.SecretHash || got.CreatedAt.IsZero() != s.CreatedAt.IsZero() {
			t.Errorf("round trip of %+v = %+v", s, got)
		}
	}
	for _, bad := range []string{"", "1:2:3:", "1:2:x:" + strings.Repeat("h", 40), "1:2:3:short", strings.Repeat("\xff", 80), strings.Repeat("\x00", 56)} {
		if _, err := decodeRecord(bad, "u", "id"); err == nil {
			t.Errorf("decodeRecord(%q) = nil error", bad)
		}
	}
}

func TestPtr(t *testing.T) {
	for _, c := range [][2]string{{"", ""}, {"u", "s"}, {"1:2", "3:4"}, {"a}b", "{x}"}, {sesame.NewID(), sesame.NewID()}, {sesame.NewID(), "odd"}} {
		uid, sid, ok := parsePtr(ptr(c[0], c[1]))
		if !ok || uid != c[0] || sid != c[1] {
			t.Errorf("parsePtr(ptr(%q, %q)) = %q, %q, %t", c[0], c[1], uid, sid, ok)
		}
	}
	for _, id := range []string{"0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef", "", "!", "0123456789abcdef"} {
		if got, ok := idFromField(idField(id)); !ok || got != id {
			t.Errorf("idFromField(idField(%q)) = %q, %t", id, got, ok)
		}
	}
	for _, bad := range []string{"", "x", "\x05ab", "\x7fab"} {
		if _, _, ok := parsePtr(bad); ok {
			t.Errorf("parsePtr(%q) ok", bad)
		}
	}
	if userTag("a}b") == userTag("a") || userTag("~61") == userTag("a") || !strings.HasPrefix(userTag("x"), "{u:x}") {
		t.Error("userTag does not keep tags apart")
	}
}

func TestRecentWrites(t *testing.T) {
	var r recentWrites
	h1, h2, h3 := [32]byte{1}, [32]byte{2}, [32]byte{3}
	if _, ok := r.get(h1); ok {
		t.Fatal("empty set holds a hash")
	}
	r.add(1000, h1, written{ended: true})
	r.add(1500, h2, written{lastSeen: 42})
	if w, ok := r.get(h1); !ok || !w.ended {
		t.Errorf("get(h1) = %+v, %t", w, ok)
	}
	if w, ok := r.get(h2); !ok || w.ended || w.lastSeen != 42 {
		t.Errorf("get(h2) = %+v, %t", w, ok)
	}
	mem := recentMemory.Milliseconds()
	r.add(1000+mem, h3, written{}) // rotates: h1, h2 are kept one more period
	if _, ok := r.get(h1); !ok {
		t.Error("h1 forgotten after one period")
	}
	r.add(1000+2*mem, h3, written{}) // rotates again: h1, h2 go
	if _, ok := r.get(h1); ok {
		t.Error("h1 kept after two periods")
	}
	if _, ok := r.get(h3); !ok {
		t.Error("h3 forgotten")
	}
	// A later write does not undo an end.
	r.add(5000, h1, written{ended: true})
	r.add(5001, h1, written{lastSeen: 5001})
	if w, _ := r.get(h1); !w.ended {
		t.Error("a touch noted after the end undid it")
	}
	r.add(5000+mem, h2, written{}) // rotate: h1's end is in prev now
	r.add(5001+mem, h1, written{lastSeen: 6000})
	if w, _ := r.get(h1); !w.ended {
		t.Error("a touch noted after the end (a generation later) undid it")
	}
}

// FuzzRecord checks that no stored value makes the decoders panic, and
// that what encodeRecord writes reads back.
func FuzzRecord(f *testing.F) {
	now := time.Now()
	f.Add(encodeRecord(sesame.Session{CreatedAt: now, ExpiresAt: now, LastSeenAt: now, IP: "203.0.113.7", UserAgent: "ua"}, kindCookieByte, 1), "x", "203.0.113.7", "ua")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, v, ptrValue, ip, ua string) {
		decodeRecord(v, "u", "s")
		parsePtr(ptrValue)
		parseHashPtr(ptrValue)
		idFromField(ptrValue)
		s := sesame.Session{ID: "s", UserID: "u", CreatedAt: fromMS(now.UnixMilli()), LastSeenAt: fromMS(now.UnixMilli()),
			ExpiresAt: fromMS(now.UnixMilli()), AbsoluteExpiresAt: fromMS(now.UnixMilli()), IP: ip, UserAgent: ua, Kind: sesame.KindToken}
		got, err := decodeRecord(encodeRecord(s, kindTokenByte, 7), "u", "s")
		if err != nil || got != s {
			t.Errorf("round trip of %+v = %+v, %v", s, got, err)
		}
		if uid, sid, ok := parsePtr(ptr(ip, ua)); !ok || uid != ip || sid != ua {
			t.Errorf("parsePtr(ptr(%q, %q)) = %q, %q, %t", ip, ua, uid, sid, ok)
		}
	})
}

// TestLookupContextRenews checks that lookups never share a context that
// has ended, whatever the clock did (its renewal time is monotonic).
func TestLookupContextRenews(t *testing.T) {
	s := &Store{timeout: time.Second}
	ctx := s.lookupContext()
	if s.lookupContext() != ctx {
		t.Error("a second lookup right after the first got another context")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Second || time.Until(d) < 800*time.Millisecond {
		t.Errorf("deadline %v from now, want about the timeout", time.Until(d))
	}
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	s.shared.Store(&sharedDeadline{ctx: dead, cancel: cancel, renew: time.Now().Add(time.Hour)})
	if err := s.lookupContext().Err(); err != nil {
		t.Errorf("lookupContext returned an ended context: %v", err)
	}
}
