package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
)

const userColumns = `id, email, roles, password_hash, created_at`

// CreateUser stores u, or returns sesame.ErrEmailTaken if a user with the
// same email exists. Nil Roles are stored as none, and read back as nil.
func (s *Store) CreateUser(ctx context.Context, u sesame.User) error {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Email, roles, u.PasswordHash, u.CreatedAt)
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

// SetPasswordHash replaces the user's password hash, or returns
// sesame.ErrUserNotFound.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	if !storable(userID) {
		return sesame.ErrUserNotFound
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
	if err != nil {
		return translate("set password hash", err)
	}
	if tag.RowsAffected() == 0 {
		return sesame.ErrUserNotFound
	}
	return nil
}

func scanUser(row pgx.Row) (sesame.User, error) {
	var (
		u       sesame.User
		created time.Time
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Roles, &u.PasswordHash, &created); err != nil {
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
