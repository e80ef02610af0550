package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunUsers tests a sesame.UserStore. newStore must return a fresh, empty
// store on every call.
func RunUsers(t *testing.T, newStore func(t *testing.T) sesame.UserStore) {
	t.Run("Found", func(t *testing.T) {
		st := newStore(t)
		want := newUser("ada@example.test", time.Now(), sesame.RoleUser, sesame.RoleAdmin)
		mustCreateUser(t, st, want)
		got, err := st.UserByID(ctx(t), want.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "UserByID", got, want)
		got, err = st.UserByEmail(ctx(t), want.Email)
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		checkUser(t, "UserByEmail", got, want)
	})

	t.Run("Missing", func(t *testing.T) {
		st := newStore(t)
		mustCreateUser(t, st, newUser("ada@example.test", time.Now(), sesame.RoleUser))
		if _, err := st.UserByID(ctx(t), sesame.NewID()); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("UserByID(unknown) error = %v, want ErrUserNotFound", err)
		}
		if _, err := st.UserByEmail(ctx(t), "grace@example.test"); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("UserByEmail(unknown) error = %v, want ErrUserNotFound", err)
		}
		if err := st.SetPasswordHash(ctx(t), sesame.NewID(), "$x$new"); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("SetPasswordHash(unknown) error = %v, want ErrUserNotFound", err)
		}
	})

	t.Run("EmailTaken", func(t *testing.T) {
		st := newStore(t)
		first := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		mustCreateUser(t, st, first)
		second := newUser(first.Email, time.Now().Add(time.Second), sesame.RoleUser, sesame.RoleAdmin)
		second.PasswordHash = "$x$second"
		if err := st.CreateUser(ctx(t), second); !errors.Is(err, sesame.ErrEmailTaken) {
			t.Fatalf("CreateUser(same email) error = %v, want ErrEmailTaken", err)
		}
		got, err := st.UserByEmail(ctx(t), first.Email)
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		checkUser(t, "UserByEmail after a refused CreateUser", got, first)
		if _, err := st.UserByID(ctx(t), second.ID); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("UserByID(refused user) error = %v, want ErrUserNotFound", err)
		}
		list, err := st.ListUsers(ctx(t))
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(list) != 1 {
			t.Errorf("ListUsers returned %d users, want 1", len(list))
		}
	})

	t.Run("ListOldestFirst", func(t *testing.T) {
		st := newStore(t)
		list, err := st.ListUsers(ctx(t))
		if err != nil || len(list) != 0 {
			t.Fatalf("ListUsers on an empty store = %d users, %v; want none, nil", len(list), err)
		}
		base := time.Now().Add(-time.Hour)
		a := newUser("a@example.test", base, sesame.RoleUser)
		b := newUser("b@example.test", base.Add(time.Second), sesame.RoleUser)
		c := newUser("c@example.test", base.Add(2*time.Second), sesame.RoleUser)
		for _, u := range []sesame.User{b, c, a} { // not in CreatedAt order
			mustCreateUser(t, st, u)
		}
		list, err = st.ListUsers(ctx(t))
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		want := []sesame.User{a, b, c}
		if len(list) != len(want) {
			t.Fatalf("ListUsers returned %d users, want %d", len(list), len(want))
		}
		for i := range want {
			checkUser(t, "ListUsers", list[i], want[i])
		}
	})

	t.Run("Roles", func(t *testing.T) {
		st := newStore(t)
		cases := [][]string{
			nil,
			{},
			{sesame.RoleUser},
			{sesame.RoleUser, sesame.RoleAdmin},
		}
		var users []sesame.User
		for i, roles := range cases {
			u := newUser(string(rune('a'+i))+"@example.test", time.Now(), roles...)
			mustCreateUser(t, st, u)
			users = append(users, u)
		}
		for _, want := range users {
			got, err := st.UserByID(ctx(t), want.ID)
			if err != nil {
				t.Fatalf("UserByID: %v", err)
			}
			checkUser(t, "UserByID", got, want)
		}

		// The store keeps its own copy of the roles.
		u := newUser("z@example.test", time.Now(), sesame.RoleUser, sesame.RoleAdmin)
		if err := st.CreateUser(ctx(t), u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		u.Roles[0] = "changed by the caller after CreateUser"
		got, err := st.UserByID(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		if !slices.Contains(got.Roles, sesame.RoleUser) {
			t.Errorf("roles after the caller changed its slice = %q, want them unchanged", got.Roles)
		}
		got.Roles[0] = "changed by the caller after UserByID"
		again, err := st.UserByID(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		if !slices.Contains(again.Roles, sesame.RoleUser) {
			t.Errorf("roles after the caller changed a returned slice = %q, want them unchanged", again.Roles)
		}
	})

	t.Run("SetPasswordHash", func(t *testing.T) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		other := newUser("grace@example.test", time.Now(), sesame.RoleUser)
		mustCreateUser(t, st, u)
		mustCreateUser(t, st, other)
		if err := st.SetPasswordHash(ctx(t), u.ID, "$x$new"); err != nil {
			t.Fatalf("SetPasswordHash: %v", err)
		}
		u.PasswordHash = "$x$new"
		got, err := st.UserByEmail(ctx(t), u.Email)
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		checkUser(t, "UserByEmail after SetPasswordHash", got, u)
		got, err = st.UserByID(ctx(t), other.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "another user after SetPasswordHash", got, other)
	})

	runUserAdmin(t, newStore)
}

// runUserAdmin tests the administrative changes of a UserStore: roles,
// the disabled flag, email, and deletion.
func runUserAdmin(t *testing.T, newStore func(t *testing.T) sesame.UserStore) {
	t.Run("CreateDisabled", func(t *testing.T) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		u.Disabled = true
		mustCreateUser(t, st, u)
		got, err := st.UserByID(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "UserByID of a user created disabled", got, u)
	})

	t.Run("SetDisabled", func(t *testing.T) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		other := newUser("grace@example.test", time.Now(), sesame.RoleUser)
		mustCreateUser(t, st, u)
		mustCreateUser(t, st, other)
		for _, d := range []bool{true, true, false, true} {
			if err := st.SetDisabled(ctx(t), u.ID, d); err != nil {
				t.Fatalf("SetDisabled(%v): %v", d, err)
			}
			u.Disabled = d
			got, err := st.UserByEmail(ctx(t), u.Email)
			if err != nil {
				t.Fatalf("UserByEmail: %v", err)
			}
			checkUser(t, "UserByEmail after SetDisabled", got, u)
			list, err := st.ListUsers(ctx(t))
			if err != nil || len(list) != 2 {
				t.Fatalf("ListUsers = %d users, %v; want 2", len(list), err)
			}
			checkUser(t, "ListUsers after SetDisabled", list[0], u)
		}
		got, err := st.UserByID(ctx(t), other.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "another user after SetDisabled", got, other)
		if err := st.SetDisabled(ctx(t), sesame.NewID(), true); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("SetDisabled(unknown) error = %v, want ErrUserNotFound", err)
		}
	})

	t.Run("SetRoles", func(t *testing.T) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser, sesame.RoleAdmin)
		other := newUser("grace@example.test", time.Now(), sesame.RoleUser, sesame.RoleAdmin)
		mustCreateUser(t, st, u)
		mustCreateUser(t, st, other)
		for _, roles := range [][]string{{sesame.RoleUser}, {sesame.RoleUser, "auditor", "ops"}, nil} {
			in := slices.Clone(roles)
			if err := st.SetRoles(ctx(t), u.ID, in); err != nil {
				t.Fatalf("SetRoles(%q): %v", roles, err)
			}
			if len(in) > 0 {
				in[0] = "changed by the caller after SetRoles"
			}
			u.Roles = roles
			got, err := st.UserByID(ctx(t), u.ID)
			if err != nil {
				t.Fatalf("UserByID: %v", err)
			}
			checkUser(t, "UserByID after SetRoles", got, u)
		}
		got, err := st.UserByID(ctx(t), other.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "another user after SetRoles", got, other)
		if err := st.SetRoles(ctx(t), sesame.NewID(), []string{sesame.RoleUser}); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("SetRoles(unknown) error = %v, want ErrUserNotFound", err)
		}
	})

	t.Run("SetEmail", func(t *testing.T) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		other := newUser("grace@example.test", time.Now(), sesame.RoleUser)
		mustCreateUser(t, st, u)
		mustCreateUser(t, st, other)
		if err := st.SetEmail(ctx(t), u.ID, other.Email); !errors.Is(err, sesame.ErrEmailTaken) {
			t.Fatalf("SetEmail(another user's email) error = %v, want ErrEmailTaken", err)
		}
		got, err := st.UserByID(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "UserByID after a refused SetEmail", got, u)
		if err := st.SetEmail(ctx(t), u.ID, u.Email); err != nil {
			t.Errorf("SetEmail(the same email) error = %v, want nil", err)
		}
		old := u.Email
		if err := st.SetEmail(ctx(t), u.ID, "lovelace@example.test"); err != nil {
			t.Fatalf("SetEmail: %v", err)
		}
		u.Email = "lovelace@example.test"
		got, err = st.UserByEmail(ctx(t), u.Email)
		if err != nil {
			t.Fatalf("UserByEmail(new email): %v", err)
		}
		checkUser(t, "UserByEmail(new email)", got, u)
		if _, err := st.UserByEmail(ctx(t), old); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("UserByEmail(old email) error = %v, want ErrUserNotFound", err)
		}
		// The old email is free for someone else.
		mustCreateUser(t, st, newUser(old, time.Now(), sesame.RoleUser))
		if err := st.SetEmail(ctx(t), sesame.NewID(), "x@example.test"); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("SetEmail(unknown) error = %v, want ErrUserNotFound", err)
		}
	})

	t.Run("DeleteUser", func(t *testing.T) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		other := newUser("grace@example.test", time.Now().Add(time.Second), sesame.RoleUser)
		mustCreateUser(t, st, u)
		mustCreateUser(t, st, other)
		if err := st.DeleteUser(ctx(t), u.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		if _, err := st.UserByID(ctx(t), u.ID); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("UserByID(deleted) error = %v, want ErrUserNotFound", err)
		}
		if _, err := st.UserByEmail(ctx(t), u.Email); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("UserByEmail(deleted) error = %v, want ErrUserNotFound", err)
		}
		list, err := st.ListUsers(ctx(t))
		if err != nil || len(list) != 1 {
			t.Fatalf("ListUsers after DeleteUser = %d users, %v; want 1", len(list), err)
		}
		checkUser(t, "ListUsers after DeleteUser", list[0], other)
		if err := st.DeleteUser(ctx(t), u.ID); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("DeleteUser(again) error = %v, want ErrUserNotFound", err)
		}
		if err := st.SetPasswordHash(ctx(t), u.ID, "$x$new"); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("SetPasswordHash(deleted) error = %v, want ErrUserNotFound", err)
		}
		// The email is free again, for a new account.
		again := newUser(u.Email, time.Now(), sesame.RoleUser)
		mustCreateUser(t, st, again)
		got, err := st.UserByEmail(ctx(t), u.Email)
		if err != nil {
			t.Fatalf("UserByEmail(re-registered): %v", err)
		}
		checkUser(t, "UserByEmail(re-registered)", got, again)
	})
	runCredentials(t, newStore)
}

func newUser(email string, created time.Time, roles ...string) sesame.User {
	return sesame.User{
		ID:           sesame.NewID(),
		Email:        email,
		Roles:        roles,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		CreatedAt:    created,
	}
}

func mustCreateUser(t *testing.T, st sesame.UserStore, u sesame.User) {
	t.Helper()
	u.Roles = slices.Clone(u.Roles) // only the Roles test shares a slice with the store
	if err := st.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.Email, err)
	}
}

// checkUser compares users field by field. Roles are compared as sets (a
// store may keep them in any order), with nil equal to empty.
func checkUser(t *testing.T, what string, got, want sesame.User) {
	t.Helper()
	gr, wr := slices.Sorted(slices.Values(got.Roles)), slices.Sorted(slices.Values(want.Roles))
	if got.ID != want.ID || got.Email != want.Email || got.PasswordHash != want.PasswordHash ||
		!slices.Equal(gr, wr) || !sameTime(got.CreatedAt, want.CreatedAt) || got.Disabled != want.Disabled {
		t.Errorf("%s = %+v\nwant %+v", what, got, want)
	}
}
