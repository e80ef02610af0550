package redisstore

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
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

func sessionKey(uid, sid string) string { return userTag(uid) + ":s:" + sid }
func indexKey(uid string) string        { return userTag(uid) + ":idx" }
func familyKey(uid, sid string) string  { return userTag(uid) + ":f:" + sid }
func pendingKey(uid string) string      { return userTag(uid) + ":rv" }

func hashPtrKey(hash [32]byte) string  { return "sh:" + hex.EncodeToString(hash[:]) }
func idPtrKey(sid string) string       { return "si:" + sid }
func tokenPtrKey(hash [32]byte) string { return "rt:" + hex.EncodeToString(hash[:]) }

// The revocation log and the session counter, each on one slot of its own.
const (
	revocationLogKey   = "{revocations}:log"
	revocationsChannel = "sesame:revocations"
	countKey           = "{sessions}:count"
	bucketsKey         = "{sessions}:buckets"
)

// limiterKey is the key of a limiter window.
func limiterKey(key string) string { return "lim:" + key }

// ptr is the value of a pointer to a user's session: the user ID's length,
// a colon, the user ID and the session ID, so that either may hold any
// character.
func ptr(uid, sid string) string { return strconv.Itoa(len(uid)) + ":" + uid + sid }

func parsePtr(v string) (uid, sid string, ok bool) {
	n, rest, found := strings.Cut(v, ":")
	l, err := strconv.Atoi(n)
	if !found || err != nil || l < 0 || l > len(rest) {
		return "", "", false
	}
	return rest[:l], rest[l:], true
}

// A session record is one Redis string: a text header the Lua scripts read,
//
//	<ExpiresAt>:<pointer deadline>:<LastSeenAt>:
//
// in Unix milliseconds, then the fields no script looks at, packed:
//
//	SecretHash (32 bytes) | CreatedAt, AbsoluteExpiresAt (varints) |
//	kind (1 byte) | len(IP) (uvarint) | IP | UserAgent (the rest)
//
// The pointer deadline is when the session's pointer keys expire: the
// latest of ExpiresAt and AbsoluteExpiresAt the session has had.
const (
	kindCookieByte = 'c'
	kindTokenByte  = 't'
)

func encodeRecord(s sesame.Session, kind byte, ptrDeadline int64) string {
	b := make([]byte, 0, 3*14+len(s.SecretHash)+2*binary.MaxVarintLen64+2+len(s.IP)+len(s.UserAgent))
	b = strconv.AppendInt(b, toMS(s.ExpiresAt), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, ptrDeadline, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, toMS(s.LastSeenAt), 10)
	b = append(b, ':')
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
	var hdr [3]int64
	for i := range hdr {
		n, rest, ok := strings.Cut(v, ":")
		x, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			return s, errCorrupt
		}
		hdr[i], v = x, rest
	}
	s.ExpiresAt, s.LastSeenAt = fromMS(hdr[0]), fromMS(hdr[2])
	b := []byte(v)
	if len(b) < len(s.SecretHash) {
		return s, errCorrupt
	}
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
//	<CreatedAt>:<ExpiresAt>                      while current
//	<CreatedAt>:<ExpiresAt>:<RetiredAt>:<successor hash in hex>   once retired
func encodeToken(t sesame.RefreshToken) string {
	return strconv.FormatInt(toMS(t.CreatedAt), 10) + ":" + strconv.FormatInt(toMS(t.ExpiresAt), 10)
}

func decodeToken(field, v, uid, sid string) (t sesame.RefreshToken, retired bool, err error) {
	t.SessionID, t.UserID = sid, uid
	if n, err := hex.Decode(t.Hash[:], []byte(field)); err != nil || n != len(t.Hash) {
		return t, false, errors.New("corrupt refresh token")
	}
	parts := strings.Split(v, ":")
	if len(parts) != 2 && len(parts) != 4 {
		return t, false, errors.New("corrupt refresh token")
	}
	var ms [3]int64
	for i := range min(len(parts), 3) {
		if ms[i], err = strconv.ParseInt(parts[i], 10, 64); err != nil {
			return t, false, errors.New("corrupt refresh token")
		}
	}
	t.CreatedAt, t.ExpiresAt = fromMS(ms[0]), fromMS(ms[1])
	if len(parts) == 4 {
		t.RetiredAt = fromMS(ms[2])
		if n, err := hex.Decode(t.SuccessorHash[:], []byte(parts[3])); err != nil || n != len(t.SuccessorHash) {
			return t, false, errors.New("corrupt refresh token")
		}
		retired = true
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
