package password_test

import (
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/password"
)

// fields is Params without its unexported marker, for comparisons.
type fields struct {
	Memory, Time    uint32
	Threads         uint8
	SaltLen, KeyLen uint32
}

func fieldsOf(p password.Params) fields {
	return fields{p.Memory, p.Time, p.Threads, p.SaltLen, p.KeyLen}
}

// hashOrFatal hashes pw with h and fails the test on error.
func hashOrFatal(t *testing.T, h *password.Hasher, pw string) string {
	t.Helper()
	enc, err := h.Hash(t.Context(), pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return enc
}

func TestRoundTrip(t *testing.T) {
	for name, p := range map[string]password.Params{"default": {}, "fast": password.Fast} {
		t.Run(name, func(t *testing.T) {
			h := password.NewHasher(p)
			enc := hashOrFatal(t, h, "correct horse battery staple")
			ok, rehash, err := h.Verify(t.Context(), enc, "correct horse battery staple")
			if err != nil || !ok || rehash {
				t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
			}
			ok, rehash, err = h.Verify(t.Context(), enc, "correct horse battery stapler")
			if err != nil || ok || rehash {
				t.Fatalf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestSaltIsFresh(t *testing.T) {
	h := password.NewHasher(password.Fast)
	a, b := hashOrFatal(t, h, "same password"), hashOrFatal(t, h, "same password")
	if a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
}

func TestWrongPasswords(t *testing.T) {
	h := password.NewHasher(password.Fast)
	enc := hashOrFatal(t, h, "hunter22")
	for _, pw := range []string{"", "hunter2", "hunter222", "Hunter22", "hunter22 ", " hunter22", "hunter22\x00"} {
		ok, _, err := h.Verify(t.Context(), enc, pw)
		if err != nil || ok {
			t.Errorf("Verify(%q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestNonASCII(t *testing.T) {
	h := password.NewHasher(password.Fast)
	for _, pw := range []string{"pässwörd", "パスワード123", "пароль-Пароль", "🔑🔒🗝️ key", "\u00e9t\u00e9 \u2603"} {
		enc := hashOrFatal(t, h, pw)
		if ok, _, err := h.Verify(t.Context(), enc, pw); err != nil || !ok {
			t.Errorf("Verify(%q) = %v, %v; want true, nil", pw, ok, err)
		}
	}
	// Bytes, not characters, are hashed: NFC and NFD spellings of "é" differ.
	enc := hashOrFatal(t, h, "caf\u00e9")
	if ok, _, err := h.Verify(t.Context(), enc, "cafe\u0301"); err != nil || ok {
		t.Errorf("Verify(NFD of an NFC password) = %v, %v; want false, nil", ok, err)
	}
}

func TestNoTruncation(t *testing.T) {
	h := password.NewHasher(password.Fast)
	long := strings.Repeat("a", sesame.MaxPasswordBytes-1)
	for _, pair := range [][2]string{
		{long + "a", long + "b"},     // only the last byte differs
		{"a" + long, "b" + long},     // only the first
		{long + "a", long + "a\x00"}, // one is a prefix of the other
	} {
		enc := hashOrFatal(t, h, pair[0])
		if ok, _, err := h.Verify(t.Context(), enc, pair[0]); err != nil || !ok {
			t.Fatalf("Verify(own %d-byte password) = %v, %v; want true, nil", len(pair[0]), ok, err)
		}
		if ok, _, err := h.Verify(t.Context(), enc, pair[1]); err != nil || ok {
			t.Errorf("Verify(%d-byte password differing from the hashed one in one byte) = %v, %v; want false, nil",
				len(pair[1]), ok, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    password.Params
		re   string
	}{
		{"default", password.Params{},
			`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`},
		{"custom", password.Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 32, KeyLen: 64},
			`^\$argon2id\$v=19\$m=65536,t=3,p=4\$[A-Za-z0-9+/]{43}\$[A-Za-z0-9+/]{86}$`},
		{"fast", password.Fast,
			`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := password.NewHasher(tc.p)
			enc := hashOrFatal(t, h, "correct horse")
			if !regexp.MustCompile(tc.re).MatchString(enc) {
				t.Fatalf("Hash = %s; want a match for %s", enc, tc.re)
			}
			p, salt, key, err := password.Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Hash) = %v", err)
			}
			if got, want := fieldsOf(p), fieldsOf(h.Params()); got != want {
				t.Errorf("Decode(Hash) params = %+v; want %+v", got, want)
			}
			// The hash in the string is argon2id of the password and salt.
			if want := argon2.IDKey([]byte("correct horse"), salt, p.Time, p.Memory, p.Threads, p.KeyLen); string(key) != string(want) {
				t.Errorf("hash in the string is not argon2id(password, salt)")
			}
		})
	}
}

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   password.Params
		want fields
	}{
		{"zero gets OWASP minimum", password.Params{}, fields{19456, 2, 1, 16, 32}},
		{"stronger kept", password.Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 32, KeyLen: 64},
			fields{65536, 3, 4, 32, 64}},
		{"weak raised to floors", password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 8},
			fields{19456, 2, 1, 16, 16}},
		{"huge lowered to decode limits", password.Params{Memory: 4 << 20, Time: 100, Threads: 255, SaltLen: 4096, KeyLen: 1 << 20},
			fields{1 << 20, 32, 255, 1024, 1024}},
		{"fast kept", password.Fast, fields{64, 1, 1, 16, 32}},
		{"fast with threads raises memory to 8 KiB a lane", func() password.Params {
			p := password.Fast
			p.Threads = 16
			return p
		}(), fields{128, 1, 16, 16, 32}},
		{"fast zeroes get defaults", func() password.Params {
			p := password.Fast
			p.Memory, p.Time, p.SaltLen, p.KeyLen = 0, 0, 0, 0
			return p
		}(), fields{19456, 2, 1, 16, 32}},
		{"fast still within decode limits", func() password.Params {
			p := password.Fast
			p.Time, p.SaltLen, p.KeyLen = 0, 1, 1
			return p
		}(), fields{64, 2, 1, 8, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldsOf(password.NewHasher(tc.in).Params()); got != tc.want {
				t.Errorf("NewHasher(%+v).Params() = %+v; want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestRehash(t *testing.T) {
	old := password.NewHasher(password.Fast)
	enc := hashOrFatal(t, old, "correct horse")
	stronger := func(f func(*password.Params)) password.Params {
		p := password.Fast
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name string
		now  password.Params
		want bool
	}{
		{"same params", password.Fast, false},
		{"more memory", stronger(func(p *password.Params) { p.Memory = 128 }), true},
		{"more passes", stronger(func(p *password.Params) { p.Time = 2 }), true},
		{"longer hash", stronger(func(p *password.Params) { p.KeyLen = 64 }), true},
		{"longer salt", stronger(func(p *password.Params) { p.SaltLen = 32 }), true},
		{"more threads only", stronger(func(p *password.Params) { p.Threads = 2 }), false},
		{"weaker now", stronger(func(p *password.Params) { p.KeyLen = 16 }), false},
		{"defaults", password.Params{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := password.NewHasher(tc.now)
			ok, rehash, err := h.Verify(t.Context(), enc, "correct horse")
			if err != nil || !ok || rehash != tc.want {
				t.Errorf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.want)
			}
			// A wrong password never asks for a rehash: there is nothing to rehash with.
			if _, rehash, _ := h.Verify(t.Context(), enc, "wrong horse"); rehash {
				t.Errorf("Verify(wrong password) asks for a rehash")
			}
		})
	}
}

// valid is a hash of "pw" under m=64,t=1,p=1, salt "saltsaltsalt" and a
// 16-byte hash, by the reference argon2 tool; the malformed cases below are
// made from it.
const (
	validSalt = "c2FsdHNhbHRzYWx0"
	validHash = "f2HY8CHEdxGBxXdYr3qtzg"
	valid     = "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$" + validHash
)

var b64 = base64.RawStdEncoding

// malformedCases are strings that must not decode, named by their fault.
var malformedCases = map[string]string{
	"empty":                  "",
	"only prefix":            "$argon2id$v=19$",
	"argon2i":                strings.Replace(valid, "argon2id", "argon2i", 1),
	"argon2d":                strings.Replace(valid, "argon2id", "argon2d", 1),
	"upper-case algorithm":   strings.Replace(valid, "argon2id", "ARGON2ID", 1),
	"bcrypt":                 "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	"version 16":             strings.Replace(valid, "v=19", "v=16", 1),
	"no version":             strings.Replace(valid, "v=19$", "", 1),
	"no leading $":           valid[1:],
	"missing hash":           "$argon2id$v=19$m=64,t=1,p=1$" + validSalt,
	"empty hash":             "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$",
	"trailing $":             valid + "$",
	"extra field":            valid + "$" + validHash,
	"params out of order":    strings.Replace(valid, "m=64,t=1", "t=1,m=64", 1),
	"missing p":              strings.Replace(valid, ",p=1", "", 1),
	"extra param":            strings.Replace(valid, "p=1", "p=1,x=2", 1),
	"keyid param":            strings.Replace(valid, "p=1", "p=1,keyid=Zm9v", 1),
	"data param":             strings.Replace(valid, "p=1", "p=1,data=Zm9v", 1),
	"leading zero":           strings.Replace(valid, "m=64", "m=064", 1),
	"plus sign":              strings.Replace(valid, "m=64", "m=+64", 1),
	"negative":               strings.Replace(valid, "t=1", "t=-1", 1),
	"empty number":           strings.Replace(valid, "t=1", "t=", 1),
	"space in params":        strings.Replace(valid, "t=1", "t= 1", 1),
	"underscore in number":   strings.Replace(valid, "m=64", "m=6_4", 1),
	"hex number":             strings.Replace(valid, "m=64", "m=0x40", 1),
	"m overflows uint32":     strings.Replace(valid, "m=64", "m=4294967296", 1),
	"m over 1 GiB":           strings.Replace(valid, "m=64", "m=1048577", 1),
	"m of 4 GiB":             strings.Replace(valid, "m=64", "m=4294967295", 1),
	"m below 8p":             strings.Replace(valid, "m=64,t=1,p=1", "m=15,t=1,p=2", 1),
	"m zero":                 strings.Replace(valid, "m=64", "m=0", 1),
	"t zero":                 strings.Replace(valid, "t=1", "t=0", 1),
	"t over 32":              strings.Replace(valid, "t=1", "t=33", 1),
	"p zero":                 strings.Replace(valid, "p=1", "p=0", 1),
	"p over 255":             strings.Replace(valid, "m=64,t=1,p=1", "m=4096,t=1,p=256", 1),
	"salt 7 bytes":           "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(make([]byte, 7)) + "$" + validHash,
	"hash 7 bytes":           "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$" + b64.EncodeToString(make([]byte, 7)),
	"hash 1025 bytes":        "$argon2id$v=19$m=64,t=1,p=1$" + validSalt + "$" + b64.EncodeToString(make([]byte, 1025)),
	"salt 1025 bytes":        "$argon2id$v=19$m=64,t=1,p=1$" + b64.EncodeToString(make([]byte, 1025)) + "$" + validHash,
	"padded hash":            valid + "==",
	"padded salt":            strings.Replace(valid, "YWx0$", "YWx0=$", 1),
	"non-zero trailing bits": valid[:len(valid)-1] + "h",
	"impossible length":      valid + "AAA",
	"url alphabet":           strings.Replace(valid, "f2HY", "f2H-", 1),
	"newline in hash":        strings.Replace(valid, "f2HY", "f2\nHY", 1),
	"CR in salt":             strings.Replace(valid, "c2Fs", "c2\rFs", 1),
	"space in salt":          strings.Replace(valid, "c2Fs", "c2 Fs", 1),
	"trailing newline":       valid + "\n",
	"leading space":          " " + valid,
	"NUL":                    valid + "\x00",
	"huge":                   valid + strings.Repeat("A", 1<<20),
}

func TestMalformed(t *testing.T) {
	h := password.NewHasher(password.Fast)
	if ok, _, err := h.Verify(t.Context(), valid, "pw"); err != nil || !ok {
		t.Fatalf("Verify(valid, right password) = %v, %v; the cases below are built on it", ok, err)
	}
	var derived atomic.Int64
	password.SetDerive(h, func(pw, salt []byte, tm, m uint32, p uint8, n uint32) []byte {
		derived.Add(1)
		return argon2.IDKey(pw, salt, tm, m, p, n)
	})
	for name, enc := range malformedCases {
		t.Run(name, func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), enc, "pw")
			if !errors.Is(err, password.ErrMalformed) || ok || rehash {
				t.Fatalf("Verify = %v, %v, %v; want false, false, ErrMalformed", ok, rehash, err)
			}
			if len(enc) > 20 && strings.Contains(err.Error(), enc[len(enc)-20:]) {
				t.Errorf("error %q quotes the stored hash", err)
			}
		})
	}
	if n := derived.Load(); n != 0 {
		t.Errorf("malformed hashes cost %d argon2id runs; want 0", n)
	}
}

// TestKnownAnswers checks hashes made by another implementation: the
// argon2 reference implementation's command-line tool (phc-winner-argon2,
// 20171227), e.g. `echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1
// -l 32 -e`. The first is also a vector of the reference's own test.c.
//
// RFC 9106's argon2id vector (section 5.3) is not here: it uses a secret
// key and associated data, which golang.org/x/crypto/argon2 does not
// expose, and PHC strings do not carry.
func TestKnownAnswers(t *testing.T) {
	h := password.NewHasher(password.Params{})
	for _, tc := range []struct {
		pw, salt    string
		t, m        uint32
		p           uint8
		hexKey, enc string
	}{
		{"password", "somesalt", 2, 65536, 1,
			"09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7",
			"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
		{"correct horse battery staple", "sesame-salt-0001", 2, 19456, 1, "",
			"$argon2id$v=19$m=19456,t=2,p=1$c2VzYW1lLXNhbHQtMDAwMQ$B15RWW2EbMwKBgSuK4D1XEUxHyFnq3/J67q2Hof/6Cw"},
		{"pässwörd", "saltsaltsalt", 1, 64, 2, "",
			"$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0$imEQcyCLpXo+v/pYdxTHPw"},
	} {
		t.Run(tc.pw, func(t *testing.T) {
			p, salt, key, err := password.Decode(tc.enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := fieldsOf(p); got != (fields{tc.m, tc.t, tc.p, uint32(len(tc.salt)), p.KeyLen}) || string(salt) != tc.salt {
				t.Fatalf("Decode = %+v, salt %q; want m=%d t=%d p=%d salt %q", got, salt, tc.m, tc.t, tc.p, tc.salt)
			}
			if tc.hexKey != "" && hexOf(key) != tc.hexKey {
				t.Errorf("decoded hash %s; want %s", hexOf(key), tc.hexKey)
			}
			// x/crypto computes the same hash, and we encode it the same way.
			got := argon2.IDKey([]byte(tc.pw), []byte(tc.salt), tc.t, tc.m, tc.p, uint32(len(key)))
			if enc := password.Encode(p, []byte(tc.salt), got); enc != tc.enc {
				t.Errorf("Encode(argon2.IDKey(...)) = %s; want %s", enc, tc.enc)
			}
			ok, _, err := h.Verify(t.Context(), tc.enc, tc.pw)
			if err != nil || !ok {
				t.Errorf("Verify = %v, %v; want true, nil", ok, err)
			}
		})
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

// holder makes h's hashes block until released, and counts how many run
// at once.
type holder struct {
	release chan struct{}
	running atomic.Int64
	maxSeen atomic.Int64
}

func hold(h *password.Hasher) *holder {
	hd := &holder{release: make(chan struct{})}
	password.SetDerive(h, func(pw, salt []byte, tm, m uint32, p uint8, n uint32) []byte {
		r := hd.running.Add(1)
		for {
			old := hd.maxSeen.Load()
			if r <= old || hd.maxSeen.CompareAndSwap(old, r) {
				break
			}
		}
		<-hd.release
		hd.running.Add(-1)
		return argon2.IDKey(pw, salt, tm, m, p, n)
	})
	return hd
}

// waitFor polls cond until it holds, or fails the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdOne makes h's next hash take its only slot and block; it returns
// the holder and a channel that gets the held call's error.
func holdOne(t *testing.T, h *password.Hasher) (*holder, chan error) {
	t.Helper()
	hd := hold(h)
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "first")
		done <- err
	}()
	waitFor(t, "the first hash runs", func() bool { return hd.running.Load() == 1 })
	return hd, done
}

func TestBusyAfterMaxWait(t *testing.T) {
	h := password.NewHasher(password.Fast, password.Concurrency(1), password.MaxWait(20*time.Millisecond))
	hd, done := holdOne(t, h)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			start := time.Now()
			_, _, err := h.Verify(t.Context(), valid, "pw")
			if d := time.Since(start); err != nil && d < 20*time.Millisecond {
				t.Errorf("ErrBusy after %v; want after MaxWait", d)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, sesame.ErrBusy) {
			t.Errorf("parallel Verify while the only slot is held = %v; want ErrBusy", err)
		}
	}
	if r := h.Running(); r != 1 {
		t.Errorf("Running() = %d; want 1", r)
	}
	close(hd.release)
	if err := <-done; err != nil {
		t.Fatalf("held Hash: %v", err)
	}
	if w, r := h.Waiting(), h.Running(); w != 0 || r != 0 {
		t.Errorf("after all returned Waiting, Running = %d, %d; want 0, 0", w, r)
	}
	if m := hd.maxSeen.Load(); m != 1 {
		t.Errorf("%d hashes ran at once; want 1", m)
	}
}

func TestBusyWhenQueueFull(t *testing.T) {
	h := password.NewHasher(password.Fast, password.Concurrency(1), password.MaxQueue(2), password.MaxWait(time.Minute))
	hd, done := holdOne(t, h)

	queued := make(chan error, 2)
	for range 2 {
		go func() {
			_, _, err := h.Verify(context.Background(), valid, "pw")
			queued <- err
		}()
	}
	waitFor(t, "two callers wait", func() bool { return h.Waiting() == 2 })

	start := time.Now()
	_, err := h.Hash(t.Context(), "third in line")
	if !errors.Is(err, sesame.ErrBusy) {
		t.Fatalf("Hash with a full queue = %v; want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Hash with a full queue took %v; want an immediate ErrBusy", d)
	}
	if w := h.Waiting(); w != 2 {
		t.Errorf("Waiting() = %d after a refusal; want 2", w)
	}

	close(hd.release)
	for range 2 {
		if err := <-queued; err != nil {
			t.Errorf("queued Verify: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("held Hash: %v", err)
	}
	if m := hd.maxSeen.Load(); m != 1 {
		t.Errorf("%d hashes ran at once; want 1", m)
	}
}

func TestZeroWaitAndQueue(t *testing.T) {
	for name, opt := range map[string]password.Option{
		"MaxWait(0)":  password.MaxWait(0),
		"MaxQueue(0)": password.MaxQueue(0),
	} {
		t.Run(name, func(t *testing.T) {
			h := password.NewHasher(password.Fast, password.Concurrency(1), opt)
			hd, done := holdOne(t, h)
			if _, err := h.Hash(t.Context(), "pw"); !errors.Is(err, sesame.ErrBusy) {
				t.Errorf("Hash while the only slot is held = %v; want ErrBusy", err)
			}
			close(hd.release)
			<-done
			if _, err := h.Hash(t.Context(), "pw"); err != nil {
				t.Errorf("Hash with a free slot = %v", err)
			}
		})
	}
}

func TestConcurrencyBound(t *testing.T) {
	const bound, callers = 3, 24
	h := password.NewHasher(password.Fast, password.Concurrency(bound), password.MaxWait(time.Minute))
	hd := hold(h)

	stop := make(chan struct{})
	var polled sync.WaitGroup
	var maxRunning, maxWaiting atomic.Int64
	polled.Go(func() {
		for {
			if r := int64(h.Running()); r > maxRunning.Load() {
				maxRunning.Store(r)
			}
			if w := int64(h.Waiting()); w > maxWaiting.Load() {
				maxWaiting.Store(w)
			}
			select {
			case <-stop:
				return
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
	})

	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			if i%2 == 0 {
				_, _, err := h.Verify(t.Context(), valid, "pw")
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
			} else if _, err := h.Hash(t.Context(), "pw"); err != nil {
				t.Errorf("Hash: %v", err)
			}
		})
	}
	waitFor(t, "the bound is reached and the rest wait", func() bool {
		return h.Running() == bound && h.Waiting() == callers-bound
	})
	close(hd.release) // now let them run, a bound at a time
	wg.Wait()
	close(stop)
	polled.Wait()

	if m := hd.maxSeen.Load(); m > bound {
		t.Errorf("%d hashes ran at once; want at most %d", m, bound)
	}
	if m := maxRunning.Load(); m > bound {
		t.Errorf("Running() reached %d; want at most %d", m, bound)
	}
	if m := maxWaiting.Load(); m > callers-bound {
		t.Errorf("Waiting() reached %d; want at most %d", m, callers-bound)
	}
	if w, r := h.Waiting(), h.Running(); w != 0 || r != 0 {
		t.Errorf("after all returned Waiting, Running = %d, %d; want 0, 0", w, r)
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		h := password.NewHasher(password.Fast, password.Concurrency(1), password.MaxWait(time.Minute))
		hd, done := holdOne(t, h)
		defer func() { close(hd.release); <-done }()

		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, _, err := h.Verify(ctx, valid, "pw")
			errc <- err
		}()
		waitFor(t, "the caller waits", func() bool { return h.Waiting() == 1 })
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) || errors.Is(err, sesame.ErrBusy) {
				t.Errorf("Verify after cancel = %v; want context.Canceled, not ErrBusy", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Verify did not return after its context was cancelled")
		}
		if w := h.Waiting(); w != 0 {
			t.Errorf("Waiting() = %d after the cancelled caller left; want 0", w)
		}
	})
	t.Run("deadline before MaxWait", func(t *testing.T) {
		h := password.NewHasher(password.Fast, password.Concurrency(1), password.MaxWait(time.Minute))
		hd, done := holdOne(t, h)
		defer func() { close(hd.release); <-done }()

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Hash past its deadline = %v; want context.DeadlineExceeded", err)
		}
	})
	t.Run("before the call", func(t *testing.T) {
		h := password.NewHasher(password.Fast)
		hd := hold(h)
		close(hd.release)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
			t.Errorf("Hash with a cancelled context = %v; want context.Canceled", err)
		}
		if _, _, err := h.Verify(ctx, valid, "pw"); !errors.Is(err, context.Canceled) {
			t.Errorf("Verify with a cancelled context = %v; want context.Canceled", err)
		}
		if m := hd.maxSeen.Load(); m != 0 {
			t.Errorf("a cancelled caller ran a hash")
		}
	})
}

// TestParallelRealHashes runs real hashes from many goroutines, for the race
// detector.
func TestParallelRealHashes(t *testing.T) {
	h := password.NewHasher(password.Fast, password.Concurrency(2), password.MaxWait(time.Minute))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			pw := strings.Repeat("x", i+8)
			enc, err := h.Hash(t.Context(), pw)
			if err != nil {
				t.Errorf("Hash: %v", err)
				return
			}
			if ok, _, err := h.Verify(t.Context(), enc, pw); err != nil || !ok {
				t.Errorf("Verify = %v, %v", ok, err)
			}
			if r := h.Running(); r > 2 {
				t.Errorf("Running() = %d; want at most 2", r)
			}
		})
	}
	wg.Wait()
}

func TestOptionsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"Concurrency(0)": func() { password.Concurrency(0) },
		"MaxWait(-1)":    func() { password.MaxWait(-1) },
		"MaxQueue(-1)":   func() { password.MaxQueue(-1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		})
	}
}

func TestPanicReleasesSlot(t *testing.T) {
	h := password.NewHasher(password.Fast, password.Concurrency(1), password.MaxWait(0))
	password.SetDerive(h, func([]byte, []byte, uint32, uint32, uint8, uint32) []byte { panic("boom") })
	func() {
		defer func() { _ = recover() }()
		h.Hash(t.Context(), "pw")
	}()
	if r := h.Running(); r != 0 {
		t.Fatalf("Running() = %d after a hash panicked; want 0", r)
	}
}
