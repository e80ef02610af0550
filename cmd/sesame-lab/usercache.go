package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// cachedUsers is an experiment, not production code: a UserStore whose
// UserByID answers from memory for ttl after it last asked the store, to
// measure what the user lookup on every authenticated request costs. A
// change made through this store drops the cached entry; one made by
// another process (the sesame command line) is seen within ttl.
type cachedUsers struct {
	sesame.UserStore
	ttl time.Duration

	mu   sync.RWMutex
	byID map[string]cachedUser
}

type cachedUser struct {
	user    sesame.User
	fetched time.Time
}

func newCachedUsers(s sesame.UserStore, ttl time.Duration) *cachedUsers {
	return &cachedUsers{UserStore: s, ttl: ttl, byID: map[string]cachedUser{}}
}

// UserByID returns the cached user if it was fetched less than ttl ago,
// else asks the store.
func (c *cachedUsers) UserByID(ctx context.Context, id string) (sesame.User, error) {
	c.mu.RLock()
	e, ok := c.byID[id]
	c.mu.RUnlock()
	if ok && time.Since(e.fetched) < c.ttl {
		e.user.Roles = slices.Clone(e.user.Roles) // callers may keep or change it
		return e.user, nil
	}
	u, err := c.UserStore.UserByID(ctx, id)
	if err != nil {
		return u, err
	}
	c.mu.Lock()
	c.byID[id] = cachedUser{user: u, fetched: time.Now()}
	c.mu.Unlock()
	return u, nil
}

// SetPasswordHash changes the store and drops the cached user.
func (c *cachedUsers) SetPasswordHash(ctx context.Context, userID, hash string) error {
	c.mu.Lock()
	delete(c.byID, userID)
	c.mu.Unlock()
	return c.UserStore.SetPasswordHash(ctx, userID, hash)
}
