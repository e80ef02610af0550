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

var _ sesame.LogVersioner = (*Store)(nil)

// LogVersion returns SQLite's data_version as seen by a connection of its
// own that never writes: it changes whenever any other connection, in this
// process or another, commits to the database. An unchanged version means
// RevocationsSince has nothing new, so a verifier can skip the query; the
// pragma reads only the WAL index, a fraction of the query's cost.
func (s *Store) LogVersion(ctx context.Context) (uint64, error) {
	s.versionMu.Lock()
	defer s.versionMu.Unlock()
	// Not cancellable once started (see Session): one pragma, no waiting.
	ctx = context.WithoutCancel(ctx)
	if s.versionConn == nil {
		c, err := s.reader.Conn(ctx)
		if err != nil {
			return 0, translate("log version", err)
		}
		s.versionConn = c
	}
	var v uint64
	if err := s.versionConn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		s.versionConn.Close()
		s.versionConn = nil
		return 0, translate("log version", err)
	}
	return v, nil
}
