package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"github.com/sesameauth/sesame"
)

// errTokenHashInUse is returned for a refresh token whose hash is already
// stored: hashes of fresh random tokens never collide, so it is a bug in
// the caller.
var errTokenHashInUse = errors.New("refresh token hash already in use")

// CreateRefreshToken stores t as a current token of the family of
// t.SessionID, a session of t.UserID (RetiredAt and SuccessorHash are
// ignored). It returns sesame.ErrSessionNotFound, storing nothing, if that
// user has no live session with that ID, and an error if a token with the
// same hash is in the family. A token whose ExpiresAt has passed is
// accepted and not stored.
func (s *Store) CreateRefreshToken(ctx context.Context, t sesame.RefreshToken) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "create refresh token"
	uid := t.UserID
	if uid == "" {
		return sesame.ErrSessionNotFound
	}
	now, e := s.nowMS(), toMS(t.ExpiresAt)
	ptrKey := tokenPtrKey(t.Hash)
	if e > now {
		if err := s.client.Do(ctx, s.client.B().Set().Key(ptrKey).Value(ptr(uid, t.SessionID)).Pxat(time.UnixMilli(e)).Build()).Error(); err != nil {
			return translate(ctx, op, err)
		}
	}
	n, err := createTokenScript.Exec(ctx, s.client,
		[]string{recordsKey(uid), familyKey(uid, t.SessionID)},
		[]string{itoa(now), hex.EncodeToString(t.Hash[:]), encodeToken(t), itoa(e), idField(t.SessionID)},
	).AsInt64()
	if err != nil {
		return translate(ctx, op, err)
	}
	switch n {
	case 0:
		s.tidy(ctx, []rueidis.Completed{s.client.B().Del().Key(ptrKey).Build()}, nil)
		return sesame.ErrSessionNotFound
	case -1:
		return fmt.Errorf("redisstore: %s: %w", op, errTokenHashInUse)
	}
	return nil
}

// RotateRefreshToken retires the current token whose hash is oldHash
// (RetiredAt = next.CreatedAt, SuccessorHash = next.Hash) and stores next as
// the family's current token, as one compare-and-swap script on the user's
// slot: of concurrent rotations of one token exactly one succeeds, and the
// others get a *sesame.ReuseError naming its successor. It returns
// sesame.ErrInvalidGrant if no live token has that hash or its session is
// gone or expired, and a *sesame.ReuseError, changing nothing, if the token
// was already retired. next.SessionID must be empty or the family's; a zero
// next.CreatedAt is taken as the store's clock.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash [32]byte, next sesame.RefreshToken) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "rotate refresh token"
	v, err := s.client.Do(ctx, s.client.B().Get().Key(tokenPtrKey(oldHash)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return sesame.ErrInvalidGrant
	}
	if err != nil {
		return translate(ctx, op, err)
	}
	uid, sid, ok := parsePtr(v)
	if !ok {
		return sesame.ErrInvalidGrant
	}
	if next.SessionID != "" && next.SessionID != sid {
		return fmt.Errorf("redisstore: %s: next token is of session %q, not %q", op, next.SessionID, sid)
	}
	now := s.nowMS()
	if next.CreatedAt.IsZero() {
		next.CreatedAt = fromMS(now)
	}
	e := toMS(next.ExpiresAt)
	nextPtr := tokenPtrKey(next.Hash)
	if e > now { // the pointer first: a failure after it leaves a pointer to nothing
		if err := s.client.Do(ctx, s.client.B().Set().Key(nextPtr).Value(ptr(uid, sid)).Pxat(time.UnixMilli(e)).Build()).Error(); err != nil {
			return translate(ctx, op, err)
		}
	}
	oldHex := hex.EncodeToString(oldHash[:])
	res, err := rotateScript.Exec(ctx, s.client,
		[]string{recordsKey(uid), familyKey(uid, sid)},
		[]string{itoa(now), oldHex, hex.EncodeToString(next.Hash[:]), itoa(toMS(next.CreatedAt)) + ":" + itoa(e), itoa(e), itoa(toMS(next.CreatedAt)), idField(sid), itoa(sesame.RetiredRefreshTokensKept)},
	).ToArray()
	if err != nil {
		return translate(ctx, op, err)
	}
	code, _ := res[0].AsInt64()
	if code == 1 {
		if len(res) > 1 {
			forgot, _ := res[1].AsStrSlice()
			s.tidy(ctx, s.dropPointers([32]byte{}, forgot), nil)
		}
		return nil
	}
	// Take back the pointer written above, unless it is the pointer of a
	// token already stored: a hash in use (-1), or the successor the old
	// token already has (a retry within the reuse grace, code 2).
	dropNext := func() {
		if e > now {
			s.tidy(ctx, []rueidis.Completed{s.client.B().Del().Key(nextPtr).Build()}, nil)
		}
	}
	switch code {
	case 0:
		dropNext()
		return sesame.ErrInvalidGrant
	case -1:
		return fmt.Errorf("redisstore: %s: %w", op, errTokenHashInUse)
	case 2:
		if len(res) != 3 {
			break
		}
		val, _ := res[1].ToString()
		current, _ := res[2].AsInt64()
		t, retired, err := decodeToken(oldHex, val, uid, sid)
		if err != nil || !retired {
			return fmt.Errorf("redisstore: %s: token of session %s: %v", op, sid, err)
		}
		if t.SuccessorHash != next.Hash {
			dropNext()
		}
		return &sesame.ReuseError{Token: t, SuccessorCurrent: current == 1}
	}
	return fmt.Errorf("redisstore: %s: unexpected answer %v", op, res)
}

// RefreshToken returns the live token with that hash, current or retired,
// or sesame.ErrInvalidGrant. Its UserID is its session's. It reads the
// pointer, then the session and the token together.
func (s *Store) RefreshToken(ctx context.Context, hash [32]byte) (sesame.RefreshToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "refresh token"
	v, err := s.client.Do(ctx, s.client.B().Get().Key(tokenPtrKey(hash)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	if err != nil {
		return sesame.RefreshToken{}, translate(ctx, op, err)
	}
	uid, sid, ok := parsePtr(v)
	if !ok {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	field := hex.EncodeToString(hash[:])
	resps := s.client.DoMulti(ctx,
		s.client.B().Hget().Key(recordsKey(uid)).Field(idField(sid)).Build(),
		s.client.B().Hget().Key(familyKey(uid, sid)).Field(field).Build())
	rec, err := resps[0].ToString()
	if err == nil {
		var val string
		if val, err = resps[1].ToString(); err == nil {
			return s.liveToken(op, rec, field, val, uid, sid)
		}
	}
	if rueidis.IsRedisNil(err) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	return sesame.RefreshToken{}, translate(ctx, op, err)
}

func (s *Store) liveToken(op, rec, field, val, uid, sid string) (sesame.RefreshToken, error) {
	sess, err := decodeRecord(rec, uid, sid)
	if err != nil {
		return sesame.RefreshToken{}, fmt.Errorf("redisstore: %s: session %s of user %s: %w", op, sid, uid, err)
	}
	t, _, err := decodeToken(field, val, uid, sid)
	if err != nil {
		return sesame.RefreshToken{}, fmt.Errorf("redisstore: %s: family of session %s: %w", op, sid, err)
	}
	now := s.nowMS()
	if toMS(sess.ExpiresAt) <= now || toMS(t.ExpiresAt) <= now {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	return t, nil
}

// CurrentRefreshToken returns the current token of the family of the
// user's session sessionID (the newest, should there be several), or
// sesame.ErrInvalidGrant if the session is gone, expired or another
// user's, or has no live current token. It reads the session and the
// family (at most RetiredRefreshTokensKept+1 fields) together.
func (s *Store) CurrentRefreshToken(ctx context.Context, userID, sessionID string) (sesame.RefreshToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "current refresh token"
	if userID == "" {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	resps := s.client.DoMulti(ctx,
		s.client.B().Hget().Key(recordsKey(userID)).Field(idField(sessionID)).Build(),
		s.client.B().Hgetall().Key(familyKey(userID, sessionID)).Build())
	rec, err := resps[0].ToString()
	if rueidis.IsRedisNil(err) {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	if err != nil {
		return sesame.RefreshToken{}, translate(ctx, op, err)
	}
	fam, err := resps[1].AsStrMap()
	if err != nil {
		return sesame.RefreshToken{}, translate(ctx, op, err)
	}
	sess, err := decodeRecord(rec, userID, sessionID)
	if err != nil {
		return sesame.RefreshToken{}, fmt.Errorf("redisstore: %s: session %s of user %s: %w", op, sessionID, userID, err)
	}
	now := s.nowMS()
	if toMS(sess.ExpiresAt) <= now {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	var (
		cur   sesame.RefreshToken
		found bool
	)
	for field, val := range fam {
		t, retired, err := decodeToken(field, val, userID, sessionID)
		if err != nil {
			return sesame.RefreshToken{}, fmt.Errorf("redisstore: %s: family of session %s: %w", op, sessionID, err)
		}
		if !retired && toMS(t.ExpiresAt) > now && (!found || t.Generation >= cur.Generation) {
			cur, found = t, true
		}
	}
	if !found {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	return cur, nil
}
