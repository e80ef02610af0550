package memstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// rec is one stored session, kept compact because a server may hold
// millions: 144 bytes, one allocation besides its IP and user agent strings.
// The session's ID is kept decoded when it has the form sesame.NewID makes
// (32 lowercase hex digits); other IDs (odd is set) are kept in the
// sessions' oddIDs map, which costs nothing for the usual sessions.
type rec struct {
	hash       [32]byte
	id         [16]byte
	user       *userSessions
	prev, next *rec // in user's list, oldest first
	ip, ua     string
	created    int64 // Unix nanoseconds; see toNanos
	lastSeen   int64
	expires    int64
	absExpires int64
	kind       kind
	odd        bool
}

func (r *rec) hashKey() []byte { return r.hash[:] }
func (r *rec) idKey() []byte   { return r.id[:] }

func (r *rec) live(now int64) bool { return now < r.expires }

// hexID returns the ID of a session that is not odd, hex encoded.
func (r *rec) hexID() (b [32]byte) {
	const digits = "0123456789abcdef"
	for i, c := range r.id {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&0xf]
	}
	return b
}

// kind is a session's sesame.Session.Kind in a byte.
type kind uint8

const (
	kindCookie kind = iota // also for an empty Kind
	kindToken
)

func parseKind(s string) (kind, error) {
	switch s {
	case "", sesame.KindCookie:
		return kindCookie, nil
	case sesame.KindToken:
		return kindToken, nil
	}
	return 0, fmt.Errorf("memstore: create session: unknown kind %q", s)
}

func (k kind) String() string {
	if k == kindToken {
		return sesame.KindToken
	}
	return sesame.KindCookie
}

// compactID decodes id if it is 32 lowercase hex digits, the form that
// sesame.NewID makes and that encodes back to the same string.
func compactID(id string) (b [16]byte, ok bool) {
	if len(id) != 2*len(b) {
		return b, false
	}
	for i := range b {
		hi, ok1 := nibble(id[2*i])
		lo, ok2 := nibble(id[2*i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		b[i] = hi<<4 | lo
	}
	return b, true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// userSessions is the list of one user's sessions, oldest first, so that
// listing or ending them never looks at another user's.
type userSessions struct {
	id         string
	head, tail *rec
}

// insert links r in CreatedAt order, after any session created at the same
// time. Sessions are nearly always created in order, so this looks at the
// tail only.
func (u *userSessions) insert(r *rec) {
	r.user = u
	at := u.tail
	for at != nil && at.created > r.created {
		at = at.prev
	}
	r.prev = at
	if at == nil {
		r.next, u.head = u.head, r
	} else {
		r.next, at.next = at.next, r
	}
	if r.next == nil {
		u.tail = r
	} else {
		r.next.prev = r
	}
}

func (u *userSessions) unlink(r *rec) {
	if r.prev == nil {
		u.head = r.next
	} else {
		r.prev.next = r.next
	}
	if r.next == nil {
		u.tail = r.prev
	} else {
		r.next.prev = r.prev
	}
	r.prev, r.next = nil, nil
}

// sessions is the session part of Store, and the refresh-token families
// that belong to sessions. Reads take mu.RLock.
type sessions struct {
	mu      sync.RWMutex
	byHash  index
	byID    index           // sessions whose ID has the form compactID decodes
	byOddID map[string]*rec // the others
	oddIDs  map[*rec]string // and their IDs
	byUser  map[string]*userSessions
	refresh refreshTokens
}

func (ss *sessions) init() {
	ss.byHash = newIndex((*rec).hashKey)
	ss.byID = newIndex((*rec).idKey)
	ss.byOddID = make(map[string]*rec)
	ss.oddIDs = make(map[*rec]string)
	ss.byUser = make(map[string]*userSessions)
	ss.refresh.init()
}

func (ss *sessions) lookupID(id string) *rec {
	if b, ok := compactID(id); ok {
		return ss.byID.get(b[:])
	}
	return ss.byOddID[id]
}

func (ss *sessions) sessionID(r *rec) string {
	if r.odd {
		return ss.oddIDs[r]
	}
	b := r.hexID()
	return string(b[:])
}

func (ss *sessions) session(r *rec) sesame.Session {
	return sesame.Session{
		ID:                ss.sessionID(r),
		SecretHash:        r.hash,
		UserID:            r.user.id,
		CreatedAt:         fromNanos(r.created),
		LastSeenAt:        fromNanos(r.lastSeen),
		ExpiresAt:         fromNanos(r.expires),
		AbsoluteExpiresAt: fromNanos(r.absExpires),
		IP:                r.ip,
		UserAgent:         r.ua,
		Kind:              r.kind.String(),
	}
}

// add indexes r, whose ID is id.
func (ss *sessions) add(r *rec, id, userID string) {
	ss.byHash.put(r)
	if r.odd {
		ss.byOddID[id] = r
		ss.oddIDs[r] = id
	} else {
		ss.byID.put(r)
	}
	u := ss.byUser[userID]
	if u == nil {
		u = &userSessions{id: strings.Clone(userID)}
		ss.byUser[u.id] = u
	}
	u.insert(r)
}

// remove unindexes r. Its refresh-token family stays: see end.
func (ss *sessions) remove(r *rec) {
	ss.byHash.del(r)
	if r.odd {
		delete(ss.byOddID, ss.oddIDs[r])
		delete(ss.oddIDs, r)
	} else {
		ss.byID.del(r)
	}
	u := r.user
	u.unlink(r)
	if u.head == nil {
		delete(ss.byUser, u.id)
	}
}

// end removes r and its refresh-token family, and returns the number of
// records removed: the session and its tokens.
func (ss *sessions) end(r *rec) int {
	n := 1
	if ss.refresh.families() > 0 { // cookie-only stores never build the ID
		if r.odd {
			n += ss.refresh.dropFamily(ss.oddIDs[r])
		} else {
			b := r.hexID()
			n += ss.refresh.dropFamily(string(b[:]))
		}
	}
	ss.remove(r)
	return n
}

// liveSession returns the live session with that ID, or nil.
func (ss *sessions) liveSession(id string, now int64) *rec {
	if r := ss.lookupID(id); r != nil && r.live(now) {
		return r
	}
	return nil
}

// errHashInUse is returned by CreateSession for a secret hash that a
// different live session already has: two sessions sharing one secret is a
// bug in the caller, and replacing the other session would end it silently.
var errHashInUse = errors.New("memstore: create session: another session has the same secret hash")

// CreateSession stores sess, replacing any session with the same ID (whose
// refresh tokens, if any, then belong to sess). It fails, and changes
// nothing, if another live session (with a different ID) has the same
// SecretHash, or if sess.Kind is neither empty, sesame.KindCookie nor
// sesame.KindToken. An empty Kind is stored as sesame.KindCookie.
func (s *Store) CreateSession(ctx context.Context, sess sesame.Session) error {
	k, err := parseKind(sess.Kind)
	if err != nil {
		return err
	}
	r := &rec{
		hash:       sess.SecretHash,
		ip:         strings.Clone(sess.IP), // a request's strings may share a larger buffer
		ua:         strings.Clone(sess.UserAgent),
		created:    toNanos(sess.CreatedAt),
		lastSeen:   toNanos(sess.LastSeenAt),
		expires:    toNanos(sess.ExpiresAt),
		absExpires: toNanos(sess.AbsoluteExpiresAt),
		kind:       k,
	}
	id := sess.ID
	if b, ok := compactID(id); ok {
		r.id = b
	} else {
		r.odd = true
		id = strings.Clone(id)
	}
	now := s.now()
	ss := &s.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.lookupID(id)
	if other := ss.byHash.get(r.hash[:]); other != nil && other != old {
		if other.live(now) {
			return errHashInUse
		}
		ss.end(other)
	}
	if old != nil {
		ss.remove(old)
	}
	ss.add(r, id, sess.UserID)
	return nil
}

// Session returns the live session whose SecretHash is hash, or
// sesame.ErrSessionNotFound.
func (s *Store) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	now := s.now()
	ss := &s.sessions
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	r := ss.byHash.get(hash[:])
	if r == nil || !r.live(now) {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	return ss.session(r), nil
}

// TouchSession sets the live session's LastSeenAt and ExpiresAt, or returns
// sesame.ErrSessionNotFound and changes nothing.
func (s *Store) TouchSession(ctx context.Context, userID, id string, lastSeen, expiresAt time.Time) error {
	now := s.now()
	ss := &s.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	r := ss.liveSession(id, now)
	if r == nil || r.user.id != userID {
		return sesame.ErrSessionNotFound
	}
	r.lastSeen, r.expires = toNanos(lastSeen), toNanos(expiresAt)
	return nil
}

// DeleteSession removes the session with that ID and its refresh tokens, if
// there is one, and logs its revocation if it was live.
func (s *Store) DeleteSession(ctx context.Context, userID, id string) error {
	now := s.now()
	ss := &s.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if r := ss.lookupID(id); r != nil && r.user.id == userID {
		if r.live(now) {
			s.revocations.add(now, ss.sessionID(r))
		}
		ss.end(r)
	}
	return nil
}

// UserSessions returns the user's live sessions, oldest first (by
// CreatedAt, then by when they were stored).
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sesame.Session, error) {
	now := s.now()
	ss := &s.sessions
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	list := []sesame.Session{}
	if u := ss.byUser[userID]; u != nil {
		for r := u.head; r != nil; r = r.next {
			if r.live(now) {
				list = append(list, ss.session(r))
			}
		}
	}
	return list, nil
}

// DeleteUserSessions removes every session of the user except exceptID,
// with their refresh tokens, and returns the IDs of those that were live,
// whose revocations it logs. Expired ones are removed too but not reported:
// they had already ended.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	now := s.now()
	ss := &s.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ended := []string{}
	u := ss.byUser[userID]
	if u == nil {
		return ended, nil
	}
	var except *rec
	if exceptID != "" {
		except = ss.lookupID(exceptID)
	}
	for r := u.head; r != nil; {
		next := r.next
		if r != except {
			if r.live(now) {
				ended = append(ended, ss.sessionID(r))
			}
			ss.end(r)
		}
		r = next
	}
	s.revocations.add(now, ended...)
	return ended, nil
}

// CountSessions returns the number of live sessions. It looks at every
// session, one index shard (1/256 of them) at a time under the read lock:
// some 100ms per million sessions, fine for a metric scraped every few
// seconds. With writes going on, the count is only as exact as a metric
// needs.
func (s *Store) CountSessions(ctx context.Context) (int, error) {
	now := s.now()
	ss := &s.sessions
	n := 0
	for i := range ss.byHash.shards {
		ss.mu.RLock()
		for _, r := range ss.byHash.shards[i].slots {
			if r != nil && r.live(now) {
				n++
			}
		}
		ss.mu.RUnlock()
	}
	return n, nil
}

// deleteExpired removes the expired sessions and their refresh tokens, and
// returns how many records (sessions and tokens) it removed.
func (ss *sessions) deleteExpired(now int64) int {
	n := 0
	var expired []*rec
	isExpired := func(r *rec) bool { return !r.live(now) }
	for i := range ss.byHash.shards {
		ss.mu.Lock()
		expired = ss.byHash.appendShard(expired[:0], i, isExpired)
		for _, r := range expired {
			n += ss.end(r)
		}
		ss.mu.Unlock()
	}
	clear(expired)
	return n
}
