package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/sesameauth/sesame"
)

// Params are argon2id's cost parameters for new hashes. NewHasher fills a
// zero field with its default, which together are OWASP's minimum for
// argon2id: 19 MiB of memory, 2 passes, 1 thread, a 16-byte salt and a
// 32-byte hash.
//
// NewHasher raises a field below its floor to the floor: Memory to 19456,
// Time to 2, SaltLen and KeyLen to 16 (RFC 9106's 128 bits); only [Fast],
// and copies of it, are exempt. It lowers a field above what Verify accepts (Memory 1 GiB,
// Time 32, SaltLen and KeyLen 1024) to that limit, so that every hash a
// Hasher makes, it can verify.
type Params struct {
	Memory  uint32 // KiB filled per hash, and allocated while it runs
	Time    uint32 // passes over the memory; the CPU cost grows linearly
	Threads uint8  // lanes, each filled by its own goroutine
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of hash

	// insecure exempts the parameters from the floors; only Fast sets it,
	// so weak parameters cannot be reached by a typo in a config file.
	insecure bool
}

// Fast are parameters for the tests of other packages: 64 KiB and one
// pass, some 600 times less work than the defaults. They are INSECURE: a
// stolen hash made with them falls to a dictionary attack at a great many
// guesses per second. Never use them outside tests.
var Fast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32, insecure: true}

// Defaults and floors of Params (see Params).
const (
	defaultMemory  = 19456
	defaultTime    = 2
	defaultThreads = 1
	defaultSaltLen = 16
	defaultKeyLen  = 32

	minMemory = 19456
	minTime   = 2
	minLen    = 16 // salt and key, unless insecure
)

// Defaults of the options.
const (
	defaultMaxWait  = 2 * time.Second
	defaultMaxQueue = 1024
)

// Hasher hashes and verifies passwords with argon2id, running at most a
// fixed number of hashes at once. Make one with NewHasher; the zero Hasher
// is not usable. It is safe for concurrent use.
type Hasher struct {
	params   Params
	sem      chan struct{} // holds a token per running hash
	maxWait  time.Duration
	maxQueue int
	waiting  atomic.Int64

	// derive is argon2.IDKey; tests replace it to observe and hold hashes.
	derive func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

var _ sesame.Hasher = (*Hasher)(nil)

// Option configures a Hasher.
type Option func(*Hasher)

// Concurrency sets how many hashes run at once; the default is
// runtime.NumCPU(). Each running hash holds Params.Memory KiB, so n bounds
// the memory that hashing takes as well as the CPU. It panics if n < 1.
func Concurrency(n int) Option {
	if n < 1 {
		panic("password: Concurrency below 1")
	}
	return func(h *Hasher) { h.sem = make(chan struct{}, n) }
}

// MaxWait sets how long a caller waits for a free slot before it gets
// sesame.ErrBusy; the default is 2s. Zero means not at all. It panics if
// d < 0.
func MaxWait(d time.Duration) Option {
	if d < 0 {
		panic("password: negative MaxWait")
	}
	return func(h *Hasher) { h.maxWait = d }
}

// MaxQueue sets how many callers may wait for a slot at once; one more
// gets sesame.ErrBusy at once. The default is 1024. Zero means none may
// wait. It panics if n < 0.
func MaxQueue(n int) Option {
	if n < 0 {
		panic("password: negative MaxQueue")
	}
	return func(h *Hasher) { h.maxQueue = n }
}

// NewHasher returns a Hasher that makes new hashes with p, after filling
// zero fields with defaults and bringing the others within bounds (see
// Params).
func NewHasher(p Params, opts ...Option) *Hasher {
	h := &Hasher{
		params:   normalize(p),
		maxWait:  defaultMaxWait,
		maxQueue: defaultMaxQueue,
		derive:   argon2.IDKey,
	}
	for _, o := range opts {
		o(h)
	}
	if h.sem == nil {
		h.sem = make(chan struct{}, runtime.NumCPU())
	}
	return h
}

func normalize(p Params) Params {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.Memory, defaultMemory)
	def(&p.Time, defaultTime)
	def(&p.SaltLen, defaultSaltLen)
	def(&p.KeyLen, defaultKeyLen)
	if p.Threads == 0 {
		p.Threads = defaultThreads
	}
	// Floors: Verify's for everyone, OWASP's and RFC 9106's unless Fast.
	memFloor, timeFloor, lenFloor := 8*uint32(p.Threads), uint32(minTime), uint32(minLen)
	if p.insecure {
		timeFloor, lenFloor = 1, minHashLen
	} else {
		memFloor = max(memFloor, minMemory)
	}
	p.Memory = min(max(p.Memory, memFloor), maxMemory)
	p.Time = min(max(p.Time, timeFloor), maxTime)
	p.SaltLen = min(max(p.SaltLen, lenFloor), maxHashLen)
	p.KeyLen = min(max(p.KeyLen, lenFloor), maxHashLen)
	return p
}

// Params returns the parameters h makes new hashes with, defaults filled
// and bounds applied.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password under a fresh random salt. It
// waits for a free slot while ctx allows, at most MaxWait, and returns an
// error matching sesame.ErrBusy if none came or too many callers were
// already waiting, or ctx's error if ctx ended first. Once it has a slot it
// costs Params.Memory KiB and Params.Time passes over them, and ignores ctx.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	p := h.params
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails: since Go 1.24 it crashes the program instead
	if err := h.acquire(ctx); err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	key := h.run(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encode(phc{memory: p.Memory, time: p.Time, threads: p.Threads, salt: salt, key: key}), nil
}

// Verify reports whether password hashes to encoded, comparing in constant
// time, and, when it does, whether encoded should be replaced by a fresh
// Hash because its memory, passes, salt or hash length are below h's
// Params. A malformed encoded returns an error matching ErrMalformed and
// costs no hash; otherwise Verify waits and costs as Hash does, under the
// parameters in encoded, and returns the same errors.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	s, err := decode(encoded)
	if err != nil {
		return false, false, err // already "password: malformed hash: ..."
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, fmt.Errorf("password: verify: %w", err)
	}
	key := h.run(password, s.salt, s.time, s.memory, s.threads, uint32(len(s.key)))
	if subtle.ConstantTimeCompare(key, s.key) != 1 {
		return false, false, nil
	}
	p := h.params
	rehash = s.memory < p.Memory || s.time < p.Time ||
		uint32(len(s.salt)) < p.SaltLen || uint32(len(s.key)) < p.KeyLen
	return true, rehash, nil
}

// Running returns how many hashes are running now.
func (h *Hasher) Running() int { return len(h.sem) }

// Waiting returns how many callers are waiting for a slot now.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// run computes argon2id in the slot the caller took, and gives the slot
// back even if the computation panics (net/http recovers handler panics, and
// a lost slot would never come back).
func (h *Hasher) run(password string, salt []byte, passes, memory uint32, threads uint8, keyLen uint32) []byte {
	defer func() { <-h.sem }()
	return h.derive([]byte(password), salt, passes, memory, threads, keyLen)
}

// acquire takes a slot in h.sem for run, which gives it back.
func (h *Hasher) acquire(ctx context.Context) error {
	// A caller that has gone away should not cost a hash.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	default:
	}
	if h.maxWait == 0 {
		return fmt.Errorf("all %d slots taken: %w", cap(h.sem), sesame.ErrBusy)
	}
	if n := h.waiting.Add(1); n > int64(h.maxQueue) {
		h.waiting.Add(-1)
		return fmt.Errorf("%d callers already waiting: %w", h.maxQueue, sesame.ErrBusy)
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("no slot free after %v: %w", h.maxWait, sesame.ErrBusy)
	case <-ctx.Done():
		return ctx.Err()
	}
}
