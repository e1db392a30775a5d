package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/postflight/postflight"
)

// maxBatch is the most messages in one write: BatchExecuteStatement takes at
// most 25 statements (store.MaxBatch).
const maxBatch = 25

// item is one message waiting to be written, with every record it stands
// for: events of the same message that it superseded in memory finish when
// it does.
type item struct {
	msg     *postflight.Message
	key     string
	size    int
	tickets []ticket
	added   time.Time
}

// batcher collects pending messages across partitions and hands out batches
// of at most maxBatch distinct messages. It keeps one pending version per
// message (the highest sequence) and never hands out a message while an
// earlier version of it is in flight, so two requests never carry the same
// message and per-message order holds. Memory is bounded: Add blocks while
// the pending bytes exceed maxBytes.
type batcher struct {
	maxBatch int
	linger   time.Duration
	maxBytes int

	mu       sync.Mutex
	pend     map[string]*item // latest version per message, not yet handed out
	queue    []*item          // queue[head:] are ready to hand out (not in flight), in arrival order
	head     int
	inflight map[string]int64 // message key → sequence in flight
	bytes    int              // size of everything pending or in flight
	notify   chan struct{}    // cap 1: something was queued
	space    chan struct{}    // cap 1: bytes were released
}

func newBatcher(maxBatch int, linger time.Duration, maxBytes int) *batcher {
	return &batcher{
		maxBatch: maxBatch, linger: linger, maxBytes: maxBytes,
		pend: map[string]*item{}, inflight: map[string]int64{},
		notify: make(chan struct{}, 1), space: make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// add queues it, blocking while the buffer is full. It returns ctx's error
// if ctx ends first (the item is then not queued).
func (b *batcher) add(ctx context.Context, it *item) error {
	b.mu.Lock()
	for b.bytes > 0 && b.bytes+it.size > b.maxBytes {
		b.mu.Unlock()
		select {
		case <-b.space:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if cur, ok := b.pend[it.key]; ok {
		// Keep the higher sequence; the loser's records finish with it.
		if it.msg.Sequence > cur.msg.Sequence {
			cur.msg, b.bytes = it.msg, b.bytes-cur.size+it.size
			cur.size = it.size
		}
		cur.tickets = append(cur.tickets, it.tickets...)
		return nil
	}
	b.pend[it.key] = it
	b.bytes += it.size
	if _, busy := b.inflight[it.key]; !busy {
		b.queue = append(b.queue, it)
		signal(b.notify)
	}
	if b.bytes < b.maxBytes {
		signal(b.space) // let the next blocked adder try
	}
	return nil
}

// next blocks until a full batch is queued, or a partial one has waited for
// linger, and hands it out (its messages are in flight until done).
func (b *batcher) next(ctx context.Context) ([]*item, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		n := len(b.queue) - b.head
		var wait time.Duration
		if n > 0 && n < b.maxBatch {
			wait = b.linger - time.Since(b.queue[b.head].added)
		}
		if n >= b.maxBatch || (n > 0 && wait <= 0) {
			out := b.take(min(n, b.maxBatch))
			if len(b.queue) > b.head {
				signal(b.notify) // wake another writer for the rest
			}
			b.mu.Unlock()
			return out, nil
		}
		b.mu.Unlock()
		var tc <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tc = timer.C
		}
		select {
		case <-b.notify:
		case <-tc:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// take moves n queued items in flight. b.mu is held.
func (b *batcher) take(n int) []*item {
	out := make([]*item, n)
	copy(out, b.queue[b.head:b.head+n])
	clear(b.queue[b.head : b.head+n])
	b.head += n
	if b.head == len(b.queue) {
		b.queue, b.head = b.queue[:0], 0
	} else if b.head > 1024 && b.head*2 > len(b.queue) { // compact, amortised O(1)
		k := copy(b.queue, b.queue[b.head:])
		clear(b.queue[k:])
		b.queue, b.head = b.queue[:k], 0
	}
	for _, it := range out {
		delete(b.pend, it.key)
		b.inflight[it.key] = it.msg.Sequence
	}
	return out
}

// done releases a batch item after its write. applied says the store now
// holds its sequence: a pending version with no higher sequence is then
// superseded without a write, and its records are returned for finishing.
func (b *batcher) done(it *item, applied bool) (superseded *item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq := b.inflight[it.key]
	delete(b.inflight, it.key)
	b.bytes -= it.size
	if p, ok := b.pend[it.key]; ok {
		if applied && p.msg.Sequence <= seq {
			delete(b.pend, it.key)
			b.bytes -= p.size
			superseded = p
		} else {
			b.queue = append(b.queue, p)
			signal(b.notify)
		}
	}
	signal(b.space)
	return superseded
}

// pendingBytes returns the size of everything pending or in flight.
func (b *batcher) pendingBytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}
