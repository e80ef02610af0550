package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/sesameauth/sesame"
)

// CreateSession stores sess, replacing the user's session with the same ID
// (whose refresh tokens, if any, then belong to sess). An empty Kind is
// stored as sesame.KindCookie; a Kind that is not one of sesame's is an
// error. A session whose ExpiresAt is not after the store's clock is not
// stored (and one it replaces is removed). The user's sessions that have
// expired are forgotten on the way.
//
// It writes the secret-hash pointer first, then the record in one script
// on the user's slot: an error between the two leaves a pointer to
// nothing, which lookups ignore.
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
	p := pointerDeadline(now, e, toMS(sess.AbsoluteExpiresAt))
	uid, sid := sess.UserID, sess.ID
	if e > now {
		if err := s.setPointer(ctx, now, sess.SecretHash, uid, sid, p); err != nil {
			return translate(ctx, op, err)
		}
	}
	res, err := createScript.Exec(ctx, s.client,
		[]string{recordsKey(uid), familyKey(uid, sid)},
		[]string{itoa(now), encodeRecord(sess, kind, p), itoa(e), itoa(p), idField(sid), pruneSample},
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
	var counts []int64
	var dropHash [32]byte
	if oldHash, ok := hashFrom(oldHashRaw); ok && oldLive == 1 && (oldHash != sess.SecretHash || e <= now) {
		dropHash = oldHash
		s.recent.add(now, oldHash, written{ended: true})
	}
	if oldLive == 1 {
		counts = append(counts, bucket(oldE), -1)
	}
	if e > now {
		counts = append(counts, bucket(e), 1)
		s.recent.add(now, sess.SecretHash, written{lastSeen: toMS(sess.LastSeenAt)})
	} else {
		s.recent.add(now, sess.SecretHash, written{ended: true})
	}
	s.tidy(ctx, s.dropPointers(dropHash, tokens), counts)
	return nil
}

// pointerDeadline is how long a new session's secret-hash pointer (and its
// user's records hash) is kept: ExpiresAt plus one more idle period, capped
// at AbsoluteExpiresAt, so that a session that ends by its idle timeout
// leaves its pointer behind for at most that long, and a session in use
// extends it about once an idle period (see TouchSession).
func pointerDeadline(now, e, abs int64) int64 {
	return max(e, min(abs, e+max(e-now, 0)))
}

// setPointer stores the secret-hash pointer of a session.
func (s *Store) setPointer(ctx context.Context, now int64, hash [32]byte, uid, sid string, deadline int64) error {
	return setPointerScript.Exec(ctx, s.client, []string{hashBucket(hash)},
		[]string{itoa(now), hashField(hash), hashPtr(deadline, uid, sid), itoa(deadline), pruneSample}).Error()
}

// pruneSample is how many fields of a user's records, or of a pointer
// bucket, a write looks at (chosen at random by HRANDFIELD) to forget those
// that have expired. Each write adds about one entry that will expire, so
// expired entries settle at about 1/(pruneSample-1) of the live ones, and a
// write's cost does not grow with the hash.
const pruneSample = "16"

// Client-side cache lifetimes. Redis tells the client when a cached key
// changes (RESP3 tracking); the lifetimes only bound how stale an entry
// can be if that message were late. A record is what decides whether a
// session is live, so it is cached for a second at most.
const (
	pointerCacheTTL = time.Minute
	recordCacheTTL  = time.Second
)

// Session returns the live session whose SecretHash is hash, or
// sesame.ErrSessionNotFound. It reads the secret-hash pointer, then the
// record, which must carry the same hash; both through rueidis's
// server-assisted client-side cache, so that a session in use costs no
// round trip. Redis invalidates a cached key on every node as soon as it
// changes; a session this store ended is refused at once whatever the cache
// holds (see endedSet).
func (s *Store) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	// A shared deadline rather than s.bound: a context with a timer of its
	// own for every request cost a fifth of a cached lookup.
	ctx = s.lookupContext()
	w, known := s.recent.get(hash)
	if known && w.ended {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	sess, err := s.lookup(ctx, hash, false)
	if known && (errors.Is(err, sesame.ErrSessionNotFound) || err == nil && toMS(sess.LastSeenAt) < w.lastSeen) {
		sess, err = s.lookup(ctx, hash, true) // the cache is behind this store's own write
	}
	if err != nil {
		return sesame.Session{}, err
	}
	if toMS(sess.ExpiresAt) <= s.nowMS() {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	return sess, nil
}

// lookup reads the pointer and the record of the session whose secret hash
// is hash, from the client-side cache unless fresh, and returns
// sesame.ErrSessionNotFound if either is missing or the record is of
// another secret.
func (s *Store) lookup(ctx context.Context, hash [32]byte, fresh bool) (sesame.Session, error) {
	const op = "session"
	v, err := s.hget(ctx, hashBucket(hash), hashField(hash), pointerCacheTTL, fresh)
	if rueidis.IsRedisNil(err) {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	if err != nil {
		return sesame.Session{}, translate(ctx, op, err)
	}
	uid, sid, ok := parseHashPtr(v)
	if !ok {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	rec, err := s.hget(ctx, recordsKey(uid), idField(sid), recordCacheTTL, fresh)
	if rueidis.IsRedisNil(err) {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	if err != nil {
		return sesame.Session{}, translate(ctx, op, err)
	}
	sess, err := decodeRecord(rec, uid, sid)
	if err != nil {
		return sesame.Session{}, fmt.Errorf("redisstore: %s: session %s of user %s: %w", op, sid, uid, err)
	}
	if sess.SecretHash != hash {
		return sesame.Session{}, sesame.ErrSessionNotFound
	}
	return sess, nil
}

// sharedDeadline is a context that lookups share: its deadline is at most
// the operation timeout away, and at least nine tenths of it.
type sharedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc // called by the context's own timer, in effect
	renew  time.Time          // after which lookups take a new one (monotonic)
}

// lookupContext returns a context whose deadline bounds a lookup by about
// the operation timeout. It does not carry the caller's cancellation: a
// lookup is short and bounded anyway.
func (s *Store) lookupContext() context.Context {
	now := time.Now() // with its monotonic reading: a step of the wall clock changes nothing
	if d := s.shared.Load(); d != nil && now.Before(d.renew) && d.ctx.Err() == nil {
		return d.ctx
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	s.shared.Store(&sharedDeadline{ctx: ctx, cancel: cancel, renew: now.Add(s.timeout / 10)})
	return ctx
}

// hget reads a field of a hash, through the client-side cache (for at most
// ttl) unless fresh.
func (s *Store) hget(ctx context.Context, key, field string, ttl time.Duration, fresh bool) (string, error) {
	b := s.client.B().Hget().Key(key).Field(field)
	if fresh {
		return s.client.Do(ctx, b.Build()).ToString()
	}
	return s.client.DoCache(ctx, b.Cache(), ttl).ToString()
}

// TouchSession sets the session's LastSeenAt and ExpiresAt, or returns
// sesame.ErrSessionNotFound if it is gone, expired or not the user's. A
// deadline that has passed ends the session (without a revocation: it
// expired).
func (s *Store) TouchSession(ctx context.Context, userID, id string, lastSeen, expiresAt time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "touch session"
	now, e := s.nowMS(), toMS(expiresAt)
	res, err := touchScript.Exec(ctx, s.client,
		[]string{recordsKey(userID)},
		[]string{itoa(now), itoa(e), itoa(toMS(lastSeen)), idField(id)},
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
	if code != 2 {
		s.recent.add(now, hash, written{lastSeen: toMS(lastSeen)})
	}
	switch code {
	case 1:
		s.tidy(ctx, nil, []int64{bucket(oldE), -1, bucket(e), 1})
	case 2:
		var tokens []string
		if len(res) > 3 {
			tokens, _ = res[3].AsStrSlice()
		}
		s.recent.add(now, hash, written{ended: true})
		s.tidy(ctx, s.dropPointers(hash, tokens), []int64{bucket(oldE), -1})
	case 3:
		// The pointer first, then the record's note of its deadline: if
		// either fails, the record still has the old deadline, and the next
		// touch tries again.
		s.tidy(ctx, nil, []int64{bucket(oldE), -1, bucket(e), 1})
		np := e + max(e-now, 0)
		if err := s.setPointer(ctx, now, hash, userID, id, np); err != nil {
			return translate(ctx, op, err)
		}
		if err := extendScript.Exec(ctx, s.client, []string{recordsKey(userID)}, []string{idField(id), itoa(np)}).Error(); err != nil {
			return translate(ctx, op, err)
		}
	}
	return nil
}

// DeleteSession ends the user's session with that ID, if there is one: it
// deletes the session and its refresh tokens and, if it was live, logs its
// revocation. If the log cannot be appended to, it returns an error
// although the session is gone; calling it again appends the revocation.
func (s *Store) DeleteSession(ctx context.Context, userID, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "delete session"
	now := s.nowMS()
	res, err := endScript.Exec(ctx, s.client,
		[]string{recordsKey(userID), pendingKey(userID)},
		[]string{itoa(now), idField(id), itoa(s.retention().Milliseconds()), "1", id},
	).ToArray()
	if err != nil {
		return translate(ctx, op, err)
	}
	if len(res) != 6 {
		return fmt.Errorf("redisstore: %s: unexpected answer %v", op, res)
	}
	live, _ := res[1].AsInt64()
	raw, _ := res[2].ToString()
	hash, hasHash := hashFrom(raw)
	expires, _ := res[3].AsInt64()
	tokens, _ := res[4].AsStrSlice()
	pend, err := parsePending(res[5])
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	var counts []int64
	if live == 1 {
		counts = []int64{bucket(expires), -1}
	}
	if hasHash {
		s.recent.add(now, hash, written{ended: true})
	}
	s.tidy(ctx, s.dropPointers(hash, tokens), counts)
	if err := s.appendRevocations(ctx, userID, pend); err != nil {
		s.retryPending(userID)
		return fmt.Errorf("redisstore: %s: session ended, its revocation not logged yet (retried in the background): %w", op, err)
	}
	return nil
}

type pending struct {
	id string
	at int64
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
// CreatedAt, then by ID), from one read of the user's records.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sesame.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "user sessions"
	all, err := s.client.Do(ctx, s.client.B().Hgetall().Key(recordsKey(userID)).Build()).AsStrMap()
	if err != nil {
		return nil, translate(ctx, op, err)
	}
	now := s.nowMS()
	list := make([]sesame.Session, 0, len(all))
	for f, rec := range all {
		sess, err := decodeStored(f, rec, userID)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %w", op, err)
		}
		if toMS(sess.ExpiresAt) > now {
			list = append(list, sess)
		}
	}
	sortSessions(list)
	return list, nil
}

// decodeStored decodes the record in field f of the user's records.
func decodeStored(f, rec, uid string) (sesame.Session, error) {
	sid, ok := idFromField(f)
	if !ok {
		return sesame.Session{}, fmt.Errorf("user %s: field %q: %w", uid, f, errCorrupt)
	}
	sess, err := decodeRecord(rec, uid, sid)
	if err != nil {
		return sesame.Session{}, fmt.Errorf("session %s of user %s: %w", sid, uid, err)
	}
	return sess, nil
}

func sortSessions(list []sesame.Session) {
	slices.SortFunc(list, func(a, b sesame.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
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
	keep := ""
	if exceptID != "" {
		keep = idField(exceptID)
	}
	now := s.nowMS()
	res, err := endUserScript.Exec(ctx, s.client,
		[]string{recordsKey(userID), pendingKey(userID)},
		[]string{itoa(now), keep, itoa(s.retention().Milliseconds())},
	).ToArray()
	if err != nil {
		return nil, translate(ctx, op, err)
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("redisstore: %s: unexpected answer %v", op, res)
	}
	gone, _ := res[0].ToArray()
	tokens, _ := res[1].AsStrSlice()
	pend, err := parsePending(res[2])
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	var cleanup []rueidis.Completed
	var counts []int64
	var ended []sesame.Session
	for i := 0; i+2 < len(gone); i += 3 {
		f, _ := gone[i].ToString()
		rec, _ := gone[i+1].ToString()
		live, _ := gone[i+2].AsInt64()
		sess, err := decodeStored(f, rec, userID)
		if err != nil {
			continue // removed all the same; its pointer goes at its deadline
		}
		s.recent.add(now, sess.SecretHash, written{ended: true})
		cleanup = append(cleanup, s.dropPointers(sess.SecretHash, nil)...)
		if live == 1 {
			counts = append(counts, bucket(toMS(sess.ExpiresAt)), -1)
			ended = append(ended, sess)
		}
	}
	cleanup = append(cleanup, s.dropPointers([32]byte{}, tokens)...)
	s.tidy(ctx, cleanup, counts)
	sortSessions(ended)
	ids := make([]string, 0, len(ended))
	for _, sess := range ended {
		ids = append(ids, sess.ID)
	}
	if err := s.appendRevocations(ctx, userID, pend); err != nil {
		s.retryPending(userID)
		return ids, fmt.Errorf("redisstore: %s: sessions ended, their revocations not logged yet (retried in the background): %w", op, err)
	}
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

// dropPointers returns the commands that delete the secret-hash pointer of
// an ended session (unless hash is zero) and the pointers to its refresh
// tokens.
func (s *Store) dropPointers(hash [32]byte, tokens []string) []rueidis.Completed {
	var cmds []rueidis.Completed
	if hash != ([32]byte{}) {
		cmds = append(cmds, s.client.B().Hdel().Key(hashBucket(hash)).Field(hashField(hash)).Build())
	}
	for _, t := range tokens {
		cmds = append(cmds, s.client.B().Del().Key("rt:"+t).Build())
	}
	return cmds
}

// tidy runs what follows a change of records: deleting pointers to what
// is gone and adjusting the session counter (pairs of bucket and delta).
// Failures are not reported: the change has happened, a pointer left
// behind points to nothing and goes at its deadline, and a lost counter
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

// recentWrites remembers the sessions this store wrote in the last few
// seconds. Redis invalidates a changed key in every client's cache by a
// message that may arrive just after the write's own answer, so a lookup
// on this node right after a write could still find the old record in the
// cache: Session refuses a session this store ended whatever the cache
// holds, and reads Redis itself when the cache holds an older state than
// the one this store wrote. Other nodes learn of a change from Redis's
// invalidation message (typically well under a millisecond) and at the
// latest when their cached copy reaches recordCacheTTL.
//
// Entries live between recentMemory and twice that: two generations of
// maps, the older dropped whole.
type recentWrites struct {
	mu        sync.RWMutex
	cur, prev map[[32]byte]written
	rotated   int64 // Unix ms
}

// written is what this store last wrote of a session.
type written struct {
	ended    bool
	lastSeen int64 // Unix ms
}

// recentMemory is longer than recordCacheTTL, after which no cache holds
// a record older than what this store wrote.
const recentMemory = 3 * recordCacheTTL

func (r *recentWrites) add(now int64, hash [32]byte, w written) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || now-r.rotated >= recentMemory.Milliseconds() {
		r.prev, r.cur, r.rotated = r.cur, make(map[[32]byte]written), now
	}
	// An end is final: a touch that Redis ran before the end but whose
	// note comes after it must not undo it.
	if old, ok := r.cur[hash]; ok && old.ended {
		return
	}
	if old, ok := r.prev[hash]; ok && old.ended {
		w.ended = true
	}
	r.cur[hash] = w
}

func (r *recentWrites) get(hash [32]byte) (written, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if w, ok := r.cur[hash]; ok {
		return w, true
	}
	w, ok := r.prev[hash]
	return w, ok
}
