package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
)

const keyColumns = `id, alg, public, private_sealed, created_at, retired_at`

// AddKey stores k as the current key and retires the current one
// (RetiredAt = k.CreatedAt, the store's clock if k.CreatedAt is zero), in
// one transaction; keys retired before keep their RetiredAt. It returns an
// error, and changes nothing, if a key with the same ID is stored.
//
// The transaction first locks the table against other AddKeys (readers go
// on): under READ COMMITTED two of them could otherwise each retire the key
// that was current when they started, and leave two current keys. A
// partial unique index refuses that state anyway.
func (s *Store) AddKey(ctx context.Context, k sesame.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL`, k.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, NULL)`,
			k.ID, k.Alg, nonNil(k.Public), nonNil(k.PrivateSealed), k.CreatedAt)
		return err
	})
	if uniqueViolation(err, "signing_keys_pkey") {
		return fmt.Errorf("pgstore: add key: key %q already stored", k.ID)
	}
	if err != nil {
		return translate("add key", err)
	}
	return nil
}

// nonNil returns b, or an empty slice if b is nil: pgx sends a nil []byte
// as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// SigningKeys returns every stored key, newest first: by CreatedAt, then the
// last added first.
func (s *Store) SigningKeys(ctx context.Context) ([]sesame.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, seq DESC`)
	if err != nil {
		return nil, translate("signing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sesame.SigningKey, error) {
		var (
			k       sesame.SigningKey
			retired *time.Time
		)
		if err := row.Scan(&k.ID, &k.Alg, &k.Public, &k.PrivateSealed, &k.CreatedAt, &retired); err != nil {
			return sesame.SigningKey{}, err
		}
		k.CreatedAt = k.CreatedAt.UTC()
		k.RetiredAt = utc(retired)
		return k, nil
	})
	if err != nil {
		return nil, translate("signing keys", err)
	}
	return keys, nil
}

// DeleteKeysRetiredBefore removes the keys retired before t and returns how
// many it removed. The current key has not been retired, so it stays.
func (s *Store) DeleteKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE retired_at < $1`, t)
	if err != nil {
		return 0, translate("delete retired keys", err)
	}
	return int(tag.RowsAffected()), nil
}
