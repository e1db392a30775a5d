package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/metric"
)

// Dead-letter headers of DESIGN.md §1.
const (
	HeaderError  = "x-postflight-error"
	HeaderSource = "x-postflight-source"
	// HeaderTruncated marks a dead letter whose record was too large for
	// the dead-letter topic: its value is a prefix (possibly empty) of the
	// original, whose size in bytes this header holds.
	HeaderTruncated = "x-postflight-truncated"
)

// Source is the x-postflight-source value of a record: topic/partition/offset.
func Source(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s/%d/%d", topic, partition, offset)
}

// DeadLetter returns the dead letter of rec for topic: the original key,
// value and headers, with x-postflight-error set to reason and
// x-postflight-source to source (replay from the dead-letter topic passes
// the record's original source, so it survives any number of rounds).
func DeadLetter(topic string, rec *sarama.ConsumerMessage, reason, source string) *sarama.ProducerMessage {
	hs := make([]sarama.RecordHeader, 0, len(rec.Headers)+2)
	for _, h := range rec.Headers {
		if h != nil && string(h.Key) != HeaderError && string(h.Key) != HeaderSource {
			hs = append(hs, *h)
		}
	}
	hs = append(hs,
		sarama.RecordHeader{Key: []byte(HeaderError), Value: []byte(reason)},
		sarama.RecordHeader{Key: []byte(HeaderSource), Value: []byte(source)},
	)
	m := &sarama.ProducerMessage{Topic: topic, Headers: hs}
	if rec.Key != nil {
		m.Key = sarama.ByteEncoder(rec.Key)
	}
	if rec.Value != nil {
		m.Value = sarama.ByteEncoder(rec.Value)
	}
	return m
}

type dead struct {
	tk     ticket
	reason string
	size   int // counted in the budget until acknowledged
}

// dlq writes dead letters: the original key and value, the original headers,
// and the reason and source. A record's offset is done only once the broker
// acknowledged its dead letter (acks=all); a dead-letter topic that cannot be
// written stops progress and never drops an event.
type dlq struct {
	topic    string
	maxBytes int // the largest dead letter (Config.DLQMaxBytes)
	prod     sarama.SyncProducer
	log      *slog.Logger
	count    metric.Int64Counter
	in       chan dead
	done     chan struct{}
	sum      dlqSummary // owned by run's goroutine
	// budget, if set, is the pipeline's memory bound: dead letters waiting
	// for the broker count toward it (batcher.hold).
	budget *batcher
}

func newDLQ(topic string, maxBytes int, prod sarama.SyncProducer, log *slog.Logger, count metric.Int64Counter) *dlq {
	return &dlq{topic: topic, maxBytes: maxBytes, prod: prod, log: log, count: count, in: make(chan dead, 1024), done: make(chan struct{}),
		sum: dlqSummary{every: dlqLogEvery}}
}

// send queues a record for the dead-letter topic; it blocks while the
// memory budget or the queue is full and reports false if ctx ended first
// (the record is not queued). Decoding uses it: the consumer then stops
// reading, as for any record that does not fit.
func (d *dlq) send(ctx context.Context, tk ticket, reason string) bool {
	return d.enqueue(ctx, tk, reason, true)
}

// sendCounted is send for a record that is already counted in the budget
// (it comes from a batch, which releases its bytes once settled): it does
// not wait for the budget, so a writer settling a batch can never wait on
// bytes that only its own settling would free.
func (d *dlq) sendCounted(ctx context.Context, tk ticket, reason string) bool {
	return d.enqueue(ctx, tk, reason, false)
}

func (d *dlq) enqueue(ctx context.Context, tk ticket, reason string, wait bool) bool {
	x := dead{tk: tk, reason: reason, size: approxSize(tk.rec)}
	if d.budget != nil {
		if d.budget.hold(ctx, x.size, wait) != nil {
			return false
		}
	}
	select {
	case d.in <- x:
		return true
	case <-ctx.Done():
		if d.budget != nil {
			d.budget.unhold(x.size)
		}
		return false
	}
}

// run writes queued dead letters in batches until ctx is done.
func (d *dlq) run(ctx context.Context) {
	defer close(d.done)
	tick := time.NewTicker(d.sum.every)
	defer tick.Stop()
	defer d.sum.flushAll(ctx, d.log, time.Now())
	batch := make([]dead, 0, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.sum.flush(ctx, d.log, now)
			continue
		case x := <-d.in:
			batch = append(batch[:0], x)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case x := <-d.in:
				batch = append(batch, x)
			default:
				break more
			}
		}
		if !d.write(ctx, batch) {
			return
		}
	}
}

// Truncation levels of a dead letter the topic cannot take (see letter).
const (
	fitLimit   = iota // the original, its value cut to fit maxBytes if it must
	keepPrefix        // a 1 KiB prefix of the value, no original headers
	headerOnly        // no value, the key cut to 256 bytes: the reason and source only
)

// letter builds the dead letter of x at truncation level lvl, at most
// maxBytes as sarama counts them (its Producer.MaxMessageBytes is the same
// bound). The index i is kept in Metadata to find x again on failure.
func (d *dlq) letter(x dead, i, lvl int) *sarama.ProducerMessage {
	rec := x.tk.rec
	key, value := rec.Key, rec.Value
	var hs []sarama.RecordHeader
	if lvl == fitLimit {
		hs = make([]sarama.RecordHeader, 0, len(rec.Headers)+3)
		for _, h := range rec.Headers {
			if h != nil && string(h.Key) != HeaderError && string(h.Key) != HeaderSource && string(h.Key) != HeaderTruncated {
				hs = append(hs, *h)
			}
		}
	}
	switch lvl {
	case keepPrefix:
		value = value[:min(len(value), 1<<10)]
	case headerOnly:
		key, value = key[:min(len(key), 256)], nil
	}
	hs = append(hs,
		sarama.RecordHeader{Key: []byte(HeaderError), Value: []byte(x.reason)},
		sarama.RecordHeader{Key: []byte(HeaderSource), Value: []byte(Source(rec.Topic, rec.Partition, rec.Offset))},
	)
	truncated := lvl > fitLimit
	m := &sarama.ProducerMessage{Topic: d.topic, Metadata: i}
	set := func() {
		m.Headers, m.Key, m.Value = hs, nil, nil
		if truncated {
			m.Headers = append(hs, sarama.RecordHeader{Key: []byte(HeaderTruncated), Value: []byte(strconv.Itoa(len(rec.Value)))})
		}
		if key != nil {
			m.Key = sarama.ByteEncoder(key)
		}
		if value != nil {
			m.Value = sarama.ByteEncoder(value)
		}
	}
	set()
	if over := m.ByteSize(2) - d.maxBytes; over > 0 && lvl == fitLimit {
		// Cut the value by what is over, and room for the marker header.
		truncated = true
		value = value[:max(0, len(value)-over-len(HeaderTruncated)-32)]
		set()
		if m.ByteSize(2) > d.maxBytes { // the key or headers alone are too large
			return d.letter(x, i, keepPrefix)
		}
	}
	return m
}

// tooLarge reports whether a producer error means this record can never be
// written as it is: over our producer's limit (sarama's ConfigurationError)
// or over the topic's or broker's (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
// INVALID_RECORD).
func tooLarge(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) || errors.Is(err, sarama.ErrMessageSizeTooLarge) ||
		errors.Is(err, sarama.ErrMessageSetSizeTooLarge) || errors.Is(err, sarama.ErrInvalidRecord)
}

// write sends a batch, retrying until it is acknowledged or ctx ends. A
// record refused for its size is sent again truncated (letter's levels);
// any other failure, or a header-only letter still refused, is retried with
// backoff: the dead-letter topic is then down or misconfigured, and progress
// waits for it rather than drop an event.
func (d *dlq) write(ctx context.Context, batch []dead) bool {
	level := make([]int, len(batch))
	msgs := make([]*sarama.ProducerMessage, len(batch))
	for i, x := range batch {
		msgs[i] = d.letter(x, i, fitLimit)
	}
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 10 * time.Second
	for {
		err := d.prod.SendMessages(msgs)
		if err == nil {
			break
		}
		// Resend only what failed: a partial failure lists its messages.
		if perrs := (sarama.ProducerErrors)(nil); errors.As(err, &perrs) && len(perrs) > 0 {
			failed := make([]*sarama.ProducerMessage, 0, len(perrs))
			shrunk := 0
			for _, pe := range perrs {
				i, _ := pe.Msg.Metadata.(int)
				if tooLarge(pe.Err) && level[i] < headerOnly {
					level[i]++
					shrunk++
					d.log.Warn("dead letter too large for its topic; sending it truncated",
						"source", fmt.Sprintf("%s/%d/%d", batch[i].tk.rec.Topic, batch[i].tk.rec.Partition, batch[i].tk.rec.Offset),
						"value_bytes", len(batch[i].tk.rec.Value), "err", pe.Err)
					failed = append(failed, d.letter(batch[i], i, level[i]))
					continue
				}
				failed = append(failed, pe.Msg)
			}
			msgs = failed
			if shrunk == len(failed) {
				continue // nothing to wait for: send the truncated letters now
			}
			err = perrs[0].Err
		}
		d.log.Error("dead-letter write failed; ingest waits for it", "topic", d.topic, "records", len(msgs), "err", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return false
		}
	}
	now := time.Now()
	for _, x := range batch {
		if d.budget != nil {
			d.budget.unhold(x.size)
		}
		d.count.Add(ctx, 1)
		d.sum.add(ctx, d.log, now, x)
		x.tk.finish()
	}
	return true
}

// dlqLogEvery is how often, at most, a flood of dead letters is summarized.
const dlqLogEvery = 10 * time.Second

// dlqMaxReasons bounds the distinct reasons a summary counts.
const dlqMaxReasons = 8

// dlqSummary logs dead letters without a line per record: the first one
// after a quiet interval at once, with its source and reason; the ones after
// it within the interval as one summary line per interval (count, counts by
// reason, first and last source). A poison flood of a million records costs
// a line every dlqLogEvery, and the records themselves are in the
// dead-letter topic. Not safe for concurrent use: dlq.run owns it.
type dlqSummary struct {
	every       time.Duration
	last        time.Time // when a line was last logged
	n           int
	reasons     map[string]int
	first, tail string // sources of the first and last record summarized
}

func (s *dlqSummary) add(ctx context.Context, log *slog.Logger, now time.Time, x dead) {
	src := fmt.Sprintf("%s/%d/%d", x.tk.rec.Topic, x.tk.rec.Partition, x.tk.rec.Offset)
	if s.n == 0 && now.Sub(s.last) >= s.every {
		s.last = now
		log.WarnContext(ctx, "dead-lettered", "source", src, "reason", x.reason)
		return
	}
	if s.reasons == nil {
		s.reasons = make(map[string]int)
	}
	reason := x.reason
	if _, ok := s.reasons[reason]; !ok && len(s.reasons) >= dlqMaxReasons {
		reason = "(other reasons)"
	}
	s.reasons[reason]++
	if s.n == 0 {
		s.first = src
	}
	s.tail = src
	s.n++
	s.flush(ctx, log, now)
}

// flush logs the summary if there is one and the interval has passed.
func (s *dlqSummary) flush(ctx context.Context, log *slog.Logger, now time.Time) {
	if now.Sub(s.last) >= s.every {
		s.flushAll(ctx, log, now)
	}
}

// flushAll logs the summary if there is one (at shutdown).
func (s *dlqSummary) flushAll(ctx context.Context, log *slog.Logger, now time.Time) {
	if s.n == 0 {
		return
	}
	args := []any{"records", s.n, "first_source", s.first, "last_source", s.tail}
	for r, n := range s.reasons {
		args = append(args, slog.Int("reason:"+r, n))
	}
	log.WarnContext(ctx, "dead-lettered (summary since the last line)", args...)
	s.last, s.n, s.reasons = now, 0, nil
}
