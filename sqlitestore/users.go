package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sesameauth/sesame"
)

// CreateUser stores u, or returns sesame.ErrEmailTaken if a user with the
// same email exists.
func (s *Store) CreateUser(ctx context.Context, u sesame.User) error {
	roles, err := json.Marshal(u.Roles)
	if err != nil {
		return fmt.Errorf("sqlitestore: create user: %w", err)
	}
	_, err = s.stmts.createUser.ExecContext(ctx, u.ID, u.Email, string(roles), u.PasswordHash, toMS(u.CreatedAt), u.Disabled, u.CredentialGen)
	if isUniqueViolation(err, "users.email") {
		return sesame.ErrEmailTaken
	}
	if err != nil {
		return translate("create user", err)
	}
	return nil
}

// UserByID returns the user with that id, or sesame.ErrUserNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (sesame.User, error) {
	u, err := scanUser(s.stmts.userByID.QueryRowContext(ctx, id))
	if err != nil {
		return sesame.User{}, userErr("user by id", err)
	}
	return u, nil
}

// UserByEmail returns the user with that normalised email, or
// sesame.ErrUserNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (sesame.User, error) {
	u, err := scanUser(s.stmts.userByEmail.QueryRowContext(ctx, email))
	if err != nil {
		return sesame.User{}, userErr("user by email", err)
	}
	return u, nil
}

// ListUsers returns every user, oldest first.
func (s *Store) ListUsers(ctx context.Context) ([]sesame.User, error) {
	rows, err := s.stmts.listUsers.QueryContext(ctx)
	if err != nil {
		return nil, translate("list users", err)
	}
	defer rows.Close()
	users := []sesame.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, translate("list users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("list users", err)
	}
	return users, nil
}

// SetPasswordHash replaces the user's password hash and advances its
// CredentialGen, or returns sesame.ErrUserNotFound.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return s.updateUserStmt(ctx, "set password hash", s.stmts.setPassword, hash, userID)
}

// AdvanceCredentialGen advances the user's CredentialGen, or returns
// sesame.ErrUserNotFound.
func (s *Store) AdvanceCredentialGen(ctx context.Context, userID string) error {
	return s.updateUserStmt(ctx, "advance credential generation", s.stmts.advanceGen, userID)
}

// updateUserStmt runs a prepared update of one user, and returns
// sesame.ErrUserNotFound if it changed no row.
func (s *Store) updateUserStmt(ctx context.Context, op string, stmt *sql.Stmt, args ...any) error {
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return translate(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return translate(op, err)
	} else if n == 0 {
		return sesame.ErrUserNotFound
	}
	return nil
}

// SetRoles replaces the user's roles, or returns sesame.ErrUserNotFound.
func (s *Store) SetRoles(ctx context.Context, userID string, roles []string) error {
	js, err := json.Marshal(roles)
	if err != nil {
		return fmt.Errorf("sqlitestore: set roles: %w", err)
	}
	return s.updateUser(ctx, "set roles", `UPDATE users SET roles = ? WHERE id = ?`, string(js), userID)
}

// SetDisabled sets the user's disabled flag, or returns
// sesame.ErrUserNotFound.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	return s.updateUser(ctx, "set disabled", `UPDATE users SET disabled = ? WHERE id = ?`, disabled, userID)
}

// SetEmail replaces the user's email. It returns sesame.ErrUserNotFound,
// or sesame.ErrEmailTaken if another user has it.
func (s *Store) SetEmail(ctx context.Context, userID, email string) error {
	err := s.updateUser(ctx, "set email", `UPDATE users SET email = ? WHERE id = ?`, email, userID)
	if isUniqueViolation(err, "users.email") {
		return sesame.ErrEmailTaken
	}
	return err
}

// DeleteUser removes the user, or returns sesame.ErrUserNotFound.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	return s.updateUser(ctx, "delete user", `DELETE FROM users WHERE id = ?`, userID)
}

// updateUser runs a statement that changes one user's row (its last
// argument is the user's ID), and returns sesame.ErrUserNotFound if it
// changed none. These are rare administrative writes: not prepared.
func (s *Store) updateUser(ctx context.Context, op, query string, args ...any) error {
	res, err := s.writer.ExecContext(ctx, query, args...)
	if err != nil {
		if isUniqueViolation(err, "users.email") {
			return err // the caller translates it
		}
		return translate(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return translate(op, err)
	} else if n == 0 {
		return sesame.ErrUserNotFound
	}
	return nil

}

// ChangePasswordHash replaces the user's password hash old with next and
// advances its CredentialGen in one write, if the hash is still old; it
// reports whether it did, or returns sesame.ErrUserNotFound.
func (s *Store) ChangePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	return s.swapPasswordHash(ctx, "change password hash", s.stmts.swapAdvance, userID, old, next)
}

// UpgradePasswordHash replaces the user's password hash old with next, if
// it is still old, leaving CredentialGen as it is; it reports whether it
// did, or returns sesame.ErrUserNotFound.
func (s *Store) UpgradePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	return s.swapPasswordHash(ctx, "upgrade password hash", s.stmts.swapPassword, userID, old, next)
}

func (s *Store) swapPasswordHash(ctx context.Context, op string, stmt *sql.Stmt, userID, old, next string) (bool, error) {
	switch err := s.updateUserStmt(ctx, op, stmt, next, userID, old); {
	case err == nil:
		return true, nil
	case !errors.Is(err, sesame.ErrUserNotFound):
		return false, err
	}
	// No row changed: the hash moved on, or there is no such user.
	if _, err := s.UserByID(ctx, userID); err != nil {
		return false, err
	}
	return false, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (sesame.User, error) {
	var (
		u         sesame.User
		roles     string
		createdAt int64
	)
	if err := row.Scan(&u.ID, &u.Email, &roles, &u.PasswordHash, &createdAt, &u.Disabled, &u.CredentialGen); err != nil {
		return sesame.User{}, err
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return sesame.User{}, fmt.Errorf("user %s: roles: %w", u.ID, err)
	}
	u.CreatedAt = fromMS(createdAt)
	return u, nil
}

func userErr(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return sesame.ErrUserNotFound
	}
	return translate(op, err)
}
