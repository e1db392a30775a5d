package ingest

import (
	"fmt"
	"testing"

	"github.com/postflight/postflight"
)

func recentMsg(i int, seq int64) *postflight.Message {
	return &postflight.Message{
		SID:        fmt.Sprintf("SM%032x", i),
		AccountSID: fmt.Sprintf("AC%032x", i%7),
		Sequence:   seq,
	}
}

func TestRecentKeepsTheHighestSequenceWithinItsBound(t *testing.T) {
	r := newRecent(8)
	a := recentMsg(1, 5)
	r.remember(a)
	r.remember(recentMsg(1, 3)) // a lower bound never goes down
	if seq, ok := r.stored(a); !ok || seq != 5 {
		t.Fatalf("stored(a) = %d, %v; want 5, true", seq, ok)
	}
	other := *a
	other.AccountSID = fmt.Sprintf("AC%032x", 99) // same SID, another account: another item
	if _, ok := r.stored(&other); ok {
		t.Fatal("a message of another account is remembered")
	}
	mm := *a
	mm.SID = "MM" + a.SID[2:]
	if _, ok := r.stored(&mm); ok {
		t.Fatal("an MM SID is taken for the SM SID with the same digits")
	}
	for i := range 1000 {
		r.remember(recentMsg(100+i, 1))
		if n := r.len(); n > 8 {
			t.Fatalf("after %d messages the memory holds %d, bound 8", i+1, n)
		}
	}
	if _, ok := r.stored(recentMsg(100+999, 1)); !ok {
		t.Fatal("the last message remembered is forgotten")
	}
	if _, ok := r.stored(a); ok {
		t.Fatal("the first message is still remembered after 1000 others")
	}
	for _, bad := range []*postflight.Message{
		{SID: "SMnothex", AccountSID: "AC", Sequence: 1},
		{SID: "SM0000000000000000000000000000000g", AccountSID: a.AccountSID, Sequence: 1},
		{SID: a.SID, AccountSID: "AC000000000000000000000000000000A0", Sequence: 1},
	} {
		r.remember(bad)
		if _, ok := r.stored(bad); ok {
			t.Fatalf("a malformed SID is remembered: %s %s", bad.SID, bad.AccountSID)
		}
	}
	none := newRecent(-1)
	none.remember(a)
	if _, ok := none.stored(a); ok {
		t.Fatal("a disabled memory remembers")
	}
}
