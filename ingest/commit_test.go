package ingest

import (
	"math/rand/v2"
	"testing"
)

func TestTrackerCommitsOnlyTheContiguousPrefix(t *testing.T) {
	var marked []int64
	tr := newTracker(func(next int64) { marked = append(marked, next) })
	for _, o := range []int64{10, 11, 13, 14} { // 12 is a gap (compacted away)
		tr.add(o)
	}
	tr.finish(11)
	if len(marked) != 0 {
		t.Fatalf("marked %v before 10 was done", marked)
	}
	tr.finish(10)
	tr.finish(14)
	if got := marked[len(marked)-1]; got != 12 {
		t.Fatalf("marked %d, want 12", got)
	}
	select {
	case <-tr.drained():
		t.Fatal("drained with 13 open")
	default:
	}
	tr.finish(13)
	tr.finish(13) // twice is harmless
	if got := marked[len(marked)-1]; got != 15 {
		t.Fatalf("marked %d, want 15", got)
	}
	<-tr.drained()
}

func TestTrackerRandomOrder(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 0))
		n := 5000
		var last int64 = -1
		tr := newTracker(func(next int64) {
			if next <= last {
				t.Fatalf("mark went back: %d after %d", next, last)
			}
			last = next
		})
		for i := range n {
			tr.add(int64(i))
		}
		order := r.Perm(n)
		done := make([]bool, n)
		for _, i := range order {
			tr.finish(int64(i))
			done[i] = true
			// The mark never passes an unfinished record.
			for j := int64(0); j < last; j++ {
				if !done[j] {
					t.Fatalf("seed %d: mark %d passes unfinished %d", seed, last, j)
				}
			}
		}
		if last != int64(n) {
			t.Fatalf("final mark %d, want %d", last, n)
		}
	}
}

func TestTrackerForgetReleasesTheDrain(t *testing.T) {
	var marked []int64
	tr := newTracker(func(next int64) { marked = append(marked, next) })
	tr.add(1)
	tr.add(2)
	drained := tr.drained()
	tr.finish(1)
	tr.forget(2) // its session ended before it was handed on
	select {
	case <-drained:
	default:
		t.Fatal("drain still waits for a forgotten record")
	}
	if marked[len(marked)-1] != 2 {
		t.Fatalf("marked %v: must resume at the forgotten record 2", marked)
	}
	tr.forget(1) // a done record is not forgotten
	if tr.pending() != 0 || marked[len(marked)-1] != 2 {
		t.Fatalf("pending %d, marked %v", tr.pending(), marked)
	}
}
