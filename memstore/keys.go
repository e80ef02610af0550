package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
)

// keys is the KeyStore part of Store, in the order the keys were added.
type keys struct {
	mu   sync.RWMutex
	list []sesame.SigningKey
}

// copyKey returns k with its own byte slices, so that neither the caller
// nor the store can change the other's.
func copyKey(k sesame.SigningKey) sesame.SigningKey {
	k.Public = slices.Clone(k.Public)
	k.PrivateSealed = slices.Clone(k.PrivateSealed)
	return k
}

// AddKey stores k as the current key and retires the current one
// (RetiredAt = k.CreatedAt, the store's clock if k.CreatedAt is zero); keys
// retired before keep their RetiredAt. It returns an error, and changes
// nothing, if a key with the same ID is stored.
func (s *Store) AddKey(ctx context.Context, k sesame.SigningKey) error {
	k = copyKey(k)
	k.ID, k.Alg = strings.Clone(k.ID), strings.Clone(k.Alg)
	if k.CreatedAt.IsZero() {
		k.CreatedAt = fromNanos(s.now())
	}
	k.CreatedAt, k.RetiredAt = k.CreatedAt.Round(0), time.Time{}
	ks := &s.keys
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, o := range ks.list {
		if o.ID == k.ID {
			return fmt.Errorf("memstore: add key: key %q already stored", k.ID)
		}
	}
	for i := range ks.list {
		if ks.list[i].RetiredAt.IsZero() {
			ks.list[i].RetiredAt = k.CreatedAt
		}
	}
	ks.list = append(ks.list, k)
	return nil
}

// SigningKeys returns every stored key, newest first: by CreatedAt, then the
// last added first.
func (s *Store) SigningKeys(ctx context.Context) ([]sesame.SigningKey, error) {
	ks := &s.keys
	ks.mu.RLock()
	list := make([]sesame.SigningKey, len(ks.list))
	for i, k := range ks.list {
		list[len(list)-1-i] = copyKey(k)
	}
	ks.mu.RUnlock()
	slices.SortStableFunc(list, func(a, b sesame.SigningKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return list, nil
}

// DeleteKeysRetiredBefore removes the keys retired before t and returns how
// many it removed. The current key has not been retired, so it stays.
func (s *Store) DeleteKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	ks := &s.keys
	ks.mu.Lock()
	defer ks.mu.Unlock()
	n := len(ks.list)
	ks.list = slices.DeleteFunc(ks.list, func(k sesame.SigningKey) bool {
		return !k.RetiredAt.IsZero() && k.RetiredAt.Before(t)
	})
	return n - len(ks.list), nil
}
