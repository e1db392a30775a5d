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
	key     msgKey
	size    int // of every record it holds (merged versions included)
	tickets []ticket
	added   time.Time

	// Batcher state, under batcher.mu: an item in flight may have the
	// message's next version waiting in next.
	inflight bool
	next     *item

	// stored: the store is known to hold the message (recent.go); set by
	// the writer that has the item in flight.
	stored bool

	// Storage for the common case, so that a consumed record costs one
	// allocation: msg points to m, tickets starts in first.
	m     postflight.Message
	first [1]ticket
}

// newItem returns the pending item of m, consumed as ticket tk.
func newItem(m *postflight.Message, tk ticket, size int) *item {
	it := &item{m: *m, size: size, added: time.Now()}
	it.msg, it.key = &it.m, key(m)
	it.first[0] = tk
	it.tickets = it.first[:]
	return it
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

	mu sync.Mutex
	// msgs holds, per message, the version in flight (with the next one
	// waiting in its next field) or else the one pending: one map entry
	// per message, three map operations per message written.
	msgs   map[msgKey]*item
	queue  []*item // queue[head:] are ready to hand out (not in flight), in arrival order
	head   int
	bytes  int           // size of everything pending or in flight, and of held dead letters
	notify chan struct{} // cap 1: something was queued
	space  chan struct{} // cap 1: bytes were released
}

func newBatcher(maxBatch int, linger time.Duration, maxBytes int) *batcher {
	return &batcher{
		maxBatch: maxBatch, linger: linger, maxBytes: maxBytes,
		msgs:   map[msgKey]*item{},
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
	fl := b.msgs[it.key] // one lookup: the map is as large as the pending buffer, each lookup a cache miss
	cur := fl
	if cur != nil && cur.inflight {
		cur = cur.next
	}
	if cur != nil {
		// Keep the higher sequence; the loser's records finish with it.
		// Both versions' records stay held (their tickets keep the raw
		// record for the dead-letter topic), so both count.
		if it.msg.Sequence > cur.msg.Sequence {
			cur.msg = it.msg
		}
		cur.tickets = append(cur.tickets, it.tickets...)
		cur.size += it.size
		b.bytes += it.size
		return nil
	}
	b.bytes += it.size
	if fl != nil { // in flight: it waits
		fl.next = it
	} else {
		b.msgs[it.key] = it
		b.queue = append(b.queue, it)
		signal(b.notify)
	}
	if b.bytes < b.maxBytes {
		signal(b.space) // let the next blocked adder try
	}
	return nil
}

// hold counts n bytes held outside the pending messages (records waiting
// for the dead-letter topic) toward the bound. With wait it first blocks,
// as add does, while the bound is reached, and returns ctx's error if ctx
// ends first; without, it counts them at once (a record moving from a batch
// to the dead-letter queue is already counted until its batch is done).
func (b *batcher) hold(ctx context.Context, n int, wait bool) error {
	b.mu.Lock()
	for wait && b.bytes > 0 && b.bytes+n > b.maxBytes {
		b.mu.Unlock()
		select {
		case <-b.space:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
	b.bytes += n
	if b.bytes < b.maxBytes {
		signal(b.space)
	}
	b.mu.Unlock()
	return nil
}

// unhold releases n bytes counted by hold.
func (b *batcher) unhold(n int) {
	b.mu.Lock()
	b.bytes -= n
	b.mu.Unlock()
	signal(b.space)
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
		it.inflight = true
	}
	return out
}

// done releases a batch item after its write. applied says the store now
// holds its sequence: a pending version with no higher sequence is then
// superseded without a write, and its records are returned for finishing.
func (b *batcher) done(it *item, applied bool) (superseded *item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bytes -= it.size
	switch p := it.next; {
	case p == nil:
		delete(b.msgs, it.key)
	case applied && p.msg.Sequence <= it.msg.Sequence:
		delete(b.msgs, it.key)
		b.bytes -= p.size
		superseded = p
	default:
		b.msgs[it.key] = p
		b.queue = append(b.queue, p)
		signal(b.notify)
	}
	it.next = nil
	signal(b.space)
	return superseded
}

// pendingBytes returns the size of everything pending or in flight, and of
// the records waiting for the dead-letter topic.
func (b *batcher) pendingBytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}
