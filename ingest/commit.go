package ingest

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// tracker follows the records of one claimed partition from the moment they
// are read until they are done (written, skipped or dead-lettered), and marks
// for commit only the contiguous prefix of done offsets, like pebble's
// commit pipeline publishes only the applied prefix of sequence numbers. It
// is safe for concurrent use: records are added by the claim's goroutine and
// finished by writers.
type tracker struct {
	mark      func(next int64) // marks offset next as the one to resume from
	committed atomic.Int64     // the last offset marked (the next to read after a restart)
	recent    *recent          // the partition's recently stored messages (recent.go); may be nil

	mu      sync.Mutex
	offsets []int64 // read and not yet committed, ascending, from head on
	done    []bool  // parallel to offsets
	head    int     // offsets[:head] are committed and wait for compaction
	open    int     // records added and not done
	idle    chan struct{}
}

func newTracker(mark func(next int64)) *tracker {
	return &tracker{mark: mark}
}

// add registers the next record read; offsets must increase.
func (t *tracker) add(offset int64) {
	t.mu.Lock()
	t.offsets = append(t.offsets, offset)
	t.done = append(t.done, false)
	t.open++
	t.mu.Unlock()
}

// finish marks offset done and advances the committed prefix.
func (t *tracker) finish(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.offsets[t.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i] >= offset })
	if i == len(live) || live[i] != offset || t.done[t.head+i] {
		return // not ours, or finished twice: nothing to do
	}
	t.done[t.head+i] = true
	t.open--
	h := t.head
	for h < len(t.done) && t.done[h] {
		h++
	}
	if h > t.head {
		t.mark(t.offsets[h-1] + 1)
		t.committed.Store(t.offsets[h-1] + 1)
		t.head = h
		if t.head > 1024 && t.head*2 > len(t.offsets) { // compact, amortised O(1)
			n := copy(t.offsets, t.offsets[t.head:])
			copy(t.done, t.done[t.head:])
			t.offsets, t.done, t.head = t.offsets[:n], t.done[:n], 0
		}
	}
	if t.open == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// forget takes back the record just added at offset, which will not be
// handed on (its session ended while it waited): it no longer holds up the
// drain, and since it is not done, nothing after it is committed either, so
// the next owner of the partition reads it again. The claim must stop
// reading after it: a later add would let the mark pass the forgotten offset.
func (t *tracker) forget(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.offsets) - 1
	if n < t.head || t.offsets[n] != offset || t.done[n] {
		return
	}
	t.offsets, t.done = t.offsets[:n], t.done[:n]
	t.open--
	if t.open == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// pending returns the number of records read and not yet done.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.open
}

// drained returns a channel closed once every added record is done.
func (t *tracker) drained() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{})
	if t.open == 0 {
		close(ch)
		return ch
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	return t.idle
}

// ticket is one record's claim on its tracker: finishing it marks the
// record's offset done.
type ticket struct {
	t      *tracker
	offset int64
	rec    *sarama.ConsumerMessage // kept for the dead-letter topic
	span   trace.Span              // non-nil when the record carried a traceparent
}

// finish marks the record done; a traced record's trace gets a
// "postflight.commit" span around the mark, saying whether the committed
// prefix reached the record's offset (it does not while an earlier record
// is still in flight; a later record's mark then covers it).
func (k ticket) finish() {
	if k.span == nil {
		k.t.finish(k.offset)
		return
	}
	_, c := k.span.TracerProvider().Tracer("github.com/postflight/postflight/ingest").Start(
		trace.ContextWithSpan(context.Background(), k.span), "postflight.commit",
		trace.WithAttributes(attribute.Int64("messaging.kafka.offset", k.offset)))
	k.t.finish(k.offset)
	c.SetAttributes(attribute.Bool("postflight.committed", k.t.committed.Load() > k.offset))
	c.End()
	k.span.End()
}
