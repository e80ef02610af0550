package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sesameauth/sesame"
)

// AddKey stores k as the current key and retires the current one
// (RetiredAt = k.CreatedAt, the store's clock if k.CreatedAt is zero), in
// one transaction; keys retired before keep their RetiredAt. It returns an
// error, and changes nothing, if a key with the same ID is stored.
func (s *Store) AddKey(ctx context.Context, k sesame.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = fromMS(s.nowMS())
	}
	err := s.addKey(ctx, k)
	if isUniqueViolation(err, "signing_keys.id") {
		return fmt.Errorf("sqlitestore: add key: key %q already stored", k.ID)
	}
	if err != nil {
		return translate("add key", err)
	}
	return nil
}

func (s *Store) addKey(ctx context.Context, k sesame.SigningKey) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	created := toMS(k.CreatedAt)
	if _, err := tx.StmtContext(ctx, s.stmts.retireKeys).ExecContext(ctx, created); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.stmts.insertKey).ExecContext(ctx,
		k.ID, k.Alg, nonNil(k.Public), nonNil(k.PrivateSealed), created); err != nil {
		return err
	}
	return tx.Commit()
}

// nonNil returns b, or an empty slice if b is nil: the driver stores a nil
// []byte as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// SigningKeys returns every stored key, newest first: by CreatedAt, then the
// last added first.
func (s *Store) SigningKeys(ctx context.Context) ([]sesame.SigningKey, error) {
	rows, err := s.stmts.signingKeys.QueryContext(ctx)
	if err != nil {
		return nil, translate("signing keys", err)
	}
	defer rows.Close()
	keys := []sesame.SigningKey{}
	for rows.Next() {
		var (
			k       sesame.SigningKey
			created int64
			retired sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Alg, &k.Public, &k.PrivateSealed, &created, &retired); err != nil {
			return nil, translate("signing keys", err)
		}
		k.CreatedAt = fromMS(created)
		if retired.Valid {
			k.RetiredAt = fromMS(retired.Int64)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("signing keys", err)
	}
	return keys, nil
}

// DeleteKeysRetiredBefore removes the keys retired before t (to the
// millisecond) and returns how many it removed. The current key has not
// been retired, so it stays.
func (s *Store) DeleteKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.stmts.deleteRetiredKeys.ExecContext(ctx, toMS(t))
	if err != nil {
		return 0, translate("delete retired keys", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, translate("delete retired keys", err)
	}
	return int(n), nil
}
