package ingest

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

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
	a.release(true, now)
	a.release(true, now.Add(time.Millisecond)) // same burst: one cut
	if l, _ := a.current(); l != 4 {
		t.Fatalf("limit %v after a throttled burst, want 4", l)
	}
	for range 6 {
		a.release(false, now)
	}
	if l, _ := a.current(); l <= 4 || l > 6 {
		t.Fatalf("limit %v after successes, want additive growth", l)
	}
}
