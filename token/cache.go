package token

import (
	"slices"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// cache remembers verified tokens by the SHA-256 of the token string. It
// only ever holds tokens that passed every check but revocation, so a hit
// proves the token string is one that verified.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	claims      sesame.Claims
	kid         string
	from, until time.Time // accepted in [from, until)
}

// evictSample is how many entries put looks at when the cache is full.
const evictSample = 8

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[[32]byte]cacheEntry, min(max, 1024))}
}

// get returns a copy of the claims cached under key and the kid that
// signed them if they are accepted at now.
func (c *cache) get(key [32]byte, now time.Time) (sesame.Claims, string, bool) {
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
func (c *cache) put(key [32]byte, e cacheEntry, now time.Time) {
	e.claims = cloneClaims(e.claims)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		var first [32]byte
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

func cloneClaims(c sesame.Claims) sesame.Claims {
	c.Audience = slices.Clone(c.Audience)
	c.Roles = slices.Clone(c.Roles)
	return c
}
