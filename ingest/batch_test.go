package ingest

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
)

func testItem(sid string, seq int64, size int) *item {
	m := &postflight.Message{SID: sid, AccountSID: "AC1", Sequence: seq}
	return &item{msg: m, key: key(m), size: size, added: time.Now()}
}

func TestBatcherDedupesAndNeverDoublesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBatcher(3, 5*time.Millisecond, 1<<20)
		for _, it := range []*item{testItem("a", 1, 10), testItem("b", 1, 10), testItem("a", 5, 10), testItem("a", 3, 10)} {
			if err := b.add(ctx, it); err != nil {
				t.Fatal(err)
			}
		}
		batch, _ := b.next(ctx) // two distinct messages: waits for linger
		if len(batch) != 2 {
			t.Fatalf("batch of %d, want 2 (a deduped)", len(batch))
		}
		var a *item
		for _, it := range batch {
			if it.msg.SID == "a" {
				a = it
			}
		}
		if a.msg.Sequence != 5 {
			t.Fatalf("kept sequence %d of a, want 5", a.msg.Sequence)
		}
		// a arrives again while in flight: it must wait for the flight to land.
		_ = b.add(ctx, testItem("a", 9, 10))
		_ = b.add(ctx, testItem("c", 1, 10))
		batch2, _ := b.next(ctx)
		for _, it := range batch2 {
			if it.msg.SID == "a" {
				t.Fatal("a handed out twice while in flight")
			}
		}
		b.done(a, true) // a@5 applied: a@9 is higher, so it is queued
		batch3, _ := b.next(ctx)
		if len(batch3) != 1 || batch3[0].msg.Sequence != 9 {
			t.Fatalf("after landing: %+v", batch3)
		}
		// A pending version at or below an applied one is superseded in memory.
		_ = b.add(ctx, testItem("a", 2, 10))
		if sup := b.done(batch3[0], true); sup == nil || sup.msg.Sequence != 2 {
			t.Fatalf("superseded %v, want a@2", sup)
		}
	})
}

func TestBatcherBoundsMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBatcher(25, time.Millisecond, 100)
		for i := range 10 {
			if err := b.add(ctx, testItem(fmt.Sprint(i), 1, 10)); err != nil {
				t.Fatal(err)
			}
		}
		added := make(chan struct{})
		go func() {
			_ = b.add(ctx, testItem("over", 1, 10))
			close(added)
		}()
		synctest.Wait()
		select {
		case <-added:
			t.Fatal("add went past the memory bound")
		default:
		}
		batch, _ := b.next(ctx)
		b.done(batch[0], true)
		synctest.Wait()
		select {
		case <-added:
		default:
			t.Fatal("add still blocked after memory was released")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.add(cctx, testItem("late", 1, 100)); err == nil {
			t.Fatal("add with a cancelled context and a full buffer succeeded")
		}
	})
}

func TestAIMD(t *testing.T) {
	a := newAIMD(8, 1, 16, 100*time.Millisecond)
	now := time.Now()
	ctx := context.Background()
	for range 8 {
		_ = a.acquire(ctx)
	}
	a.release(true, false, now)
	a.release(true, false, now.Add(time.Millisecond)) // same burst: one cut
	if l, _ := a.current(); l != 4 {
		t.Fatalf("limit %v after a throttled burst, want 4", l)
	}
	for range 6 {
		a.release(false, true, now)
	}
	if l, _ := a.current(); l <= 4 || l > 6 {
		t.Fatalf("limit %v after successes, want additive growth", l)
	}
}

// TestBatcherRandomHistories runs random adds, hand-outs and landings
// against a model: a message is never handed out while in flight, what is
// handed out is the highest version added since the last landing, every
// version ends written or superseded, and the byte count returns to zero.
func TestBatcherRandomHistories(t *testing.T) {
	for seed := range uint64(200) {
		r := mrand.New(mrand.NewPCG(seed, 1))
		b := newBatcher(4, 0, 1<<30)
		ctx := context.Background()
		inflight := map[string]*item{}
		best := map[string]int64{}   // highest sequence added, not yet handed out
		landed := map[string]int64{} // highest sequence applied
		var flying []*item
		added, settled := 0, 0
		for step := 0; step < 300 || len(flying) > 0 || b.pendingBytes() > 0; step++ {
			switch op := r.IntN(3); {
			case op == 0 && step < 300:
				sid := fmt.Sprint("m", r.IntN(6))
				seq := int64(r.IntN(20))
				it := testItem(sid, seq, 1+r.IntN(9))
				it.tickets = []ticket{{}}
				if err := b.add(ctx, it); err != nil {
					t.Fatal(err)
				}
				added++
				if s, ok := best[sid]; !ok || seq > s {
					best[sid] = seq
				}
			case op == 1 && b.pendingBytes() > 0:
				b.mu.Lock()
				ready := len(b.queue) - b.head
				b.mu.Unlock()
				if ready == 0 {
					continue
				}
				batch, _ := b.next(ctx)
				for _, it := range batch {
					if inflight[it.msg.SID] != nil {
						t.Fatalf("seed %d: %s handed out twice", seed, it.msg.SID)
					}
					if it.msg.Sequence != best[it.msg.SID] {
						t.Fatalf("seed %d: %s@%d handed out, highest pending %d", seed, it.msg.SID, it.msg.Sequence, best[it.msg.SID])
					}
					delete(best, it.msg.SID)
					inflight[it.msg.SID] = it
					flying = append(flying, it)
				}
			case len(flying) > 0:
				i := r.IntN(len(flying))
				it := flying[i]
				flying = append(flying[:i], flying[i+1:]...)
				delete(inflight, it.msg.SID)
				applied := r.IntN(4) > 0
				settled += len(it.tickets)
				if applied && it.msg.Sequence > landed[it.msg.SID] {
					landed[it.msg.SID] = it.msg.Sequence
				}
				if sup := b.done(it, applied); sup != nil {
					if sup.msg.Sequence > it.msg.Sequence || !applied {
						t.Fatalf("seed %d: %s@%d superseded by %d (applied %v)", seed, sup.msg.SID, sup.msg.Sequence, it.msg.Sequence, applied)
					}
					settled += len(sup.tickets)
					delete(best, sup.msg.SID)
				}
			}
		}
		if settled != added {
			t.Fatalf("seed %d: %d records added, %d settled", seed, added, settled)
		}
	}
}

// TestBatcherCountsMergedDuplicates (issue 11, item 7): versions of one
// message merged in memory keep their raw records (for the dead-letter
// topic and their tickets), so the pending bytes count every one of them,
// and the bound holds against a stream of duplicates.
func TestBatcherCountsMergedDuplicates(t *testing.T) {
	ctx := context.Background()
	b := newBatcher(25, time.Hour, 1000)
	for seq := range int64(5) {
		if err := b.add(ctx, testItem("a", seq+1, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.pendingBytes(); got != 500 {
		t.Fatalf("pending %d bytes after five 100-byte versions of one message, want 500", got)
	}
	// Past the bound, a sixth duplicate waits like any other record.
	for seq := int64(6); seq <= 10; seq++ {
		_ = b.add(ctx, testItem("a", seq, 100))
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.add(short, testItem("a", 11, 100)); err == nil {
		t.Fatalf("an add past the %d-byte bound (pending %d) did not wait", 1000, b.pendingBytes())
	}
}

// TestDeadLettersCountTowardTheBudget (issue 11, item 7): records waiting
// for the dead-letter topic (a queue of 1024 records of up to 1 MiB each)
// count toward the same memory bound as pending writes: they show in the
// pending bytes, and a poison record arriving while the budget is full
// waits (in Kafka, as any record would) instead of filling the queue. No
// producer is involved: nothing drains the queue here.
func TestDeadLettersCountTowardTheBudget(t *testing.T) {
	b := newBatcher(maxBatch, time.Hour, 40_000)
	d := newDLQ("dlq", 1_000_000, nil, nil, nil)
	d.budget = b
	tr := newTracker(func(int64) {})
	rec := func(off int64) ticket {
		return ticket{t: tr, offset: off, rec: &sarama.ConsumerMessage{Topic: "t", Offset: off, Value: make([]byte, 10_000)}}
	}
	ctx := context.Background()
	if !d.send(ctx, rec(0), "poison") {
		t.Fatal("the first dead letter was not queued")
	}
	if got := b.pendingBytes(); got < 10_000 {
		t.Fatalf("pending %d bytes with a 10 KB record queued for the dead-letter topic", got)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if d.send(short, rec(1), "poison") {
		t.Fatalf("a dead letter past the 40 KB budget (pending %d) was queued without waiting", b.pendingBytes())
	}
}
