package ingest

import (
	"fmt"
	"math/rand/v2"
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

// The open-addressing generations remember exactly what two generations of
// Go maps (the implementation they replaced, kept here as the model) do,
// over random remembers and lookups with keys met again and again.
func TestRecentMatchesMapGenerations(t *testing.T) {
	type model struct {
		half      int
		cur, prev map[recentKey]int64
	}
	for _, n := range []int{2, 8, 100, 1000} {
		r := newRecent(n)
		m := model{half: n / 2, cur: map[recentKey]int64{}}
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		for range 20 * n {
			msg := recentMsg(rng.IntN(3*n), rng.Int64N(100))
			k, _ := recentKeyOf(msg)
			if rng.IntN(2) == 0 {
				r.remember(msg)
				if old, ok := m.cur[k]; ok {
					m.cur[k] = max(old, msg.Sequence)
					continue
				}
				if len(m.cur) >= m.half {
					m.prev, m.cur = m.cur, map[recentKey]int64{}
				}
				m.cur[k] = msg.Sequence
				continue
			}
			want, wok := m.cur[k]
			if !wok {
				want, wok = m.prev[k]
			}
			if got, ok := r.stored(msg); ok != wok || got != want {
				t.Fatalf("n=%d: stored(%s) = %d, %v; the maps say %d, %v", n, msg.SID, got, ok, want, wok)
			}
		}
	}
}
