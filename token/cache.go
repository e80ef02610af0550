package token

import (
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// cache remembers verified tokens by the whole token string (the map's
// randomly seeded hash finds it; equality is of every byte). It only ever
// holds tokens that passed every check but revocation, so a hit proves the
// token string is one that verified. Holding the tokens themselves adds
// little for a reader of this process's memory: each is kept at most until
// it expires (the access-token lifetime), requests in flight hold them
// too, and in Sesame's own server the signing keys share that memory.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[string]cacheEntry // by the whole token
}

type cacheEntry struct {
	claims      sesame.Claims
	kid         string
	from, until time.Time // accepted in [from, until)
}

// evictSample is how many entries put looks at when the cache is full.
const evictSample = 8

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[string]cacheEntry, min(max, 1024))}
}

// get returns a copy of the claims cached under key and the kid that
// signed them if they are accepted at now.
func (c *cache) get(key string, now time.Time) (sesame.Claims, string, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return sesame.Claims{}, "", false
	}
	if !now.Before(e.until) {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
		return sesame.Claims{}, "", false
	}
	if now.Before(e.from) {
		return sesame.Claims{}, "", false
	}
	return cloneClaims(e.claims), e.kid, true
}

// put caches e, with a copy of its claims, under key, evicting if the cache is full:
// among a few entries (map iteration starts at a random place), the
// ones expired at now, or else the first.
func (c *cache) put(key string, e cacheEntry, now time.Time) {
	key = strings.Clone(key) // not the request's memory
	e.claims = cloneClaims(e.claims)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		var first string
		n, evicted := 0, false
		for k, old := range c.m {
			if n == 0 {
				first = k
			}
			if !now.Before(old.until) {
				delete(c.m, k)
				evicted = true
			}
			if n++; n == evictSample {
				break
			}
		}
		if !evicted {
			delete(c.m, first)
		}
	}
	c.m[key] = e
}

// cloneClaims copies the claims' slices, so that neither the cache nor a
// caller can change the other's: in one allocation, since a hit makes the
// copy on every bearer request. A nil slice stays nil.
func cloneClaims(c sesame.Claims) sesame.Claims {
	buf := make([]string, len(c.Audience)+len(c.Roles))
	// A nil slice stays nil; any other is copied and capped at its length,
	// so that an append to it cannot reach the other's storage.
	if c.Audience != nil {
		k := copy(buf, c.Audience)
		c.Audience, buf = buf[:k:k], buf[k:]
	}
	if c.Roles != nil {
		k := copy(buf, c.Roles)
		c.Roles = buf[:k:k]
	}
	return c
}
