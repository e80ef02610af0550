package sqlitestore

import (
	"context"

	"github.com/sesameauth/sesame"
)

// RevocationsSince returns the logged revocations with Seq > after, in Seq
// order, at most limit of them (none if limit is not positive). It reads
// through the reader pool: a revocation committed by any process that has
// the file open is in the next answer.
func (s *Store) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	list := []sesame.Revocation{}
	if limit <= 0 {
		return list, nil
	}
	rows, err := s.stmts.revocations.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, translate("revocations since", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r  sesame.Revocation
			at int64
		)
		if err := rows.Scan(&r.Seq, &r.SessionID, &at); err != nil {
			return nil, translate("revocations since", err)
		}
		r.At = fromMS(at)
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("revocations since", err)
	}
	return list, nil
}
