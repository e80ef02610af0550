package memstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/sesameauth/sesame"
)

// users is the user part of Store; order is the users in the order they
// were created.
type users struct {
	mu      sync.RWMutex
	byID    map[string]*sesame.User
	byEmail map[string]*sesame.User
	order   []*sesame.User
}

func (us *users) init() {
	us.byID = make(map[string]*sesame.User)
	us.byEmail = make(map[string]*sesame.User)
}

// errIDTaken is returned by CreateUser for an ID that is already in use.
// IDs come from sesame.NewID, so this is a bug in the caller.
var errIDTaken = errors.New("memstore: create user: id already in use")

// CreateUser stores a copy of u. It returns sesame.ErrEmailTaken if a user
// has the same email, and an error if one has the same ID; then it stores
// nothing.
func (s *Store) CreateUser(ctx context.Context, u sesame.User) error {
	us := &s.users
	us.mu.Lock()
	defer us.mu.Unlock()
	if us.byEmail[u.Email] != nil {
		return sesame.ErrEmailTaken
	}
	if us.byID[u.ID] != nil {
		return errIDTaken
	}
	c := copyUser(u)
	c.ID, c.Email = strings.Clone(c.ID), strings.Clone(c.Email)
	c.CreatedAt = c.CreatedAt.Round(0) // no monotonic reading: it means nothing to another process
	us.byID[c.ID] = &c
	us.byEmail[c.Email] = &c
	us.order = append(us.order, &c)
	return nil
}

// copyUser returns u with its own Roles, so that neither the caller nor the
// store can change the other's.
func copyUser(u sesame.User) sesame.User {
	u.Roles = slices.Clone(u.Roles)
	return u
}

// UserByID returns the user with that ID, or sesame.ErrUserNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (sesame.User, error) {
	us := &s.users
	us.mu.RLock()
	defer us.mu.RUnlock()
	u := us.byID[id]
	if u == nil {
		return sesame.User{}, sesame.ErrUserNotFound
	}
	return copyUser(*u), nil
}

// UserByEmail returns the user with that (normalised) email, or
// sesame.ErrUserNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (sesame.User, error) {
	us := &s.users
	us.mu.RLock()
	defer us.mu.RUnlock()
	u := us.byEmail[email]
	if u == nil {
		return sesame.User{}, sesame.ErrUserNotFound
	}
	return copyUser(*u), nil
}

// ListUsers returns every user, oldest first: by CreatedAt, then in the
// order they were stored.
func (s *Store) ListUsers(ctx context.Context) ([]sesame.User, error) {
	us := &s.users
	us.mu.RLock()
	list := make([]sesame.User, len(us.order))
	for i, u := range us.order {
		list[i] = copyUser(*u)
	}
	us.mu.RUnlock()
	slices.SortStableFunc(list, func(a, b sesame.User) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return list, nil
}

// SetPasswordHash replaces the user's password hash and advances its
// CredentialGen, or returns sesame.ErrUserNotFound.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	_, err := s.swapPasswordHash(userID, nil, hash, true)
	return err
}

// ChangePasswordHash replaces the user's password hash old with next and
// advances its CredentialGen, if the hash is still old; it reports whether
// it did, or returns sesame.ErrUserNotFound.
func (s *Store) ChangePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	return s.swapPasswordHash(userID, &old, next, true)
}

// UpgradePasswordHash replaces the user's password hash old with next, if
// it is still old, leaving CredentialGen as it is; it reports whether it
// did, or returns sesame.ErrUserNotFound.
func (s *Store) UpgradePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	return s.swapPasswordHash(userID, &old, next, false)
}

// swapPasswordHash sets the hash to next if it is *old (always if old is
// nil), advancing CredentialGen with it if advance.
func (s *Store) swapPasswordHash(userID string, old *string, next string, advance bool) (bool, error) {
	us := &s.users
	us.mu.Lock()
	defer us.mu.Unlock()
	u := us.byID[userID]
	if u == nil {
		return false, sesame.ErrUserNotFound
	}
	if old != nil && u.PasswordHash != *old {
		return false, nil
	}
	u.PasswordHash = next
	if advance {
		u.CredentialGen++
	}
	return true, nil
}

// AdvanceCredentialGen advances the user's CredentialGen, or returns
// sesame.ErrUserNotFound.
func (s *Store) AdvanceCredentialGen(ctx context.Context, userID string) error {
	return s.update(userID, func(u *sesame.User) error {
		u.CredentialGen++
		return nil
	})
}

// update applies change to the stored user with that ID, under the write
// lock, or returns sesame.ErrUserNotFound.
func (s *Store) update(userID string, change func(u *sesame.User) error) error {
	us := &s.users
	us.mu.Lock()
	defer us.mu.Unlock()
	u := us.byID[userID]
	if u == nil {
		return sesame.ErrUserNotFound
	}
	return change(u)
}

// SetRoles replaces the user's roles with a copy of roles, or returns
// sesame.ErrUserNotFound.
func (s *Store) SetRoles(ctx context.Context, userID string, roles []string) error {
	return s.update(userID, func(u *sesame.User) error {
		u.Roles = slices.Clone(roles)
		return nil
	})
}

// SetDisabled sets the user's Disabled flag, or returns
// sesame.ErrUserNotFound.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	return s.update(userID, func(u *sesame.User) error {
		u.Disabled = disabled
		return nil
	})
}

// SetEmail replaces the user's email. It returns sesame.ErrUserNotFound, or
// sesame.ErrEmailTaken if another user has it; then nothing changes.
func (s *Store) SetEmail(ctx context.Context, userID, email string) error {
	return s.update(userID, func(u *sesame.User) error {
		if o := s.users.byEmail[email]; o != nil && o != u {
			return sesame.ErrEmailTaken
		}
		delete(s.users.byEmail, u.Email)
		u.Email = strings.Clone(email)
		s.users.byEmail[u.Email] = u
		return nil
	})
}

// DeleteUser removes the user, or returns sesame.ErrUserNotFound.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	return s.update(userID, func(u *sesame.User) error {
		us := &s.users
		delete(us.byID, userID)
		delete(us.byEmail, u.Email)
		us.order = slices.DeleteFunc(us.order, func(o *sesame.User) bool { return o == u })
		return nil
	})
}
