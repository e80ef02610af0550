package redisstore

import "github.com/redis/rueidis"

// Client returns the store's client, for tests that flush or inspect Redis.
func (s *Store) Client() rueidis.Client { return s.client }

// Key names, for tests that look at what Redis holds.
var (
	RecordsKey = recordsKey
	FamilyKey  = familyKey
	HashBucket = hashBucket
	HashField  = hashField
	IDField    = idField
)
