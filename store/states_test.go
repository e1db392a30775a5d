package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/store"
)

// TestStates reads what reconcile compares: a record's sequence and
// creation time, a tombstone, nothing; a correction changes none of them.
// RemoveRecord removes a record only while it holds the sequence given.
func TestStates(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	rec, dead, redacted := msg(acc, 4, postflight.StatusDelivered, created), msg(acc, 2, postflight.StatusRead, created), msg(acc, 3, postflight.StatusFailed, created)
	wantOutcomes(t, write(t, s, rec, dead, redacted), postflight.Applied, postflight.Applied, postflight.Applied)
	if err := s.Delete(ctx, acc, dead.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, acc, redacted.SID, store.Patch{Redact: true}, nil); err != nil {
		t.Fatal(err)
	}
	none := store.Key{Account: acc, SID: sid("SM")}
	keys := []store.Key{{Account: acc, SID: rec.SID}, {Account: acc, SID: dead.SID}, {Account: acc, SID: redacted.SID}, none, none}
	states, err := s.States(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	got := map[store.Key]store.State{}
	for _, st := range states {
		got[st.Key] = st
	}
	if len(states) != 4 {
		t.Fatalf("%d states for 4 distinct keys: %+v", len(states), states)
	}
	if st := got[keys[0]]; !st.Found || st.Tombstone || st.Sequence != 4 || !st.DateCreated.Equal(created) {
		t.Errorf("record: %+v", st)
	}
	if st := got[keys[1]]; !st.Found || !st.Tombstone {
		t.Errorf("tombstone: %+v", st)
	}
	if st := got[keys[2]]; !st.Found || st.Tombstone || st.Sequence != 3 {
		t.Errorf("redacted record: %+v", st)
	}
	if st := got[none]; st.Found {
		t.Errorf("nothing stored: %+v", st)
	}

	for _, c := range []struct {
		k    store.Key
		seq  int64
		want bool
	}{
		{keys[0], 3, false}, // the sequence moved on: leave it
		{keys[1], 0, false}, // a tombstone stays
		{keys[0], 4, true},
		{keys[0], 4, false}, // gone already
	} {
		ok, err := s.RemoveRecord(ctx, c.k, c.seq)
		if err != nil || ok != c.want {
			t.Errorf("RemoveRecord(%s, %d) = %v, %v; want %v", c.k.SID, c.seq, ok, err, c.want)
		}
	}
	if states, err := s.States(ctx, keys[:2]); err != nil || len(states) != 2 || states[0].Found == states[1].Found {
		t.Errorf("after removal: %+v %v", states, err)
	}
}
