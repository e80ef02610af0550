package memstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sesameauth/sesame"
)

// refreshTokens are the refresh-token families, kept beside the sessions
// and guarded by the sessions' lock, so that ending a session ends its
// family at once and a rotation sees the session and the family together.
// A cookie session has no family and costs nothing here.
type refreshTokens struct {
	byHash    map[[32]byte]*refreshRec
	bySession map[string]*family
}

// family is the tokens of one session, oldest first: at most its current
// token and sesame.RetiredRefreshTokensKept retired ones (see forget).
type family struct {
	sessionID string
	tokens    []*refreshRec
}

type refreshRec struct {
	hash      [32]byte
	successor [32]byte
	fam       *family
	created   int64 // Unix nanoseconds; see toNanos
	expires   int64
	retiredAt int64
	gen       int64
	retired   bool // kept apart from retiredAt, which may hold a zero time
}

func (rt *refreshTokens) init() {
	rt.byHash = make(map[[32]byte]*refreshRec)
	rt.bySession = make(map[string]*family)
}

func (rt *refreshTokens) families() int { return len(rt.bySession) }

// dropFamily removes the family of the session, and returns how many tokens
// it had.
func (rt *refreshTokens) dropFamily(sessionID string) int {
	f := rt.bySession[sessionID]
	if f == nil {
		return 0
	}
	for _, t := range f.tokens {
		delete(rt.byHash, t.hash)
	}
	delete(rt.bySession, f.sessionID)
	return len(f.tokens)
}

// token returns t, of the session s.
func (t *refreshRec) token(s *rec) sesame.RefreshToken {
	rt := sesame.RefreshToken{
		Hash:       t.hash,
		SessionID:  t.fam.sessionID,
		UserID:     s.user.id,
		CreatedAt:  fromNanos(t.created),
		ExpiresAt:  fromNanos(t.expires),
		Generation: t.gen,
	}
	if t.retired {
		rt.RetiredAt = fromNanos(t.retiredAt)
		rt.SuccessorHash = t.successor
	}
	return rt
}

// liveToken returns the token with that hash and its session if the token
// has not expired and the session is live, or nils.
func (ss *sessions) liveToken(hash [32]byte, now int64) (*refreshRec, *rec) {
	t := ss.refresh.byHash[hash]
	if t == nil || now >= t.expires {
		return nil, nil
	}
	s := ss.liveSession(t.fam.sessionID, now)
	if s == nil {
		return nil, nil
	}
	return t, s
}

// errTokenHashInUse is returned for a refresh token whose hash is already
// stored: hashes of fresh random tokens never collide, so it is a bug in
// the caller.
var errTokenHashInUse = errors.New("memstore: refresh token hash already in use")

// CreateRefreshToken stores t as the current token of the family of
// t.SessionID (RetiredAt and SuccessorHash are ignored, and UserID is read
// back as the session's); other tokens of the family, if any, are left as
// they are. It returns sesame.ErrSessionNotFound,
// storing nothing, if there is no live session with that ID, and an error
// if a token with the same hash is stored.
func (s *Store) CreateRefreshToken(ctx context.Context, t sesame.RefreshToken) error {
	now := s.now()
	ss := &s.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.liveSession(t.SessionID, now) == nil {
		return sesame.ErrSessionNotFound
	}
	if ss.refresh.byHash[t.Hash] != nil {
		return fmt.Errorf("memstore: create refresh token: %w", errTokenHashInUse)
	}
	f := ss.refresh.bySession[t.SessionID]
	if f == nil {
		f = &family{sessionID: strings.Clone(t.SessionID)}
		ss.refresh.bySession[f.sessionID] = f
	}
	ss.refresh.add(f, t)
	return nil
}

func (rt *refreshTokens) add(f *family, t sesame.RefreshToken) {
	r := &refreshRec{hash: t.Hash, fam: f, created: toNanos(t.CreatedAt), expires: toNanos(t.ExpiresAt), gen: t.Generation}
	f.tokens = append(f.tokens, r)
	rt.byHash[r.hash] = r
}

// forget drops the oldest retired tokens of f beyond
// sesame.RetiredRefreshTokensKept.
func (rt *refreshTokens) forget(f *family) {
	retired := 0
	for _, t := range f.tokens {
		if t.retired {
			retired++
		}
	}
	kept := f.tokens[:0]
	for _, t := range f.tokens {
		if t.retired && retired > sesame.RetiredRefreshTokensKept {
			retired--
			delete(rt.byHash, t.hash)
			continue
		}
		kept = append(kept, t)
	}
	clear(f.tokens[len(kept):])
	f.tokens = kept
}

// RotateRefreshToken retires the current token whose hash is oldHash
// (RetiredAt = next.CreatedAt, SuccessorHash = next.Hash) and stores next as
// the family's current token, under one lock. It returns
// sesame.ErrInvalidGrant if no live token has that hash or its session is
// gone or expired, and a *sesame.ReuseError, changing nothing, if the token
// was already retired. next.SessionID must be empty or the family's; a zero
// next.CreatedAt is taken as the store's clock.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash [32]byte, next sesame.RefreshToken) error {
	now := s.now()
	if next.CreatedAt.IsZero() {
		next.CreatedAt = fromNanos(now)
	}
	ss := &s.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old, sess := ss.liveToken(oldHash, now)
	if old == nil {
		return sesame.ErrInvalidGrant
	}
	if old.retired {
		succ := ss.refresh.byHash[old.successor]
		return &sesame.ReuseError{Token: old.token(sess), SuccessorCurrent: succ != nil && !succ.retired}
	}
	if next.SessionID != "" && next.SessionID != old.fam.sessionID {
		return fmt.Errorf("memstore: rotate refresh token: next token is of session %q, not %q", next.SessionID, old.fam.sessionID)
	}
	if ss.refresh.byHash[next.Hash] != nil {
		return fmt.Errorf("memstore: rotate refresh token: %w", errTokenHashInUse)
	}
	old.retired, old.retiredAt, old.successor = true, toNanos(next.CreatedAt), next.Hash
	next.Generation = old.gen + 1
	ss.refresh.add(old.fam, next)
	ss.refresh.forget(old.fam)
	return nil
}

// RefreshToken returns the live token with that hash, current or retired,
// or sesame.ErrInvalidGrant. Its UserID is its session's.
func (s *Store) RefreshToken(ctx context.Context, hash [32]byte) (sesame.RefreshToken, error) {
	now := s.now()
	ss := &s.sessions
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	t, sess := ss.liveToken(hash, now)
	if t == nil {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	return t.token(sess), nil
}

// CurrentRefreshToken returns the current token of the family of the
// user's session sessionID (the newest, should there be several), or
// sesame.ErrInvalidGrant if the session is gone, expired or another
// user's, or has no live current token.
func (s *Store) CurrentRefreshToken(ctx context.Context, userID, sessionID string) (sesame.RefreshToken, error) {
	now := s.now()
	ss := &s.sessions
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	sess := ss.liveSession(sessionID, now)
	f := ss.refresh.bySession[sessionID]
	if sess == nil || sess.user.id != userID || f == nil {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	var cur *refreshRec
	for _, t := range f.tokens {
		if !t.retired && now < t.expires && (cur == nil || t.gen >= cur.gen) {
			cur = t
		}
	}
	if cur == nil {
		return sesame.RefreshToken{}, sesame.ErrInvalidGrant
	}
	return cur.token(sess), nil
}
