package store

import (
	"context"
	"time"
)

// What the tests of this folder read of a Store that nothing else needs.

// RestampStatus is the state of an account's pending re-stamp job.
type RestampStatus struct {
	Days  int       // the retention being applied
	Since time.Time // when the retention changed
	Upto  string    // index sort key reached in every shard
	Done  int64     // items re-stamped so far
}

// RestampStatus returns the account's pending re-stamp job, if any (ok is
// false once the job is done or if there never was one).
func (s *Store) RestampStatus(ctx context.Context, account string) (st RestampStatus, ok bool, err error) {
	p, ok, err := s.restamp.read(ctx, account)
	if !ok || err != nil {
		return st, false, err
	}
	j := p.job
	return RestampStatus{Days: j.Days, Since: time.UnixMilli(j.Since).UTC(), Upto: j.Upto, Done: j.Done}, true, nil
}

// TTLGrace is how long a record stays on disk past its retention.
const TTLGrace = ttlGrace
