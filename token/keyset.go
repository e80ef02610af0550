package token

import (
	"cmp"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sesameauth/sesame"
)

// ErrNoSigningKey is returned by NewKeySet when no stored key has the
// configured algorithm: the caller generates one (GenerateKey, SealKey),
// stores it, and builds the set again.
var ErrNoSigningKey = errors.New("token: no signing key for the algorithm")

// KeySet is an immutable snapshot of the signing keys for one algorithm:
// the current key, which signs, and every public key that may have signed
// a token that is still live, which verify and make up the JWKS. Build a
// new one whenever the stored keys change and install it with Keys.Store.
type KeySet struct {
	alg     string
	method  jwt.SigningMethod
	current sesame.SigningKey
	signer  crypto.Signer
	next    sesame.SigningKey // published, signing from nextAt; zero if none
	nextAt  time.Time
	public  map[string]crypto.PublicKey // by kid
	kids    []string                    // current first, then newest first
	jwks    []byte
}

// KeySetOption configures NewKeySet.
type KeySetOption func(*keySetOptions)

type keySetOptions struct{ publishDelay time.Duration }

// WithPublishDelay makes a key sign only once it is d old (by its
// CreatedAt), while it verifies, and is in the JWKS, from the moment it is
// stored. Servers that share keys re-read them within some interval; with
// d longer than that, every server can verify a new key's tokens before
// any server signs with it, so a rotation never makes one server's fresh
// tokens unknown to another. The default is 0: the newest key signs at
// once.
func WithPublishDelay(d time.Duration) KeySetOption {
	return func(o *keySetOptions) { o.publishDelay = max(d, 0) }
}

// NewKeySet builds the KeySet for alg from every stored key (as
// KeyStore.SigningKeys returns them, in any order). Keys of other
// algorithms are ignored. The current key is the newest (by CreatedAt) of
// alg, or with WithPublishDelay the newest that is old enough to sign (the
// oldest key if none is: the very first key signs at once), and a newer
// one is published and becomes current at its time (see Next); its private
// key is opened with master, and so is the next one's. The
// public set is the current key plus every key of alg retired no more than
// retain before now. retain must cover the life of every token a key may
// have signed: the access-token TTL plus the verifiers' leeway plus the
// time other servers may still sign with a key after it was retired (their
// key-poll interval). It returns ErrNoSigningKey if no key has alg, and an
// error if a key of alg cannot be parsed or the current one cannot be
// opened.
func NewKeySet(keys []sesame.SigningKey, master []byte, alg string, now time.Time, retain time.Duration, opts ...KeySetOption) (*KeySet, error) {
	var o keySetOptions
	for _, opt := range opts {
		opt(&o)
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil || (alg != EdDSA && alg != ES256 && alg != RS256) {
		return nil, fmt.Errorf("token: unsupported signing algorithm %q", alg)
	}
	var mine []sesame.SigningKey
	for _, k := range keys {
		if k.Alg == alg {
			mine = append(mine, k)
		}
	}
	if len(mine) == 0 {
		return nil, ErrNoSigningKey
	}
	// Newest first; ties broken by kid so that every server picks the same.
	slices.SortFunc(mine, func(a, b sesame.SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	cur := len(mine) - 1
	for i, k := range mine {
		if !k.CreatedAt.After(now.Add(-o.publishDelay)) {
			cur = i
			break
		}
	}
	ks := &KeySet{alg: alg, method: method, current: mine[cur], public: make(map[string]crypto.PublicKey)}
	signer, err := openKey(master, ks.current)
	if err != nil {
		return nil, err
	}
	ks.signer = signer
	if cur > 0 {
		// Opened now so that a key this master key cannot open is found
		// while the current one still signs, not when it would take over.
		if _, err := openKey(master, mine[0]); err != nil {
			return nil, err
		}
		ks.next, ks.nextAt = mine[0], mine[0].CreatedAt.Add(o.publishDelay)
	}
	// The current key first, then the others newest first.
	mine = append([]sesame.SigningKey{mine[cur]}, slices.Delete(slices.Clone(mine), cur, cur+1)...)

	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for i, k := range mine {
		retired := i > 0 && !k.RetiredAt.IsZero() && now.After(k.RetiredAt.Add(retain)) && k.ID != ks.next.ID
		if retired {
			continue
		}
		if k.ID == "" {
			return nil, errors.New("token: signing key with an empty kid")
		}
		if _, dup := ks.public[k.ID]; dup {
			return nil, fmt.Errorf("token: two signing keys with kid %q", k.ID)
		}
		pub, err := parsePublic(k)
		if err != nil {
			return nil, err
		}
		j, err := publicJWK(pub)
		if err != nil {
			return nil, err
		}
		j.Use, j.Alg, j.Kid = "sig", alg, k.ID
		set.Keys = append(set.Keys, j)
		ks.public[k.ID] = pub
		ks.kids = append(ks.kids, k.ID)
	}
	ks.jwks, err = json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: render JWKS: %w", err)
	}
	return ks, nil
}

// Alg returns the algorithm every key of the set uses.
func (ks *KeySet) Alg() string { return ks.alg }

// Current returns the key that signs new tokens.
func (ks *KeySet) Current() sesame.SigningKey { return ks.current }

// Next returns the key that will take over signing and when, if a newer
// key than the current one is published (WithPublishDelay). The set does
// not switch by itself: build a new one at that time.
func (ks *KeySet) Next() (k sesame.SigningKey, at time.Time, ok bool) {
	return ks.next, ks.nextAt, ks.next.ID != ""
}

// KIDs returns the kids of the keys that verify, current first.
func (ks *KeySet) KIDs() []string { return slices.Clone(ks.kids) }

// JWKS returns the RFC 7517 JWK Set of the keys that verify, current first,
// each with kty, its key members (crv, x, y or n, e), kid, alg and use
// "sig". The bytes are rendered once by NewKeySet and shared: the caller
// must not modify them.
func (ks *KeySet) JWKS() []byte { return ks.jwks }

// publicKey returns the verifying key named kid.
func (ks *KeySet) publicKey(kid string) (crypto.PublicKey, bool) {
	pub, ok := ks.public[kid]
	return pub, ok
}

// Keys holds the KeySet in use and lets a poller replace it while requests
// sign and verify with it. The zero Keys holds nothing: use NewKeys.
type Keys struct {
	set atomic.Pointer[KeySet]
}

// NewKeys returns a Keys holding ks, which must not be nil.
func NewKeys(ks *KeySet) *Keys {
	k := new(Keys)
	k.Store(ks)
	return k
}

// Load returns the KeySet in use. It costs one atomic load.
func (k *Keys) Load() *KeySet { return k.set.Load() }

// Store makes ks the KeySet in use for every later Load. Tokens being
// verified at that moment finish with the set they started with. Store
// panics if ks is nil. A set of another algorithm than the one a Verifier
// was made with makes that Verifier refuse every token.
func (k *Keys) Store(ks *KeySet) {
	if ks == nil {
		panic("token: Keys.Store(nil)")
	}
	k.set.Store(ks)
}
