package redisstore

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/sesameauth/sesame"
)

// userTag returns the hash tag of the user's keys. A user ID with a brace
// (which would end the tag early or start another) or that begins with the
// escape mark is hex-encoded behind the mark, so that no two users share a
// tag by accident and every key name reads back unambiguously.
func userTag(uid string) string {
	if strings.ContainsAny(uid, "{}") || strings.HasPrefix(uid, "~") {
		uid = "~" + hex.EncodeToString([]byte(uid))
	}
	return "{u:" + uid + "}"
}

// recordsKey is the hash of the user's session records, one field per
// session (named by idField of its ID); the Lua scripts find the user's
// other keys by replacing its ":S" suffix.
func recordsKey(uid string) string     { return userTag(uid) + ":S" }
func familyKey(uid, sid string) string { return userTag(uid) + ":f:" + idField(sid) }
func pendingKey(uid string) string     { return userTag(uid) + ":rv" }

func tokenPtrKey(hash [32]byte) string { return "rt:" + hex.EncodeToString(hash[:]) }

// Secret-hash pointers live in ptrBuckets hashes, sh:0 to sh:16383, chosen
// by the first 14 bits of the hash; the field is the next 16 bytes (which,
// with the bucket, tell apart any two sessions that will ever exist: the
// record holds the whole hash and every lookup compares it). Small hashes
// are stored by Redis as listpacks, a few bytes of overhead per field,
// where a key of its own costs a hundred bytes or more before its name and
// value.
const ptrBuckets = 1 << 14

func hashBucket(h [32]byte) string {
	return "sh:" + strconv.Itoa(int(binary.BigEndian.Uint16(h[:2])>>2))
}
func hashField(h [32]byte) string { return string(h[2:18]) }

// idField is how a session ID is stored as a field name: the 16 bytes it
// encodes when it is 32 lower-case hex digits (as sesame.NewID makes
// them), and otherwise "!" followed by its bytes in hex, which is never 16
// bytes long. idFromField reverses it.
func idField(id string) string {
	if isHexID(id) {
		var b [16]byte
		hex.Decode(b[:], []byte(id))
		return string(b[:])
	}
	return "!" + hex.EncodeToString([]byte(id))
}

func idFromField(f string) (string, bool) {
	if len(f) == 16 {
		return hex.EncodeToString([]byte(f)), true
	}
	if !strings.HasPrefix(f, "!") {
		return "", false
	}
	b, err := hex.DecodeString(f[1:])
	return string(b), err == nil
}

func isHexID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// The revocation log and the session counter, each on one slot of its own.
const (
	revocationLogKey   = "{revocations}:log"
	revocationsChannel = "sesame:revocations"
	countKey           = "{sessions}:count"
	bucketsKey         = "{sessions}:buckets"
)

// limiterKey is the key of a limiter window.
func limiterKey(key string) string { return "lim:" + key }

// ptr is the value of a pointer to a user's session: the length of the
// user's idField (one uvarint), that field and the session's idField.
// Either ID may hold any character; the usual hex IDs take 33 bytes.
func ptr(uid, sid string) string {
	u := idField(uid)
	b := binary.AppendUvarint(make([]byte, 0, 1+len(u)+17), uint64(len(u)))
	return string(append(append(b, u...), idField(sid)...))
}

func parsePtr(v string) (uid, sid string, ok bool) {
	l, n := binary.Uvarint([]byte(v[:min(len(v), binary.MaxVarintLen64)]))
	if n <= 0 || l > uint64(len(v)-n) {
		return "", "", false
	}
	uid, ok1 := idFromField(v[n : n+int(l)])
	sid, ok2 := idFromField(v[n+int(l):])
	return uid, sid, ok1 && ok2
}

// hashPtr is the value of a secret-hash pointer: its deadline (Unix ms, in
// decimal, which the bucket's Lua reads to forget pointers that have
// passed it), a colon and ptr.
func hashPtr(deadline int64, uid, sid string) string { return itoa(deadline) + ":" + ptr(uid, sid) }

func parseHashPtr(v string) (uid, sid string, ok bool) {
	_, p, found := strings.Cut(v, ":")
	if !found {
		return "", "", false
	}
	return parsePtr(p)
}

// A session record is the value of a field of its user's records hash: a
// header the Lua scripts read (struct.unpack('>ddd')),
//
//	ExpiresAt | pointer deadline | LastSeenAt
//
// in Unix milliseconds, each a big-endian IEEE 754 double (exact for any
// millisecond within 285,000 years of 1970), then the fields no script
// looks at, packed:
//
//	SecretHash (32 bytes) | CreatedAt, AbsoluteExpiresAt (varints) |
//	kind (1 byte) | len(IP) (uvarint) | IP | UserAgent (the rest)
//
// The pointer deadline is when the session's secret-hash pointer expires
// (see pointerDeadline); the user's records hash lives until the latest of
// its sessions' pointer deadlines.
const (
	kindCookieByte = 'c'
	kindTokenByte  = 't'
	headerLen      = 3 * 8
)

func encodeRecord(s sesame.Session, kind byte, ptrDeadline int64) string {
	b := make([]byte, 0, headerLen+len(s.SecretHash)+2*binary.MaxVarintLen64+2+len(s.IP)+len(s.UserAgent))
	for _, ms := range []int64{toMS(s.ExpiresAt), ptrDeadline, toMS(s.LastSeenAt)} {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(float64(ms)))
	}
	b = append(b, s.SecretHash[:]...)
	b = binary.AppendVarint(b, toMS(s.CreatedAt))
	b = binary.AppendVarint(b, toMS(s.AbsoluteExpiresAt))
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(s.IP)))
	b = append(b, s.IP...)
	b = append(b, s.UserAgent...)
	return string(b)
}

var errCorrupt = errors.New("corrupt session record")

// decodeRecord decodes a record into a session with that user and ID.
func decodeRecord(v, uid, sid string) (sesame.Session, error) {
	s := sesame.Session{ID: sid, UserID: uid}
	b := []byte(v)
	if len(b) < headerLen+len(s.SecretHash) {
		return s, errCorrupt
	}
	var hdr [3]int64
	for i := range hdr {
		f := math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return s, errCorrupt
		}
		hdr[i] = int64(f)
	}
	b = b[headerLen:]
	s.ExpiresAt, s.LastSeenAt = fromMS(hdr[0]), fromMS(hdr[2])
	copy(s.SecretHash[:], b)
	b = b[len(s.SecretHash):]
	var created, abs int64
	for _, to := range []*int64{&created, &abs} {
		x, n := binary.Varint(b)
		if n <= 0 {
			return s, errCorrupt
		}
		*to, b = x, b[n:]
	}
	s.CreatedAt, s.AbsoluteExpiresAt = fromMS(created), fromMS(abs)
	if len(b) < 1 {
		return s, errCorrupt
	}
	switch b[0] {
	case kindCookieByte:
		s.Kind = sesame.KindCookie
	case kindTokenByte:
		s.Kind = sesame.KindToken
	default:
		return s, errCorrupt
	}
	b = b[1:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return s, errCorrupt
	}
	b = b[n:]
	s.IP, s.UserAgent = string(b[:l]), string(b[l:])
	return s, nil
}

// hashFrom returns a secret hash as the scripts return it: the 32 raw bytes
// that follow a record's header.
func hashFrom(raw string) ([32]byte, bool) {
	var h [32]byte
	if len(raw) != len(h) {
		return h, false
	}
	copy(h[:], raw)
	return h, true
}

// A refresh token is a field of its family's hash, named by the token
// hash in hex, whose value is
//
//	<CreatedAt>:<ExpiresAt>:<Generation>                          while current
//	<CreatedAt>:<ExpiresAt>:<RetiredAt>:<successor hash in hex>:<Generation>   once retired
//
// Values written before generations were kept lack the last part, and
// read as generation 0.
func encodeToken(t sesame.RefreshToken) string {
	return strconv.FormatInt(toMS(t.CreatedAt), 10) + ":" + strconv.FormatInt(toMS(t.ExpiresAt), 10) + ":" +
		strconv.FormatInt(t.Generation, 10)
}

func decodeToken(field, v, uid, sid string) (t sesame.RefreshToken, retired bool, err error) {
	t.SessionID, t.UserID = sid, uid
	errCorrupt := errors.New("corrupt refresh token")
	if n, err := hex.Decode(t.Hash[:], []byte(field)); err != nil || n != len(t.Hash) {
		return t, false, errCorrupt
	}
	parts := strings.Split(v, ":")
	retired = len(parts) >= 4
	if len(parts) < 2 || len(parts) > 5 {
		return t, false, errCorrupt
	}
	if n := len(parts); n == 3 || n == 5 {
		if t.Generation, err = strconv.ParseInt(parts[n-1], 10, 64); err != nil || t.Generation < 0 {
			return t, false, errCorrupt
		}
	}
	var ms [3]int64
	for i := range min(len(parts), 3) {
		if i == 2 && !retired {
			break
		}
		if ms[i], err = strconv.ParseInt(parts[i], 10, 64); err != nil {
			return t, false, errCorrupt
		}
	}
	t.CreatedAt, t.ExpiresAt = fromMS(ms[0]), fromMS(ms[1])
	if retired {
		t.RetiredAt = fromMS(ms[2])
		if n, err := hex.Decode(t.SuccessorHash[:], []byte(parts[3])); err != nil || n != len(t.SuccessorHash) {
			return t, false, errCorrupt
		}
	}
	return t, retired, nil
}

// bucket is the counter bucket of a deadline: its minute.
func bucket(ms int64) int64 {
	if ms < 0 {
		return (ms - 59_999) / 60_000
	}
	return ms / 60_000
}
