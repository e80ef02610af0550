package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// runCredentials tests what a login in flight and a password change rely
// on: the credential generation, and the compare-and-swap of the hash.
func runCredentials(t *testing.T, newStore func(t *testing.T) sesame.UserStore) {
	// gen reads the user's credential generation and hash.
	gen := func(t *testing.T, st sesame.UserStore, id string) (int64, string) {
		t.Helper()
		u, err := st.UserByID(ctx(t), id)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		byEmail, err := st.UserByEmail(ctx(t), u.Email)
		if err != nil || byEmail.CredentialGen != u.CredentialGen {
			t.Fatalf("UserByEmail: CredentialGen %d, %v; UserByID says %d", byEmail.CredentialGen, err, u.CredentialGen)
		}
		return u.CredentialGen, u.PasswordHash
	}
	setup := func(t *testing.T) (sesame.UserStore, sesame.User, sesame.User) {
		st := newStore(t)
		u := newUser("ada@example.test", time.Now(), sesame.RoleUser)
		other := newUser("grace@example.test", time.Now(), sesame.RoleUser)
		mustCreateUser(t, st, u)
		mustCreateUser(t, st, other)
		return st, u, other
	}
	// untouched checks that the other user kept its hash and generation.
	untouched := func(t *testing.T, st sesame.UserStore, other sesame.User) {
		t.Helper()
		if g, h := gen(t, st, other.ID); g != 0 || h != other.PasswordHash {
			t.Errorf("another user: CredentialGen %d, hash %q; want 0 and unchanged", g, h)
		}
	}

	t.Run("CredentialGenAdvances", func(t *testing.T) {
		st, u, other := setup(t)
		if g, _ := gen(t, st, u.ID); g != 0 {
			t.Fatalf("new user's CredentialGen = %d, want 0", g)
		}
		prev := int64(0)
		for i := range 3 {
			if err := st.AdvanceCredentialGen(ctx(t), u.ID); err != nil {
				t.Fatalf("AdvanceCredentialGen: %v", err)
			}
			g, h := gen(t, st, u.ID)
			if g <= prev || h != u.PasswordHash {
				t.Fatalf("after advance %d: CredentialGen %d (was %d), hash %q; want it higher, hash unchanged", i+1, g, prev, h)
			}
			prev = g
		}
		if err := st.SetPasswordHash(ctx(t), u.ID, "$x$set"); err != nil {
			t.Fatalf("SetPasswordHash: %v", err)
		}
		if g, h := gen(t, st, u.ID); g <= prev || h != "$x$set" {
			t.Errorf("after SetPasswordHash: CredentialGen %d (was %d), hash %q; want it higher and the new hash", g, prev, h)
		}
		untouched(t, st, other)
		if err := st.AdvanceCredentialGen(ctx(t), sesame.NewID()); !errors.Is(err, sesame.ErrUserNotFound) {
			t.Errorf("AdvanceCredentialGen(unknown) = %v, want ErrUserNotFound", err)
		}
	})

	for _, tc := range []struct {
		name    string
		swap    func(st sesame.UserStore, id, old, next string) (bool, error)
		advance bool
	}{
		{"ChangePasswordHash", func(st sesame.UserStore, id, old, next string) (bool, error) {
			return st.ChangePasswordHash(ctx(t), id, old, next)
		}, true},
		{"UpgradePasswordHash", func(st sesame.UserStore, id, old, next string) (bool, error) {
			return st.UpgradePasswordHash(ctx(t), id, old, next)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, u, other := setup(t)
			ok, err := tc.swap(st, u.ID, u.PasswordHash, "$x$next")
			if err != nil || !ok {
				t.Fatalf("%s(current hash) = %t, %v; want true", tc.name, ok, err)
			}
			g, h := gen(t, st, u.ID)
			if h != "$x$next" || (g > 0) != tc.advance {
				t.Fatalf("after %s: hash %q, CredentialGen %d; want $x$next, advanced: %t", tc.name, h, g, tc.advance)
			}
			// The hash it was is no longer current: nothing changes.
			ok, err = tc.swap(st, u.ID, u.PasswordHash, "$x$undo")
			if err != nil || ok {
				t.Fatalf("%s(a stale hash) = %t, %v; want false", tc.name, ok, err)
			}
			if g2, h2 := gen(t, st, u.ID); h2 != "$x$next" || g2 != g {
				t.Errorf("after a refused %s: hash %q, CredentialGen %d; want $x$next and %d", tc.name, h2, g2, g)
			}
			untouched(t, st, other)
			if _, err := tc.swap(st, sesame.NewID(), u.PasswordHash, "$x$x"); !errors.Is(err, sesame.ErrUserNotFound) {
				t.Errorf("%s(unknown user) = %v, want ErrUserNotFound", tc.name, err)
			}
		})

		t.Run(tc.name+"Concurrent", func(t *testing.T) {
			st, u, _ := setup(t)
			const n = 16
			var wg sync.WaitGroup
			won := make(chan string, n)
			for i := range n {
				wg.Go(func() {
					next := fmt.Sprintf("$x$racer-%d", i)
					ok, err := tc.swap(st, u.ID, u.PasswordHash, next)
					if err != nil {
						t.Errorf("%s: %v", tc.name, err)
					}
					if ok {
						won <- next
					}
				})
			}
			wg.Wait()
			close(won)
			var winners []string
			for w := range won {
				winners = append(winners, w)
			}
			if len(winners) != 1 {
				t.Fatalf("%d racers swapped the same hash, want exactly 1: %q", len(winners), winners)
			}
			g, h := gen(t, st, u.ID)
			if h != winners[0] || (g > 0) != tc.advance {
				t.Errorf("after the race: hash %q, CredentialGen %d; want %q and one advance (%t)", h, g, winners[0], tc.advance)
			}
		})
	}
}
