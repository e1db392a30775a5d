package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/store"
)

// Config configures Replay. Zero fields take the defaults on them.
type Config struct {
	Range    Range
	DLQTopic string // where events that still fail go, default message-events.dlq
	// FromDLQ: Range.Topic is the dead-letter topic. A record that fails
	// again is dead-lettered with its original x-postflight-source.
	FromDLQ bool
	Rate    float64 // records read per second, all partitions; 0: no limit
	// Only, if set, selects the messages written (reconcile --repair);
	// the others are read and counted as Skipped.
	Only        func(store.Key) bool
	Concurrency int           // partitions read at once, default 8
	RetryMax    time.Duration // cap of the write retry backoff, default 5s
}

func (c *Config) setDefaults() {
	if c.DLQTopic == "" {
		c.DLQTopic = "message-events.dlq"
	}
	if c.Range.Topic == "" {
		c.Range.Topic = "message-events"
		if c.FromDLQ {
			c.Range.Topic = c.DLQTopic
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
}

// Summary counts what became of the records; it is updated while Replay
// runs (read it with the atomics' Load for a progress line).
type Summary struct {
	Total        int64 // records (offsets) in the resolved range
	Read         atomic.Int64
	NonFinal     atomic.Int64 // valid, not final: nothing to write
	Skipped      atomic.Int64 // final, not selected by Only
	Written      atomic.Int64 // applied: the store now holds this event's state
	Superseded   atomic.Int64 // a higher sequence was stored, or came later in the range
	Tombstoned   atomic.Int64
	Expired      atomic.Int64 // past the account's retention: not written
	DeadLettered atomic.Int64
}

// Writer is the store's conditional batch write (ingest.Writer).
type Writer = ingest.Writer

// Replay reads the range with its own consumer and sends every record
// through ingest's decoder and the store's conditional writes, as ingest
// does: invalid records are dead-lettered (acks=all) and counted, non-final
// events are counted, final ones are written at most 25 distinct messages a
// request, the highest sequence in a request kept, retried while DynamoDB
// throttles or is unavailable. It is idempotent (every write is conditional
// on the stored sequence, tombstones and pins hold), so it may run while
// ingest runs and may be repeated. It returns when the range is done or at
// the first permanent error.
func Replay(ctx context.Context, client sarama.Client, w Writer, dec *ingest.Decoder, cfg Config, sum *Summary, log *slog.Logger) error {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.FromDLQ && cfg.Range.Topic != cfg.DLQTopic {
		return fmt.Errorf("replay: from the dead-letter topic %s, but the range names %s", cfg.DLQTopic, cfg.Range.Topic)
	}
	parts, err := Resolve(client, cfg.Range)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	sum.Total = Count(parts)
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return fmt.Errorf("replay: dead-letter producer: %w", err)
	}
	defer prod.Close()
	var lim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/10)))
	}
	r := &replayer{cfg: cfg, w: w, dec: dec, prod: prod, sum: sum, log: log}
	return readParts(ctx, client, cfg.Range.Topic, parts, cfg.Concurrency, lim, func(Part) partHandler {
		b := &pending{idx: map[store.Key]int{}}
		return partHandler{
			record: func(ctx context.Context, m *sarama.ConsumerMessage) error { return r.record(ctx, b, m) },
			flush:  func(ctx context.Context) error { return r.flush(ctx, b) },
		}
	})
}

type replayer struct {
	cfg  Config
	w    Writer
	dec  *ingest.Decoder
	prod sarama.SyncProducer
	sum  *Summary
	log  *slog.Logger
}

// pending is one partition's next batch: distinct messages, each with the
// record of its highest-sequence event (dead-lettered if the store rejects it).
type pending struct {
	msgs []*postflight.Message
	recs []*sarama.ConsumerMessage
	idx  map[store.Key]int
}

// source is where a record came from, as dead letters name it.
func (r *replayer) source(m *sarama.ConsumerMessage) string {
	if r.cfg.FromDLQ {
		for _, h := range m.Headers {
			if h != nil && string(h.Key) == ingest.HeaderSource {
				return string(h.Value)
			}
		}
	}
	return ingest.Source(m.Topic, m.Partition, m.Offset)
}

func (r *replayer) record(ctx context.Context, b *pending, m *sarama.ConsumerMessage) error {
	r.sum.Read.Add(1)
	ev, err := r.decode(ctx, m.Value)
	if err != nil {
		var de *ingest.DecodeError
		switch {
		case errors.As(err, &de) && r.cfg.Only != nil:
			r.sum.Skipped.Add(1) // a selective replay writes its messages only
			return nil
		case errors.As(err, &de):
			return r.deadLetter(ctx, m, de.Error())
		}
		return err
	}
	if !ev.Status.IsFinal() {
		r.sum.NonFinal.Add(1)
		return nil
	}
	k := store.Key{Account: ev.AccountSID, SID: ev.MessageSID}
	if r.cfg.Only != nil && !r.cfg.Only(k) {
		r.sum.Skipped.Add(1)
		return nil
	}
	msg := ev.Message()
	if i, ok := b.idx[k]; ok {
		r.sum.Superseded.Add(1) // one of the two loses
		if msg.Sequence > b.msgs[i].Sequence {
			b.msgs[i], b.recs[i] = &msg, m
		}
		return nil
	}
	b.idx[k] = len(b.msgs)
	b.msgs = append(b.msgs, &msg)
	b.recs = append(b.recs, m)
	if len(b.msgs) == store.MaxBatch {
		return r.flush(ctx, b)
	}
	return nil
}

// decode retries transient failures (a schema registry that does not
// answer) with backoff; a *ingest.DecodeError is returned at once.
func (r *replayer) decode(ctx context.Context, v []byte) (postflight.Event, error) {
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = r.cfg.RetryMax
	for {
		ev, err := r.dec.Decode(ctx, v)
		var de *ingest.DecodeError
		if err == nil || errors.As(err, &de) {
			return ev, err
		}
		r.log.Warn("decode: transient failure, retrying", "err", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return ev, ctx.Err()
		}
	}
}

// flush writes the pending batch until every message has a final outcome.
func (r *replayer) flush(ctx context.Context, b *pending) error {
	if len(b.msgs) == 0 {
		return nil
	}
	msgs, recs := b.msgs, b.recs
	res := make([]postflight.WriteResult, len(msgs))
	bo := &backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: r.cfg.RetryMax}
	bo.Reset()
	for attempt := 0; len(msgs) > 0; attempt++ {
		if attempt > 0 && !sleep(ctx, bo.NextBackOff()) {
			return ctx.Err()
		}
		r.w.WriteBatch(ctx, msgs, res[:len(msgs)])
		keepM, keepR := msgs[:0], recs[:0]
		for i, out := range res[:len(msgs)] {
			switch out.Outcome {
			case postflight.Applied:
				r.sum.Written.Add(1)
			case postflight.Superseded:
				r.sum.Superseded.Add(1)
			case postflight.Tombstoned:
				r.sum.Tombstoned.Add(1)
			case postflight.Expired:
				r.sum.Expired.Add(1)
			case postflight.Rejected:
				if err := r.deadLetter(ctx, recs[i], "dynamodb rejected the item: "+errString(out.Err)); err != nil {
					return err
				}
			default: // Throttled, Unavailable: again, after a pause
				keepM, keepR = append(keepM, msgs[i]), append(keepR, recs[i])
			}
		}
		if len(keepM) < len(msgs) {
			bo.Reset()
		}
		msgs, recs = keepM, keepR
	}
	b.msgs, b.recs = b.msgs[:0], b.recs[:0]
	clear(b.idx)
	return nil
}

// deadLetter sends m to the dead-letter topic, retrying until the broker
// acknowledged it or ctx ends.
func (r *replayer) deadLetter(ctx context.Context, m *sarama.ConsumerMessage, reason string) error {
	dl := ingest.DeadLetter(r.cfg.DLQTopic, m, reason, r.source(m))
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = r.cfg.RetryMax
	for {
		_, _, err := r.prod.SendMessage(dl)
		if err == nil {
			r.sum.DeadLettered.Add(1)
			r.log.Warn("dead-lettered", "source", r.source(m), "reason", reason)
			return nil
		}
		r.log.Error("dead-letter write failed; retrying", "topic", r.cfg.DLQTopic, "err", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return fmt.Errorf("dead-letter %s: %w", r.source(m), ctx.Err())
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "unknown reason"
	}
	return err.Error()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
