package memstore

import (
	"bytes"
	"hash/maphash"
)

// index is a hash set of sessions keyed by a byte string inside each record
// (the secret hash, or the decoded ID). It exists because a Go map costs too
// much here: at a million sessions a map[[32]byte]*rec has just doubled and
// holds 2M slots of 40 bytes, about 82 bytes a session, where index holds
// only pointers, about 17 bytes a session.
//
// It is split into shards chosen by the top bits of the key's hash, each an
// open-addressing table with linear probing that grows and shrinks on its
// own, so no insert ever rehashes more than 1/256 of the sessions while
// holding the store's lock. Keys are hashed with a random seed, so keys that
// a test or a caller made up (not SHA-256 output) still spread evenly.
//
// index does no locking; the session store's lock guards it.
type index struct {
	seed   maphash.Seed
	key    func(*rec) []byte
	shards [indexShards]table
}

const (
	indexShards   = 256
	shardBits     = 8
	minTableSlots = 8
)

type table struct {
	slots []*rec // nil is an empty slot; len is 0 or a power of two
	n     int
}

func newIndex(key func(*rec) []byte) index {
	return index{seed: maphash.MakeSeed(), key: key}
}

func (x *index) hash(k []byte) uint64 { return maphash.Bytes(x.seed, k) }

func (x *index) shard(h uint64) *table { return &x.shards[h>>(64-shardBits)] }

// get returns the record whose key is k, or nil.
func (x *index) get(k []byte) *rec {
	h := x.hash(k)
	t := x.shard(h)
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		r := t.slots[i]
		if r == nil {
			return nil
		}
		if bytes.Equal(x.key(r), k) {
			return r
		}
	}
}

// put adds r, whose key must not be in the index yet.
func (x *index) put(r *rec) {
	h := x.hash(x.key(r))
	t := x.shard(h)
	if (t.n+1)*4 > len(t.slots)*3 { // keep the load at most 3/4
		x.resize(t, max(minTableSlots, 2*len(t.slots)))
	}
	t.insert(r, h)
}

func (t *table) insert(r *rec, h uint64) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = r
	t.n++
}

// del removes r, which must be in the index.
func (x *index) del(r *rec) {
	h := x.hash(x.key(r))
	t := x.shard(h)
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != r {
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move later members of the probe run into
	// the hole when their home slot is not between the hole and where they
	// are, so no search stops early at the hole and no tombstones pile up.
	for j := i; ; {
		j = (j + 1) & mask
		s := t.slots[j]
		if s == nil {
			break
		}
		home := x.hash(x.key(s)) & mask
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = nil
	t.n--
	if len(t.slots) > minTableSlots && t.n*8 < len(t.slots) {
		x.resize(t, len(t.slots)/2)
	}
}

func (x *index) resize(t *table, size int) {
	old := t.slots
	t.slots, t.n = make([]*rec, size), 0
	for _, r := range old {
		if r != nil {
			t.insert(r, x.hash(x.key(r)))
		}
	}
}

// appendShard appends the records of shard i that match keep to dst.
func (x *index) appendShard(dst []*rec, i int, keep func(*rec) bool) []*rec {
	for _, r := range x.shards[i].slots {
		if r != nil && keep(r) {
			dst = append(dst, r)
		}
	}
	return dst
}
