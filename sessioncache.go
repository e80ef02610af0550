package sesame

import (
	"sync"
	"time"
)

// sessionCache keeps sessions that Authenticate read recently, by the hash
// of their secret, so that a cookie request need not read the store. It is
// safe only beside a RevocationSet fed by the store: an entry is used only
// while the set, current to within its bound, does not know the session
// ended (every store logs each session it deletes). Entries are forgotten
// after maxAge, well inside the time the set remembers a revocation, so a
// cached session can never outlive the set's memory of its end.
type sessionCache struct {
	max    int
	maxAge time.Duration

	mu sync.RWMutex
	m  map[[32]byte]cachedSession
}

type cachedSession struct {
	s    Session
	read time.Time // when it was read from the store
}

// sessionCacheMaxAge bounds how long a session read from the store is
// reused; RevocationSet entries last longer (Authenticator checks).
const sessionCacheMaxAge = 30 * time.Second

func newSessionCache(n int, maxAge time.Duration) *sessionCache {
	return &sessionCache{max: n, maxAge: maxAge, m: make(map[[32]byte]cachedSession, min(n, 1024))}
}

// get returns the cached session with that secret hash, if it was read
// within maxAge.
func (c *sessionCache) get(hash [32]byte, now time.Time) (Session, bool) {
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || now.Sub(e.read) >= c.maxAge || now.Before(e.read) {
		return Session{}, false
	}
	return e.s, true
}

// put keeps s, read from the store at read. When the cache is full, a few
// arbitrary entries make room: cheaper than LRU bookkeeping on every hit.
func (c *sessionCache) put(s Session, read time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[s.SecretHash]; !ok && len(c.m) >= c.max {
		n := 0
		for h := range c.m {
			delete(c.m, h)
			if n++; n >= 8 {
				break
			}
		}
	}
	c.m[s.SecretHash] = cachedSession{s: s, read: read}
}

// touched records a use this process wrote to the store.
func (c *sessionCache) touched(hash [32]byte, lastSeen, expires time.Time) {
	c.mu.Lock()
	if e, ok := c.m[hash]; ok {
		e.s.LastSeenAt, e.s.ExpiresAt = lastSeen, expires
		c.m[hash] = e
	}
	c.mu.Unlock()
}

// drop forgets the session with that secret hash.
func (c *sessionCache) drop(hash [32]byte) {
	c.mu.Lock()
	delete(c.m, hash)
	c.mu.Unlock()
}
