package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"github.com/sesameauth/sesame"
)

// CreateSession stores sess, replacing any session with the same ID (whose
// refresh tokens, if any, then belong to sess, when both are the same
// user's). An empty Kind is stored as sesame.KindCookie; a Kind that is not
// one of sesame's is an error. A session whose ExpiresAt is not after the
// store's clock is not stored (and one it replaces is removed).
//
// It writes the pointer keys first, then the record with its index entry
// in one script: an error between the two leaves pointers to nothing.
func (s *Store) CreateSession(ctx context.Context, sess sesame.Session) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var kind byte
	switch sess.Kind {
	case "", sesame.KindCookie:
		kind = kindCookieByte
	case sesame.KindToken:
		kind = kindTokenByte
	default:
		return fmt.Errorf("redisstore: create session: unknown kind %q", sess.Kind)
	}
	const op = "create session"
	now := s.nowMS()
	e := toMS(sess.ExpiresAt)
	p := max(e, toMS(sess.AbsoluteExpiresAt))
	uid, sid := sess.UserID, sess.ID
	var cleanup []rueidis.Completed
	var counts []int64

	// The same ID under another user: end that session first (no
	// revocation: it is replaced, not ended by anyone).
	old, err := s.client.Do(ctx, s.client.B().Get().Key(idPtrKey(sid)).Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
	case err != nil:
		return translate(ctx, op, err)
	case old != uid:
		r, err := s.end(ctx, old, sid, now, false)
		if err != nil {
			return translate(ctx, op, err)
		}
		cleanup = append(cleanup, s.dropPointers(r.hash, "", r.tokens)...)
		if r.live {
			counts = append(counts, bucket(r.expires), -1)
		}
	}

	if e > now {
		for _, resp := range s.client.DoMulti(ctx,
			s.client.B().Set().Key(hashPtrKey(sess.SecretHash)).Value(ptr(uid, sid)).Pxat(time.UnixMilli(p)).Build(),
			s.client.B().Set().Key(idPtrKey(sid)).Value(uid).Pxat(time.UnixMilli(p)).Build(),
		) {
			if err := resp.Error(); err != nil {
				return translate(ctx, op, err)
			}
		}
	}
	res, err := createScript.Exec(ctx, s.client,
		[]string{indexKey(uid), sessionKey(uid, sid), familyKey(uid, sid)},
		[]string{itoa(now), encodeRecord(sess, kind, p), itoa(e), itoa(p), sid, itoa(toMS(sess.CreatedAt)), itoa(rand.Int64N(1 << 30))},
	).ToArray()
	if err != nil {
		return translate(ctx, op, err)
	}
	if len(res) != 4 {
		return fmt.Errorf("redisstore: %s: unexpected answer %v", op, res)
	}
	oldLive, _ := res[0].AsInt64()
	oldHashRaw, _ := res[1].ToString()
	oldE, _ := res[2].AsInt64()
	tokens, _ := res[3].AsStrSlice()
	var dropHash string
	if oldHash, ok := hashFrom(oldHashRaw); ok && oldLive == 1 && (oldHash != sess.SecretHash || e <= now) {
		dropHash = hashPtrKey(oldHash)
	}
	if oldLive == 1 {
		counts = append(counts, bucket(oldE), -1)
	}
	if e > now {
		counts = append(counts, bucket(e), 1)
	}
	var dropID string
	if e <= now && oldLive == 1 {
		dropID = sid
	}
	cleanup = append(cleanup, s.dropPointerKeys(dropHash, dropID, tokens)...)
	s.tidy(ctx, cleanup, counts)
	return nil
}

// pointerCacheTTL bounds how long a secret-hash pointer stays in the
// client-side cache.
const pointerCacheTTL = time.Minute

// Session returns the live session whose SecretHash is hash, or
// sesame.ErrSessionNotFound. It costs two reads: the pointer, from the
// client-side cache after the first time, then the record, from Redis
// every time, which must carry the same hash.
func (s *Store) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "session"
	// The pointer from secret hash to user and session is immutable while
	// it exists, so it comes from the client-side cache (kept coherent by
	// Redis's invalidation messages, and dropped with the connection). The
	// record below is always read fresh and checked against the hash, so a
	// stale pointer can only make a lookup fail, never succeed.
	v, err := s.client.DoCache(ctx, s.client.B().Get().Key(hashPtrKey(hash)).Cache(), pointerCacheTTL).ToString()
	if rueidis.IsRedisNil(err) {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	if err != nil {
		return sesame.Session{}, translate(ctx, op, err)
	}
	uid, sid, ok := parsePtr(v)
	if !ok {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	rec, err := s.client.Do(ctx, s.client.B().Get().Key(sessionKey(uid, sid)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	if err != nil {
		return sesame.Session{}, translate(ctx, op, err)
	}
	sess, err := decodeRecord(rec, uid, sid)
	if err != nil {
		return sesame.Session{}, fmt.Errorf("redisstore: %s: %s: %w", op, sessionKey(uid, sid), err)
	}
	if sess.SecretHash != hash || toMS(sess.ExpiresAt) <= s.nowMS() {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	return sess, nil
}

// TouchSession sets the session's LastSeenAt and ExpiresAt, or returns
// sesame.ErrSessionNotFound if it is gone or expired. A deadline that has
// passed ends the session (without a revocation: it expired).
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, expiresAt time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "touch session"
	uid, err := s.client.Do(ctx, s.client.B().Get().Key(idPtrKey(id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return sesame.ErrSessionNotFound
	}
	if err != nil {
		return translate(ctx, op, err)
	}
	e := toMS(expiresAt)
	res, err := touchScript.Exec(ctx, s.client,
		[]string{indexKey(uid), sessionKey(uid, id)},
		[]string{itoa(s.nowMS()), itoa(e), itoa(toMS(lastSeen)), id},
	).ToArray()
	if err != nil {
		return translate(ctx, op, err)
	}
	code, _ := res[0].AsInt64()
	if code == 0 {
		return sesame.ErrSessionNotFound
	}
	if len(res) < 3 {
		return fmt.Errorf("redisstore: %s: unexpected answer %v", op, res)
	}
	raw, _ := res[1].ToString()
	hash, _ := hashFrom(raw)
	oldE, _ := res[2].AsInt64()
	switch code {
	case 1:
		s.tidy(ctx, nil, []int64{bucket(oldE), -1, bucket(e), 1})
	case 2:
		var tokens []string
		if len(res) > 3 {
			tokens, _ = res[3].AsStrSlice()
		}
		s.tidy(ctx, s.dropPointerKeys(hashPtrKey(hash), id, tokens), []int64{bucket(oldE), -1})
	case 3:
		np, _ := res[3].AsInt64()
		s.tidy(ctx, []rueidis.Completed{
			s.client.B().Pexpireat().Key(hashPtrKey(hash)).MillisecondsTimestamp(np).Gt().Build(),
			s.client.B().Pexpireat().Key(idPtrKey(id)).MillisecondsTimestamp(np).Gt().Build(),
		}, []int64{bucket(oldE), -1, bucket(e), 1})
	}
	return nil
}

// DeleteSession ends the session with that ID, if there is one: it deletes
// the session and its refresh tokens and, if it was live, logs its
// revocation. If the log cannot be appended to, it returns an error
// although the session is gone; calling it again appends the revocation.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "delete session"
	uid, err := s.client.Do(ctx, s.client.B().Get().Key(idPtrKey(id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil
	}
	if err != nil {
		return translate(ctx, op, err)
	}
	r, err := s.end(ctx, uid, id, s.nowMS(), true)
	if err != nil {
		return translate(ctx, op, err)
	}
	var counts []int64
	if r.live {
		counts = []int64{bucket(r.expires), -1}
	}
	s.tidy(ctx, s.dropPointers(r.hash, "", r.tokens), counts)
	if err := s.appendRevocations(ctx, uid, r.pending); err != nil {
		return fmt.Errorf("redisstore: %s: session ended, its revocation not logged yet (call again): %w", op, err)
	}
	// The ID pointer goes last: a retry after a failed append finds the
	// user through it.
	s.tidy(ctx, []rueidis.Completed{s.client.B().Del().Key(idPtrKey(id)).Build()}, nil)
	return nil
}

// ended is what endScript reports.
type ended struct {
	found, live bool
	hash        [32]byte
	hasHash     bool
	expires     int64
	tokens      []string
	pending     []pending
}

type pending struct {
	id string
	at int64
}

// end runs endScript on the user's session id.
func (s *Store) end(ctx context.Context, uid, id string, now int64, revoke bool) (ended, error) {
	flag := "0"
	if revoke {
		flag = "1"
	}
	res, err := endScript.Exec(ctx, s.client,
		[]string{indexKey(uid), sessionKey(uid, id), pendingKey(uid)},
		[]string{itoa(now), id, itoa(s.retention().Milliseconds()), flag},
	).ToArray()
	if err != nil {
		return ended{}, err
	}
	if len(res) != 6 {
		return ended{}, fmt.Errorf("unexpected answer %v", res)
	}
	var r ended
	found, _ := res[0].AsInt64()
	live, _ := res[1].AsInt64()
	r.found, r.live = found == 1, live == 1
	raw, _ := res[2].ToString()
	r.hash, r.hasHash = hashFrom(raw)
	r.expires, _ = res[3].AsInt64()
	r.tokens, _ = res[4].AsStrSlice()
	r.pending, err = parsePending(res[5])
	return r, err
}

func parsePending(m rueidis.RedisMessage) ([]pending, error) {
	flat, err := m.AsStrSlice()
	if err != nil {
		return nil, err
	}
	var list []pending
	for i := 0; i+1 < len(flat); i += 2 {
		at, err := strconv.ParseFloat(flat[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("pending revocation of %s at %q", flat[i], flat[i+1])
		}
		list = append(list, pending{id: flat[i], at: int64(at)})
	}
	return list, nil
}

// UserSessions returns the live sessions of the user, oldest first (by
// CreatedAt, then by ID), in one script on the user's slot.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sesame.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "user sessions"
	flat, err := listScript.Exec(ctx, s.client, []string{indexKey(userID)}, nil).AsStrSlice()
	if err != nil {
		return nil, translate(ctx, op, err)
	}
	now := s.nowMS()
	list := make([]sesame.Session, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		sess, err := decodeRecord(flat[i+1], userID, flat[i])
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %s: %w", op, sessionKey(userID, flat[i]), err)
		}
		if toMS(sess.ExpiresAt) > now {
			list = append(list, sess)
		}
	}
	return list, nil
}

// DeleteUserSessions ends every session of the user except exceptID, with
// their refresh tokens, in one script on the user's slot, and returns the
// IDs of those that were live, oldest first, whose revocations it logs. If
// the log cannot be appended to, it returns those IDs with an error;
// calling it again (or DeleteSession for any of the user's sessions)
// appends them.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "delete user sessions"
	res, err := endUserScript.Exec(ctx, s.client,
		[]string{indexKey(userID), pendingKey(userID)},
		[]string{itoa(s.nowMS()), exceptID, itoa(s.retention().Milliseconds())},
	).ToArray()
	if err != nil {
		return nil, translate(ctx, op, err)
	}
	if len(res) != 4 {
		return nil, fmt.Errorf("redisstore: %s: unexpected answer %v", op, res)
	}
	ids, err := res[0].AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	gone, _ := res[1].ToArray()
	tokens, _ := res[2].AsStrSlice()
	pend, err := parsePending(res[3])
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	var cleanup []rueidis.Completed
	var counts []int64
	for i := 0; i+3 < len(gone); i += 4 {
		raw, _ := gone[i+1].ToString()
		e, _ := gone[i+2].AsInt64()
		live, _ := gone[i+3].AsInt64()
		if h, ok := hashFrom(raw); ok {
			cleanup = append(cleanup, s.client.B().Del().Key(hashPtrKey(h)).Build())
		}
		if live == 1 {
			counts = append(counts, bucket(e), -1)
		}
	}
	cleanup = append(cleanup, s.dropPointerKeys("", "", tokens)...)
	s.tidy(ctx, cleanup, counts)
	if ids == nil {
		ids = []string{}
	}
	if err := s.appendRevocations(ctx, userID, pend); err != nil {
		return ids, fmt.Errorf("redisstore: %s: sessions ended, their revocations not logged yet (call again): %w", op, err)
	}
	cleanup = cleanup[:0]
	for i := 0; i+3 < len(gone); i += 4 {
		id, _ := gone[i].ToString()
		cleanup = append(cleanup, s.client.B().Del().Key(idPtrKey(id)).Build())
	}
	s.tidy(ctx, cleanup, nil)
	return ids, nil
}

// CountSessions returns the number of live sessions, read from the counter
// by deadline minute (see the package comment): it includes those that
// expired in the current minute.
func (s *Store) CountSessions(ctx context.Context) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := countScript.Exec(ctx, s.client, []string{countKey, bucketsKey},
		[]string{itoa(bucket(s.nowMS()))}).AsInt64()
	if err != nil {
		return 0, translate(ctx, "count sessions", err)
	}
	return int(max(n, 0)), nil
}

// dropPointers returns the commands that delete the pointers to an ended
// session (hash and ID, when known) and to its refresh tokens.
func (s *Store) dropPointers(hash [32]byte, id string, tokens []string) []rueidis.Completed {
	var h string
	if hash != ([32]byte{}) {
		h = hashPtrKey(hash)
	}
	return s.dropPointerKeys(h, id, tokens)
}

func (s *Store) dropPointerKeys(hashKey, id string, tokens []string) []rueidis.Completed {
	var cmds []rueidis.Completed
	if hashKey != "" {
		cmds = append(cmds, s.client.B().Del().Key(hashKey).Build())
	}
	if id != "" {
		cmds = append(cmds, s.client.B().Del().Key(idPtrKey(id)).Build())
	}
	for _, t := range tokens {
		cmds = append(cmds, s.client.B().Del().Key("rt:"+t).Build())
	}
	return cmds
}

// tidy runs what follows a change of records: deleting pointers to what
// is gone and adjusting the session counter (pairs of bucket and delta).
// Failures are not reported: the change has happened, a pointer left
// behind points to nothing and expires with its TTL, and a lost counter
// update skews the count only until its minute has passed.
func (s *Store) tidy(ctx context.Context, cmds []rueidis.Completed, counts []int64) {
	if len(cmds) > 0 {
		s.client.DoMulti(ctx, cmds...)
	}
	if len(counts) == 0 {
		return
	}
	// Cancel out moves within one bucket (a touch within the minute).
	sum := map[int64]int64{}
	var order []int64
	for i := 0; i+1 < len(counts); i += 2 {
		if _, ok := sum[counts[i]]; !ok {
			order = append(order, counts[i])
		}
		sum[counts[i]] += counts[i+1]
	}
	var args []string
	for _, b := range order {
		if d := sum[b]; d != 0 {
			args = append(args, itoa(b), itoa(d))
		}
	}
	if len(args) > 0 {
		countAdjustScript.Exec(ctx, s.client, []string{countKey, bucketsKey}, args)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
