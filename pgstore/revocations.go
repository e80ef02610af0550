package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sesameauth/sesame"
)

// logRevocations appends a revocation of each of ids, in that order, at
// at, inside tx, which must then commit without taking further locks.
//
// A reader follows the log by asking for Seq > the last it saw, so the log
// must never show a Seq while a smaller one is still to appear. A sequence
// does not promise that: it hands out numbers in the order transactions
// ask, and they commit in any order. If transaction A takes seq 5 and B
// seq 6, and B commits first, a reader polling in between sees 6, asks for
// > 6 from then on, and never sees 5.
//
// So every insert into revocations happens under one transaction-scoped
// advisory lock, taken just before it. The lock is released only after the
// transaction's commit (or rollback) is complete and visible, so a
// transaction numbers its revocations only once every lower number is
// committed or gone for good: seq order is commit order. The lock is held
// from the insert to the commit, which makes revocations (logouts, ended
// sessions; rare next to lookups) one at a time across all nodes, and
// nothing else. It is the last lock the transaction takes, after its row
// locks, so it cannot close a cycle of waits.
//
// (A lock-free alternative is for readers to hold back rows whose
// transaction may still be in progress, e.g. with pg_snapshot_xmin and an
// xid8 column; it costs every reader a subtler query and the log a wider
// row, to save work that is tiny here.)
func logRevocations(ctx context.Context, tx pgx.Tx, ids []string, at time.Time) error {
	// One round trip: the batch runs its statements in order.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, revocationLock)
	b.Queue(`INSERT INTO revocations (session_id, at)
		SELECT id, $2 FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n`, ids, at)
	// Delivered to every listening node when, and only if, the
	// transaction commits, in commit order (see FollowRevocations).
	b.Queue(`SELECT pg_notify($1, '')`, revocationsChannel)
	return tx.SendBatch(ctx, b).Close()
}

// RevocationsSince returns the logged revocations with Seq > after, in Seq
// order, at most limit of them (none if limit is not positive). Seq order is
// commit order (see logRevocations), so a reader that asks again for Seq >
// the last it got, from any node, misses none.
func (s *Store) RevocationsSince(ctx context.Context, after int64, limit int) ([]sesame.Revocation, error) {
	if limit <= 0 {
		return []sesame.Revocation{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, session_id, at FROM revocations
		WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, translate("revocations since", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sesame.Revocation, error) {
		var r sesame.Revocation
		err := row.Scan(&r.Seq, &r.SessionID, &r.At)
		r.At = r.At.UTC()
		return r, err
	})
	if err != nil {
		return nil, translate("revocations since", err)
	}
	return list, nil
}
