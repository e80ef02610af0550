package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is returned by Verify for a stored hash that is not an
// argon2id PHC string this package accepts: another algorithm or version,
// fields out of order, non-canonical numbers or base64, or parameters
// outside its limits.
var ErrMalformed = errors.New("password: malformed hash")

// Limits on what decode accepts, so that a hostile or corrupt stored hash
// can make Verify allocate at most 1 GiB and run at most 32 passes. Hashes
// that real deployments make are far inside them.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 32
	minHashLen = 8 // bytes, of salt and of key
	maxHashLen = 1024

	prefix = "$argon2id$v=19$"
	// maxEncodedLen is the longest string decode can accept; longer ones are
	// refused before any parsing.
	maxEncodedLen = len(prefix) + len("m=1048576,t=32,p=255$$") + 2*(maxHashLen*4+2)/3
)

// b64 is the PHC string format's base64: standard alphabet, no padding,
// and (Strict) zero trailing bits, so each byte string has one encoding.
var b64 = base64.RawStdEncoding.Strict()

// phc is a decoded argon2id PHC string.
type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// encode returns s as a PHC string:
// $argon2id$v=19$m=<memory>,t=<time>,p=<threads>$<salt>$<key>.
func encode(s phc) string {
	b := make([]byte, 0, len(prefix)+32+b64.EncodedLen(len(s.salt))+b64.EncodedLen(len(s.key)))
	b = append(b, prefix+"m="...)
	b = strconv.AppendUint(b, uint64(s.memory), 10)
	b = append(b, ",t="...)
	b = strconv.AppendUint(b, uint64(s.time), 10)
	b = append(b, ",p="...)
	b = strconv.AppendUint(b, uint64(s.threads), 10)
	b = append(b, '$')
	b = b64.AppendEncode(b, s.salt)
	b = append(b, '$')
	b = b64.AppendEncode(b, s.key)
	return string(b)
}

// decode parses what encode makes, and only that: exactly one string
// decodes to each phc, so decode(s) succeeds only if encode gives s back.
// Its errors match ErrMalformed and never quote s, which holds a hash.
func decode(s string) (phc, error) {
	var d phc
	if len(s) > maxEncodedLen {
		return d, malformed("longer than %d bytes", maxEncodedLen)
	}
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return d, malformed("does not start with %q", prefix)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return d, malformed("has %d $-separated fields after the version, want 3", len(fields))
	}
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return d, malformed("has %d parameters, want m, t and p", len(params))
	}
	m, err := param(params[0], "m=")
	if err != nil {
		return d, err
	}
	t, err := param(params[1], "t=")
	if err != nil {
		return d, err
	}
	p, err := param(params[2], "p=")
	if err != nil {
		return d, err
	}
	switch {
	case p < 1 || p > 255:
		return d, malformed("p=%d outside 1..255", p)
	case m < 8*p || m > maxMemory:
		return d, malformed("m=%d outside 8p..%d", m, maxMemory)
	case t < 1 || t > maxTime:
		return d, malformed("t=%d outside 1..%d", t, maxTime)
	}
	salt, err := bytes64(fields[1], "salt")
	if err != nil {
		return d, err
	}
	key, err := bytes64(fields[2], "hash")
	if err != nil {
		return d, err
	}
	return phc{memory: m, time: t, threads: uint8(p), salt: salt, key: key}, nil
}

// param parses name followed by a canonical decimal uint32: digits only,
// no sign, no leading zero.
func param(s, name string) (uint32, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, malformed("parameters not m, t, p in that order")
	}
	if len(v) == 0 || len(v) > 10 || (v[0] == '0' && len(v) > 1) {
		return 0, malformed("%s not a canonical number", name[:1])
	}
	for i := range len(v) {
		if v[i] < '0' || v[i] > '9' {
			return 0, malformed("%s not a canonical number", name[:1])
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, malformed("%s out of range", name[:1])
	}
	return uint32(n), nil
}

// bytes64 decodes the PHC base64 of a salt or hash of minHashLen to
// maxHashLen bytes.
func bytes64(s, what string) ([]byte, error) {
	if len(s) < b64.EncodedLen(minHashLen) || len(s) > b64.EncodedLen(maxHashLen) {
		return nil, malformed("%s not %d to %d bytes", what, minHashLen, maxHashLen)
	}
	// The decoder skips CR and LF even when Strict; nothing else may.
	if strings.ContainsAny(s, "\r\n") {
		return nil, malformed("%s not base64", what)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, malformed("%s not canonical unpadded base64", what)
	}
	return b, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
