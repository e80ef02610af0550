package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
)

const userColumns = `id, email, roles, password_hash, created_at, disabled, credential_gen`

// CreateUser stores u, or returns sesame.ErrEmailTaken if a user with the
// same email exists. Nil Roles are stored as none, and read back as nil.
func (s *Store) CreateUser(ctx context.Context, u sesame.User) error {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Email, roles, u.PasswordHash, u.CreatedAt, u.Disabled, u.CredentialGen)
	if uniqueViolation(err, "users_email_key") {
		return sesame.ErrEmailTaken
	}
	if err != nil {
		return translate("create user", err)
	}
	return nil
}

// UserByID returns the user with that id, or sesame.ErrUserNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (sesame.User, error) {
	if !storable(id) {
		return sesame.User{}, sesame.ErrUserNotFound
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return sesame.User{}, userErr("user by id", err)
	}
	return u, nil
}

// UserByEmail returns the user with that normalised email, or
// sesame.ErrUserNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (sesame.User, error) {
	if !storable(email) {
		return sesame.User{}, sesame.ErrUserNotFound
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if err != nil {
		return sesame.User{}, userErr("user by email", err)
	}
	return u, nil
}

// ListUsers returns every user, oldest first (by CreatedAt, then ID).
func (s *Store) ListUsers(ctx context.Context) ([]sesame.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, translate("list users", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sesame.User, error) { return scanUser(row) })
	if err != nil {
		return nil, translate("list users", err)
	}
	return users, nil
}

// SetPasswordHash replaces the user's password hash and advances its
// CredentialGen, or returns sesame.ErrUserNotFound.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return s.updateUser(ctx, "set password hash",
		`UPDATE users SET password_hash = $1, credential_gen = credential_gen + 1 WHERE id = $2`, hash, userID)
}

// AdvanceCredentialGen advances the user's CredentialGen, or returns
// sesame.ErrUserNotFound.
func (s *Store) AdvanceCredentialGen(ctx context.Context, userID string) error {
	return s.updateUser(ctx, "advance credential generation",
		`UPDATE users SET credential_gen = credential_gen + 1 WHERE id = $1`, userID)
}

// SetRoles replaces the user's roles, or returns sesame.ErrUserNotFound.
func (s *Store) SetRoles(ctx context.Context, userID string, roles []string) error {
	if roles == nil {
		roles = []string{}
	}
	return s.updateUser(ctx, "set roles", `UPDATE users SET roles = $1 WHERE id = $2`, roles, userID)
}

// SetDisabled sets the user's disabled flag, or returns
// sesame.ErrUserNotFound.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	return s.updateUser(ctx, "set disabled", `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, userID)
}

// SetEmail replaces the user's email. It returns sesame.ErrUserNotFound,
// or sesame.ErrEmailTaken if another user has it.
func (s *Store) SetEmail(ctx context.Context, userID, email string) error {
	if !storable(email) {
		return translate("set email", errors.New("email is not storable"))
	}
	return s.updateUser(ctx, "set email", `UPDATE users SET email = $1 WHERE id = $2`, email, userID)
}

// DeleteUser removes the user, or returns sesame.ErrUserNotFound.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	return s.updateUser(ctx, "delete user", `DELETE FROM users WHERE id = $1`, userID)
}

// updateUser runs a statement that changes one user's row (its last
// argument is the user's ID), and returns sesame.ErrUserNotFound if it
// changed none.
func (s *Store) updateUser(ctx context.Context, op, query string, args ...any) error {
	if id, _ := args[len(args)-1].(string); !storable(id) {
		return sesame.ErrUserNotFound
	}
	tag, err := s.pool.Exec(ctx, query, args...)
	if uniqueViolation(err, "users_email_key") {
		return sesame.ErrEmailTaken
	}
	if err != nil {
		return translate(op, err)
	}
	if tag.RowsAffected() == 0 {
		return sesame.ErrUserNotFound
	}
	return nil
}

// ChangePasswordHash replaces the user's password hash old with next and
// advances its CredentialGen in one statement, if the hash is still old;
// it reports whether it did, or returns sesame.ErrUserNotFound.
func (s *Store) ChangePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	return s.swapPasswordHash(ctx, "change password hash", `UPDATE users
		SET password_hash = $2, credential_gen = credential_gen + 1 WHERE id = $3 AND password_hash = $1`, userID, old, next)
}

// UpgradePasswordHash replaces the user's password hash old with next, if
// it is still old, leaving CredentialGen as it is; it reports whether it
// did, or returns sesame.ErrUserNotFound.
func (s *Store) UpgradePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	return s.swapPasswordHash(ctx, "upgrade password hash",
		`UPDATE users SET password_hash = $2 WHERE id = $3 AND password_hash = $1`, userID, old, next)
}

func (s *Store) swapPasswordHash(ctx context.Context, op, query, userID, old, next string) (bool, error) {
	if !storable(next) {
		return false, errors.New("pgstore: " + op + ": the new hash is not storable text")
	}
	if storable(old) { // else no stored hash can equal it
		switch err := s.updateUser(ctx, op, query, old, next, userID); {
		case err == nil:
			return true, nil
		case !errors.Is(err, sesame.ErrUserNotFound):
			return false, err
		}
	}
	// No row changed: the hash moved on, or there is no such user.
	if _, err := s.UserByID(ctx, userID); err != nil {
		return false, err
	}
	return false, nil
}

func scanUser(row pgx.Row) (sesame.User, error) {
	var (
		u       sesame.User
		created time.Time
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Roles, &u.PasswordHash, &created, &u.Disabled, &u.CredentialGen); err != nil {
		return sesame.User{}, err
	}
	if len(u.Roles) == 0 {
		u.Roles = nil
	}
	u.CreatedAt = created.UTC()
	return u, nil
}

func userErr(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return sesame.ErrUserNotFound
	}
	return translate(op, err)
}
