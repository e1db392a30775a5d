package ingest

import (
	"context"
	"errors"
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
}

func newDLQ(topic string, prod sarama.SyncProducer, log *slog.Logger, count metric.Int64Counter) *dlq {
	return &dlq{topic: topic, prod: prod, log: log, count: count, in: make(chan dead, 1024), done: make(chan struct{})}
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
	batch := make([]dead, 0, 256)
	for {
		select {
		case <-ctx.Done():
			return
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
		if perrs := (sarama.ProducerErrors)(nil); errors.As(err, &perrs) && len(perrs) > 0 {
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
	for _, x := range batch {
		d.count.Add(ctx, 1)
		d.log.Warn("dead-lettered", "source", fmt.Sprintf("%s/%d/%d", x.tk.rec.Topic, x.tk.rec.Partition, x.tk.rec.Offset), "reason", x.reason)
		x.tk.finish()
	}
	return true
}
