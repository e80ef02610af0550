package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
)

// RunKeys tests a sesame.KeyStore. newStore must return a fresh, empty
// store on every call.
//
// Beyond the comments in package sesame, it asks that AddKey retire only the
// current key: a key retired before keeps its RetiredAt, so that it ages out
// through DeleteKeysRetiredBefore however often keys are added.
func RunKeys(t *testing.T, newStore func(t *testing.T) sesame.KeyStore) {
	t.Run("Empty", func(t *testing.T) { testKeysEmpty(t, newStore(t)) })
	t.Run("AddAndRetire", func(t *testing.T) { testKeysAdd(t, newStore(t)) })
	t.Run("DeleteRetired", func(t *testing.T) { testKeysDeleteRetired(t, newStore(t)) })
	t.Run("DuplicateID", func(t *testing.T) { testKeysDuplicate(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testKeysConcurrent(t, newStore(t)) })
}

// newKey returns a key created at created, with random bytes standing in for
// the DER.
func newKey(created time.Time) sesame.SigningKey {
	pub, priv := make([]byte, 44), make([]byte, 76)
	rand.Read(pub)
	rand.Read(priv)
	return sesame.SigningKey{ID: sesame.NewID()[:16], Alg: "EdDSA", Public: pub, PrivateSealed: priv, CreatedAt: created}
}

func mustAddKey(t *testing.T, ks sesame.KeyStore, k sesame.SigningKey) {
	t.Helper()
	if err := ks.AddKey(ctx(t), k); err != nil {
		t.Fatalf("AddKey(%s): %v", k.ID, err)
	}
}

// retiredKey returns k as it reads once retired at at.
func retiredKey(k sesame.SigningKey, at time.Time) sesame.SigningKey {
	k.RetiredAt = at
	return k
}

// checkKeys checks that SigningKeys returns exactly want, in that order.
func checkKeys(t *testing.T, ks sesame.KeyStore, what string, want ...sesame.SigningKey) {
	t.Helper()
	got, err := ks.SigningKeys(ctx(t))
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	ids := func(list []sesame.SigningKey) (ids []string) {
		for _, k := range list {
			ids = append(ids, k.ID)
		}
		return ids
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("%s: SigningKeys = %q, want %q", what, ids(got), ids(want))
		return
	}
	for i, w := range want {
		g := got[i]
		var d []string
		if g.Alg != w.Alg {
			d = append(d, fmt.Sprintf("Alg %q, want %q", g.Alg, w.Alg))
		}
		if !bytes.Equal(g.Public, w.Public) || !bytes.Equal(g.PrivateSealed, w.PrivateSealed) {
			d = append(d, "key bytes differ")
		}
		if !sameTime(g.CreatedAt, w.CreatedAt) {
			d = append(d, fmt.Sprintf("CreatedAt %v, want %v", g.CreatedAt, w.CreatedAt))
		}
		if g.RetiredAt.IsZero() != w.RetiredAt.IsZero() || !sameTime(g.RetiredAt, w.RetiredAt) {
			d = append(d, fmt.Sprintf("RetiredAt %v, want %v", g.RetiredAt, w.RetiredAt))
		}
		if len(d) > 0 {
			t.Errorf("%s: key %s: %s", what, w.ID, strings.Join(d, "; "))
		}
	}
}

func testKeysEmpty(t *testing.T, ks sesame.KeyStore) {
	if list, err := ks.SigningKeys(ctx(t)); err != nil || len(list) != 0 {
		t.Errorf("SigningKeys of an empty store = %d keys, %v; want none, nil", len(list), err)
	}
	if n, err := ks.DeleteKeysRetiredBefore(ctx(t), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("DeleteKeysRetiredBefore in an empty store = %d, %v; want 0, nil", n, err)
	}
}

func testKeysAdd(t *testing.T, ks sesame.KeyStore) {
	base := time.Now().Add(-time.Hour)
	k1 := newKey(base)
	mustAddKey(t, ks, k1)
	checkKeys(t, ks, "one key", k1)

	k2 := newKey(base.Add(time.Minute + 1234567*time.Nanosecond))
	k2.Alg = "ES256"
	mustAddKey(t, ks, k2)
	checkKeys(t, ks, "two keys", k2, retiredKey(k1, k2.CreatedAt))

	k3 := newKey(base.Add(2 * time.Minute))
	mustAddKey(t, ks, k3)
	checkKeys(t, ks, "three keys", k3, retiredKey(k2, k3.CreatedAt), retiredKey(k1, k2.CreatedAt))

	// The store keeps its own bytes.
	list, _ := ks.SigningKeys(ctx(t))
	for _, k := range list {
		clear(k.Public)
		clear(k.PrivateSealed)
	}
	checkKeys(t, ks, "after the caller changed the bytes it got", k3, retiredKey(k2, k3.CreatedAt), retiredKey(k1, k2.CreatedAt))
}

func testKeysDeleteRetired(t *testing.T, ks sesame.KeyStore) {
	base := time.Now().Add(-time.Hour)
	k1, k2, k3 := newKey(base), newKey(base.Add(time.Minute)), newKey(base.Add(2*time.Minute))
	for _, k := range []sesame.SigningKey{k1, k2, k3} {
		mustAddKey(t, ks, k)
	}
	deleteBefore := func(at time.Time, want int) {
		t.Helper()
		if n, err := ks.DeleteKeysRetiredBefore(ctx(t), at); err != nil || n != want {
			t.Errorf("DeleteKeysRetiredBefore(%v) = %d, %v; want %d, nil", at, n, err, want)
		}
	}
	// k1 retired when k2 came, k2 when k3 came.
	deleteBefore(k2.CreatedAt, 0)
	checkKeys(t, ks, "after deleting none", k3, retiredKey(k2, k3.CreatedAt), retiredKey(k1, k2.CreatedAt))
	deleteBefore(k3.CreatedAt, 1)
	checkKeys(t, ks, "after deleting the oldest", k3, retiredKey(k2, k3.CreatedAt))
	deleteBefore(time.Now().Add(time.Hour), 1)
	checkKeys(t, ks, "after deleting every retired key", k3)
	deleteBefore(time.Now().Add(time.Hour), 0)
	checkKeys(t, ks, "the current key, never deleted", k3)
}

func testKeysDuplicate(t *testing.T, ks sesame.KeyStore) {
	base := time.Now().Add(-time.Hour)
	k1, k2 := newKey(base), newKey(base.Add(time.Minute))
	mustAddKey(t, ks, k1)
	mustAddKey(t, ks, k2)
	again := newKey(base.Add(2 * time.Minute))
	again.ID = k1.ID
	if err := ks.AddKey(ctx(t), again); err == nil {
		t.Error("AddKey with the ID of a stored key succeeded")
	}
	checkKeys(t, ks, "after a refused AddKey", k2, retiredKey(k1, k2.CreatedAt))
}

// testKeysConcurrent adds keys from many goroutines at once: in the end,
// exactly one key is current.
func testKeysConcurrent(t *testing.T, ks sesame.KeyStore) {
	const adders = 10
	base := time.Now().Add(-time.Hour)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range adders {
		k := newKey(base.Add(time.Duration(i) * time.Second))
		wg.Go(func() {
			<-start
			if err := ks.AddKey(ctx(t), k); err != nil {
				t.Errorf("AddKey: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	list, err := ks.SigningKeys(ctx(t))
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	current := 0
	for i, k := range list {
		if k.RetiredAt.IsZero() {
			current++
		}
		if i > 0 && k.CreatedAt.After(list[i-1].CreatedAt) {
			t.Errorf("SigningKeys not newest first: %v after %v", k.CreatedAt, list[i-1].CreatedAt)
		}
	}
	if len(list) != adders || current != 1 {
		t.Errorf("after %d concurrent AddKey: %d keys, %d of them current; want %d, 1", adders, len(list), current, adders)
	}
}
