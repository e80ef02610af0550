package sesame_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
)

func TestClientNetwork(t *testing.T) {
	for _, c := range []struct {
		ip     string
		prefix int
		want   string
	}{
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2::1", 128, "2001:db8:1:2::1"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"not an address", 64, "not an address"},
		{"", 64, ""},
	} {
		if got := sesame.ClientNetwork(c.ip, c.prefix); got != c.want {
			t.Errorf("ClientNetwork(%q, %d) = %q, want %q", c.ip, c.prefix, got, c.want)
		}
	}
}

// TestAddressThrottleCountsIPv6ByPrefix: the per-address throttle counts
// the addresses of one /64 together (issue 7 item 5), and each address on
// its own only with IPv6Prefix 128.
func TestAddressThrottleCountsIPv6ByPrefix(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		prefix  int
		limited bool
	}{{0, true}, {64, true}, {128, false}} {
		st := memstore.New()
		a := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st,
			Hasher: password.NewHasher(password.Fast), AddressMaxFailures: 3, IPv6Prefix: c.prefix})
		var last error
		for i := range 4 {
			ip := "2001:db8:7:8::" + string(rune('a'+i))
			_, last = a.CheckPassword(ctx, "nobody@x.test", "wrong guess", sesame.Client{IP: ip})
		}
		var rl *sesame.RateLimitError
		if got := errors.As(last, &rl); got != c.limited {
			t.Errorf("IPv6Prefix %d: 4th failure from 4 addresses of one /64 gives %v; want rate limited %v", c.prefix, last, c.limited)
		}
		// Another /64 has a budget of its own.
		if _, err := a.CheckPassword(ctx, "nobody@x.test", "wrong guess", sesame.Client{IP: "2001:db8:7:9::a"}); !errors.Is(err, sesame.ErrInvalidCredentials) {
			t.Errorf("IPv6Prefix %d: first failure from another /64: %v, want ErrInvalidCredentials", c.prefix, err)
		}
	}
}

// TestUncheckedLoginsAuditedOncePerWindow: logins that never reach a
// credential check (a malformed email) write one audit row per address
// and window, not one each (issue 7 item 5); each is still 401.
func TestUncheckedLoginsAuditedOncePerWindow(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := memstore.New()
	st.Now = clk.Now
	a := sesame.New(sesame.Config{Users: st, Sessions: st, Audit: st, Limiter: st, Now: clk.Now,
		Hasher: password.NewHasher(password.Fast), AddressMaxFailures: 1000, AddressWindow: time.Minute})
	failed := func() int {
		evs, err := st.Events(ctx, sesame.EventQuery{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Type == sesame.EventLoginFailed {
				n++
			}
		}
		return n
	}
	for _, ip := range []string{"192.0.2.1", "2001:db8::1", "2001:db8::2"} {
		for range 50 {
			if _, err := a.CheckPassword(ctx, "not an email", "whatever it is", sesame.Client{IP: ip, UserAgent: "x"}); !errors.Is(err, sesame.ErrInvalidCredentials) {
				t.Fatalf("malformed email: %v, want ErrInvalidCredentials", err)
			}
		}
	}
	if n := failed(); n != 2 {
		t.Errorf("150 malformed-email logins from 192.0.2.1 and two addresses of one /64: %d login.failed rows, want 2 (one per address and window)", n)
	}
	clk.Add(time.Minute + time.Second)
	a.CheckPassword(ctx, "not an email", "whatever it is", sesame.Client{IP: "192.0.2.1"})
	if n := failed(); n != 3 {
		t.Errorf("after the window: %d login.failed rows, want 3", n)
	}
	// A login that reaches the credential check is audited every time.
	for range 3 {
		a.CheckPassword(ctx, "nobody@x.test", "wrong guess", sesame.Client{IP: "192.0.2.1"})
	}
	if n := failed(); n != 6 {
		t.Errorf("after 3 checked failures: %d login.failed rows, want 6", n)
	}
}
