package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// A key made by "sesame keys rotate" (or by another node) is read by every
// server within keyPollInterval and so verifies everywhere from then on,
// but signs only once it is keyPublishDelay old: no server signs with a key
// that another server cannot verify yet. Servers switch to it at that time
// (each sets a timer), so it signs everywhere within keySignsWithin, inside
// the 10 s API.md promises. A server that meets a token of a key it does not
// know (its last read failed, say) reads the keys again, at most once every
// unknownKIDReloadEvery.
const (
	keyPollInterval       = 2 * time.Second
	keyPublishDelay       = 5 * time.Second
	keySignsWithin        = keyPublishDelay + keyPollInterval
	unknownKIDReloadEvery = time.Second
)

// masterKey loads the key that seals signing keys at rest: from
// SESAME_MASTER_KEY (base64 of 32 bytes) if set, else from master.key in
// the data directory, created on first use with mode 0600.
func masterKey(dataDir string, getenv func(string) string) ([]byte, error) {
	if getenv("SESAME_MASTER_KEY") == "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
	}
	k, err := token.LoadMasterKey(filepath.Join(dataDir, "master.key"), getenv("SESAME_MASTER_KEY"))
	if err != nil {
		return nil, fmt.Errorf("master key (--data-dir or SESAME_MASTER_KEY): %w", err)
	}
	return k, nil
}

// masterKeyMismatch is the error of a node whose master key cannot open
// the signing keys stored in the database: the nodes were given different
// master keys (or this one made its own master.key), which no retry fixes.
func masterKeyMismatch(err error) error {
	return fmt.Errorf("signing keys (--db): this node's master key cannot open the database's signing keys: "+
		"they were sealed under another master key. Give every node that shares the database the same "+
		"SESAME_MASTER_KEY (or the same <data-dir>/master.key); see docs/OPERATIONS.md, \"Keys\" (%w)", err)
}

// successorKey derives the key that chains refresh tokens from the master
// key, so every node that shares the master key agrees on successors.
func successorKey(master []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, "sesame refresh-token successor v1", 32)
}

// loadKeySet reads the stored keys and builds the set for alg, making and
// storing a first key for alg if there is none.
func loadKeySet(ctx context.Context, ks sesame.KeyStore, master []byte, alg string, retain time.Duration, startup bool, log *slog.Logger) (*token.KeySet, error) {
	keys, err := ks.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	set, err := token.NewKeySet(keys, master, alg, time.Now(), retain, token.WithPublishDelay(keyPublishDelay))
	// No key for alg, or (at start-up, when --signing-alg may have been
	// switched back) only one that a rotation retired: make a fresh one.
	if errors.Is(err, token.ErrNoSigningKey) || (err == nil && startup && !newestKey(set).RetiredAt.IsZero()) {
		k, err := newSigningKey(ctx, ks, master, alg)
		if err != nil {
			return nil, err
		}
		log.Info("made a signing key", "kid", k.ID, "alg", alg)
		if keys, err = ks.SigningKeys(ctx); err != nil {
			return nil, err
		}
		return token.NewKeySet(keys, master, alg, time.Now(), retain, token.WithPublishDelay(keyPublishDelay))
	}
	return set, err
}

// newestKey is the key of set that signs last: the published next one, or
// else the current one.
func newestKey(set *token.KeySet) sesame.SigningKey {
	if k, _, ok := set.Next(); ok {
		return k
	}
	return set.Current()
}

// newSigningKey generates a key for alg, seals it and stores it as the
// current key.
func newSigningKey(ctx context.Context, ks sesame.KeyStore, master []byte, alg string) (sesame.SigningKey, error) {
	priv, k, err := token.GenerateKey(alg, time.Now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return k, err
	}
	if k, err = token.SealKey(master, k, priv); err != nil {
		return k, err
	}
	return k, ks.AddKey(ctx, k)
}

// keyLoader keeps a server's key set current: it re-reads the stored keys
// every keyPollInterval and when a published key is due to sign, prunes
// keys no token can still need, and reloads for a token of an unknown kid.
type keyLoader struct {
	store  sesame.KeyStore
	holder *token.Keys
	master []byte
	alg    string
	retain time.Duration
	log    *slog.Logger

	mu         sync.Mutex // one reload at a time
	lastForKID time.Time  // the last reload asked for by an unknown kid
}

// reload reads the keys and installs the new set. The caller holds l.mu.
func (l *keyLoader) reload(ctx context.Context) (*token.KeySet, error) {
	set, err := loadKeySet(ctx, l.store, l.master, l.alg, l.retain, false, l.log)
	if err != nil {
		if errors.Is(err, token.ErrSealedKey) {
			err = masterKeyMismatch(err)
		}
		return nil, err
	}
	old := l.holder.Load()
	if old.Current().ID != set.Current().ID {
		l.log.Info("signing with a new key", "kid", set.Current().ID, "previous", old.Current().ID)
	}
	if k, at, ok := set.Next(); ok && newestKey(old).ID != k.ID {
		l.log.Info("published a new key", "kid", k.ID, "signs_from", at)
	}
	l.holder.Store(set)
	return set, nil
}

// unknownKID is the verifier's token.WithUnknownKID function: it reloads
// the keys, unless a reload for an unknown kid ran within the last
// unknownKIDReloadEvery, and reports whether kid is known now.
func (l *keyLoader) unknownKID(ctx context.Context, kid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Contains(l.holder.Load().KIDs(), kid) {
		return true // another request reloaded meanwhile
	}
	if time.Since(l.lastForKID) < unknownKIDReloadEvery {
		return false
	}
	l.lastForKID = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	set, err := l.reload(ctx)
	if err != nil {
		l.log.Warn("reloading signing keys for an unknown kid", "err", err)
		return false
	}
	return slices.Contains(set.KIDs(), kid)
}

// run reloads every keyPollInterval, and at the moment a published key is
// due to sign, until ctx ends.
func (l *keyLoader) run(ctx context.Context) {
	for {
		wait := keyPollInterval
		if _, at, ok := l.holder.Load().Next(); ok {
			wait = min(wait, max(time.Until(at), 0)+10*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		l.mu.Lock()
		set, err := l.reload(ctx)
		l.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("reloading signing keys", "err", err)
			}
			continue
		}
		// Never prune the key this node signs with: after "keys rotate
		// --signing-alg OTHER" it is retired, but this node (configured for
		// its own algorithm) keeps signing with it until restarted.
		cutoff := time.Now().Add(-l.retain)
		if cur := set.Current(); !cur.RetiredAt.IsZero() && !cur.RetiredAt.After(cutoff) {
			cutoff = cur.RetiredAt.Add(-time.Millisecond)
		}
		if _, err := l.store.DeleteKeysRetiredBefore(ctx, cutoff); err != nil && ctx.Err() == nil {
			l.log.Warn("pruning signing keys", "err", err)
		}
	}
}

// keysRotate is "sesame keys rotate": a new current key for the algorithm
// of the current one (or --signing-alg).
func keysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var alg string
	var dataDir string
	st, err := dataCommand(ctx, "keys rotate", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&alg, "signing-alg", "", "algorithm of the new key: EdDSA, ES256 or RS256 (default: that of the current key, else EdDSA)")
	}, &dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	switch alg {
	case "", "EdDSA", "ES256", "RS256":
	default:
		return usagef("keys rotate: --signing-alg: want EdDSA, ES256 or RS256, got %q", alg)
	}
	master, err := masterKey(dataDir, getenv)
	if err != nil {
		return err
	}
	keys, err := st.keys.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	if alg == "" {
		alg = "EdDSA"
		for _, k := range keys {
			if k.RetiredAt.IsZero() {
				alg = k.Alg
				break
			}
		}
	}
	// A key sealed under another master key than the servers' would stop
	// them all from signing: refuse unless this master key opens the
	// current one.
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			if _, err := token.NewKeySet(keys, master, k.Alg, time.Now(), 0); errors.Is(err, token.ErrSealedKey) {
				return masterKeyMismatch(err)
			}
		}
	}
	k, err := newSigningKey(ctx, st.keys, master, alg)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	fmt.Fprintf(stdout, "new signing key %s (%s); running servers sign with it within %s\n", k.ID, k.Alg, keySignsWithin)
	return nil
}
