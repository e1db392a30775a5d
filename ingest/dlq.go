package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/metric"
)

// Dead-letter headers of DESIGN.md §1.
const (
	HeaderError  = "x-postflight-error"
	HeaderSource = "x-postflight-source"
)

type dead struct {
	tk     ticket
	reason string
}

// dlq writes dead letters: the original key and value, the original headers,
// and the reason and source. A record's offset is done only once the broker
// acknowledged its dead letter (acks=all); a dead-letter topic that cannot be
// written stops progress and never drops an event.
type dlq struct {
	topic string
	prod  sarama.SyncProducer
	log   *slog.Logger
	count metric.Int64Counter
	in    chan dead
	done  chan struct{}
	sum   dlqSummary // owned by run's goroutine
}

func newDLQ(topic string, prod sarama.SyncProducer, log *slog.Logger, count metric.Int64Counter) *dlq {
	return &dlq{topic: topic, prod: prod, log: log, count: count, in: make(chan dead, 1024), done: make(chan struct{}),
		sum: dlqSummary{every: dlqLogEvery}}
}

// send queues a record for the dead-letter topic; it blocks while the queue
// is full and reports false if ctx ended first (the record is not queued).
func (d *dlq) send(ctx context.Context, tk ticket, reason string) bool {
	select {
	case d.in <- dead{tk: tk, reason: reason}:
		return true
	case <-ctx.Done():
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

// write sends a batch, retrying until it is acknowledged or ctx ends.
func (d *dlq) write(ctx context.Context, batch []dead) bool {
	msgs := make([]*sarama.ProducerMessage, len(batch))
	for i, x := range batch {
		rec := x.tk.rec
		hs := make([]sarama.RecordHeader, 0, len(rec.Headers)+2)
		for _, h := range rec.Headers {
			if h != nil && string(h.Key) != HeaderError && string(h.Key) != HeaderSource {
				hs = append(hs, *h)
			}
		}
		hs = append(hs,
			sarama.RecordHeader{Key: []byte(HeaderError), Value: []byte(x.reason)},
			sarama.RecordHeader{Key: []byte(HeaderSource), Value: []byte(fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset))},
		)
		msgs[i] = &sarama.ProducerMessage{Topic: d.topic, Headers: hs}
		if rec.Key != nil {
			msgs[i].Key = sarama.ByteEncoder(rec.Key)
		}
		if rec.Value != nil {
			msgs[i].Value = sarama.ByteEncoder(rec.Value)
		}
	}
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 10 * time.Second
	for {
		err := d.prod.SendMessages(msgs)
		if err == nil {
			break
		}
		// Resend only what failed: a partial failure lists its messages.
		if perrs, ok := err.(sarama.ProducerErrors); ok && len(perrs) > 0 {
			failed := make([]*sarama.ProducerMessage, 0, len(perrs))
			for _, pe := range perrs {
				failed = append(failed, pe.Msg)
			}
			msgs = failed
		}
		d.log.Error("dead-letter write failed; ingest waits for it", "topic", d.topic, "records", len(msgs), "err", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return false
		}
	}
	now := time.Now()
	for _, x := range batch {
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
