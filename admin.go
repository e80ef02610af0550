package sesame

import (
	"context"
	"slices"
)

// Administration of users, by an admin (through the API) or the command
// line. Each method takes the Client of the administrator, whose Actor is
// recorded in the audit event. A change that could leave a live
// credential carrying more than the user now has (disabling, removing a
// role, deleting) ends every session and refresh family of the user, whose
// access tokens the revocation set then refuses at once.

// maxRoleBytes bounds a role name.
const maxRoleBytes = 64

// ValidRole reports whether r can be a role name: 1 to 64 ASCII letters,
// digits, '-', '_', '.' or ':'. Names stay printable and safe in a
// comma-separated header (forward auth's Remote-Groups).
func ValidRole(r string) bool {
	if r == "" || len(r) > maxRoleBytes {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// AddUser creates a user as Register does, on behalf of an administrator:
// the audit event names c.Actor. It returns the errors Register does, and
// ErrInvalidRole.
func (a *Authenticator) AddUser(ctx context.Context, email, password string, roles []string, c Client) (User, error) {
	for _, r := range roles {
		if !ValidRole(r) {
			return User{}, ErrInvalidRole
		}
	}
	return a.register(ctx, email, password, roles, c)
}

// SetDisabled disables or enables the user and returns it. Disabling
// marks the user first, so that no sign-in passes from then on (it is
// refused with ErrInvalidCredentials, as a wrong password is), then ends
// every session and refresh family. It returns ErrUserNotFound.
func (a *Authenticator) SetDisabled(ctx context.Context, userID string, disabled bool, c Client) (User, error) {
	if err := a.cfg.Users.SetDisabled(ctx, userID, disabled); err != nil {
		return User{}, err
	}
	a.users.forget(userID)
	if disabled {
		if _, err := a.RevokeSessions(ctx, userID, "", c); err != nil {
			return User{}, err
		}
	}
	typ := EventUserEnabled
	if disabled {
		typ = EventUserDisabled
	}
	a.audit(ctx, Event{Type: typ, UserID: userID, IP: c.IP, UserAgent: c.UserAgent, Actor: c.Actor})
	return a.userByID(ctx, userID)
}

// SetRoles replaces the user's roles (RoleUser is always kept) and returns
// the user. If a role the user had is gone, every session and refresh
// family of the user ends, so no live access token carries it. It returns
// ErrUserNotFound or ErrInvalidRole.
func (a *Authenticator) SetRoles(ctx context.Context, userID string, roles []string, c Client) (User, error) {
	for _, r := range roles {
		if !ValidRole(r) {
			return User{}, ErrInvalidRole
		}
	}
	old, err := a.cfg.Users.UserByID(ctx, userID)
	if err != nil {
		return User{}, err
	}
	next := normalizeRoles(roles)
	if err := a.cfg.Users.SetRoles(ctx, userID, next); err != nil {
		return User{}, err
	}
	a.users.forget(userID)
	removed := slices.ContainsFunc(old.Roles, func(r string) bool { return !slices.Contains(next, r) })
	if removed {
		if _, err := a.RevokeSessions(ctx, userID, "", c); err != nil {
			return User{}, err
		}
	}
	a.audit(ctx, Event{Type: EventRolesChanged, UserID: userID, IP: c.IP, UserAgent: c.UserAgent, Actor: c.Actor})
	return a.userByID(ctx, userID)
}

// SetEmail gives the user a new email, normalised as at registration, and
// returns the user. Sessions stay; access tokens already issued carry the
// old email until they expire. It returns ErrUserNotFound,
// ErrInvalidEmail or ErrEmailTaken.
func (a *Authenticator) SetEmail(ctx context.Context, userID, email string, c Client) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := a.cfg.Users.SetEmail(ctx, userID, e); err != nil {
		return User{}, err
	}
	a.users.forget(userID)
	a.audit(ctx, Event{Type: EventEmailChanged, UserID: userID, IP: c.IP, UserAgent: c.UserAgent, Actor: c.Actor})
	return a.userByID(ctx, userID)
}

// DeleteUser ends every session and refresh family of the user, then
// removes the user. It returns ErrUserNotFound. If ending the sessions
// fails, the user is kept (disabled), so that a retry finds it.
func (a *Authenticator) DeleteUser(ctx context.Context, userID string, c Client) error {
	// Disabled first: a sign-in racing the deletion is refused, and the
	// user stays refused if a step below fails.
	if err := a.cfg.Users.SetDisabled(ctx, userID, true); err != nil {
		return err
	}
	a.users.forget(userID)
	if _, err := a.RevokeSessions(ctx, userID, "", c); err != nil {
		return err
	}
	if err := a.cfg.Users.DeleteUser(ctx, userID); err != nil {
		return err
	}
	a.users.forget(userID)
	a.audit(ctx, Event{Type: EventUserDeleted, UserID: userID, IP: c.IP, UserAgent: c.UserAgent, Actor: c.Actor})
	return nil
}

// userByID reads the user without its password hash.
func (a *Authenticator) userByID(ctx context.Context, id string) (User, error) {
	u, err := a.cfg.Users.UserByID(ctx, id)
	u.PasswordHash = ""
	return u, err
}

// forget drops the user from the cache, so this node's next request reads
// the change.
func (c *userCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
