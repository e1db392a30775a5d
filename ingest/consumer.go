package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// handler is the sarama.ConsumerGroupHandler of one Service.
type handler struct{ s *Service }

var _ sarama.ConsumerGroupHandler = handler{}

func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	s := h.s
	s.owned.Store(int64(len(sess.Claims()[s.cfg.Topic])))
	if parts, err := s.client.Partitions(s.cfg.Topic); err == nil {
		s.total.Store(int64(len(parts)))
	}
	s.log.Info("partitions assigned", "claims", sess.Claims(), "generation", sess.GenerationID())
	return nil
}

// Cleanup runs after every ConsumeClaim returned (they drained): commit what
// they marked before the partitions go to another member.
func (h handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	h.s.log.Info("partitions released", "generation", sess.GenerationID())
	return nil
}

// ConsumeClaim owns one partition's goroutine. It reads records until the
// claim ends (rebalance or shutdown), then stops reading, waits up to
// DrainTimeout for its records to be written, and returns; Cleanup commits.
func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	ctx := sess.Context()
	topic, part := claim.Topic(), claim.Partition()
	tr := newTracker(func(next int64) { sess.MarkOffset(topic, part, next, "") })
	tr.recent = newRecent(s.cfg.RecentPerPartition)
	tr.committed.Store(claim.InitialOffset())
	// Lag is computed when metrics are collected, from the high-water mark
	// and the committed prefix, so it keeps growing while backpressure
	// stops this goroutine from reading.
	s.lag.Store(claimKey{topic, part}, claimLag{claim: claim, tr: tr})
	defer h.drain(tr, topic, part)
	for {
		select {
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if err := s.consume(ctx, tr, rec); err != nil {
				return nil // the session ended while we waited: the record will be read again
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (h handler) drain(tr *tracker, topic string, part int32) {
	s := h.s
	t := time.NewTimer(s.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-tr.drained():
	case <-t.C:
		s.log.Warn("drain deadline passed; unfinished records will be read again by the next owner",
			"topic", topic, "partition", part, "pending", tr.pending())
	}
	s.lag.Delete(claimKey{topic, part})
}

type claimKey struct {
	topic string
	part  int32
}

type claimLag struct {
	claim sarama.ConsumerGroupClaim
	tr    *tracker
}

// records behind the high-water mark that are not yet committed.
func (c claimLag) value() int64 {
	hwm, next := c.claim.HighWaterMarkOffset(), c.tr.committed.Load()
	if next < 0 || hwm < next { // OffsetOldest/Newest sentinels before the first mark
		return 0
	}
	return hwm - next
}

// consume takes one record through decode and decide into the batcher. It
// returns an error only when ctx ended before the record was handed on.
func (s *Service) consume(ctx context.Context, tr *tracker, rec *sarama.ConsumerMessage) error {
	tk := ticket{t: tr, offset: rec.Offset, rec: rec}
	if parent, ok := traceParent(ctx, rec); ok {
		_, tk.span = s.tracer.Start(parent, "postflight.ingest", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.source", rec.Topic), attribute.Int64("messaging.kafka.offset", rec.Offset)))
		if !tk.span.IsRecording() {
			// Not sampled (the producer's flag, or our sampler): the record
			// goes on as an untraced one, so no write, batch, request or
			// commit span is made for a trace nobody keeps.
			tk.span.End()
			tk.span = nil
		}
	}
	tr.add(rec.Offset)
	// abandon takes the record back when the session ends before it is
	// handed on: it will be read again by the partition's next owner.
	abandon := func() error {
		tr.forget(rec.Offset)
		if tk.span != nil {
			tk.span.End()
		}
		return ctx.Err()
	}
	ev, err := s.dec.Decode(ctx, rec.Value)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			// The schema registry is unreachable: not the event's fault.
			// Wait for it rather than dead-letter a good event.
			bo := backoff.NewExponentialBackOff()
			for err != nil && !errors.As(err, &de) {
				s.log.Warn("decode waits for the schema registry", "err", err)
				if !sleep(ctx, bo.NextBackOff()) {
					return abandon()
				}
				ev, err = s.dec.Decode(ctx, rec.Value)
			}
		}
		if de != nil {
			s.m.n.deadLettered(de.Stage)
			if !s.dlq.send(ctx, tk, de.Error()) {
				return abandon()
			}
			return nil
		}
	}
	if decide(&ev) == skipNonFinal {
		s.m.n.nonFinal.Add(1)
		tk.finish()
		return nil
	}
	s.m.n.final.Add(1)
	m := ev.Message()
	if err := s.batcher.add(ctx, newItem(&m, tk, approxSize(rec))); err != nil {
		return abandon()
	}
	return nil
}

// approxSize is what a pending record costs in memory: its raw bytes (kept
// for the dead-letter topic) and the decoded message, roughly twice as much.
func approxSize(rec *sarama.ConsumerMessage) int {
	return 3*(len(rec.Key)+len(rec.Value)) + 512
}

// traceParent continues the W3C trace context of a record's traceparent
// header, if it has one.
func traceParent(ctx context.Context, rec *sarama.ConsumerMessage) (context.Context, bool) {
	for _, h := range rec.Headers {
		if h != nil && string(h.Key) == "traceparent" {
			carrier := propagation.MapCarrier{"traceparent": string(h.Value)}
			for _, t := range rec.Headers {
				if t != nil && string(t.Key) == "tracestate" {
					carrier["tracestate"] = string(t.Value)
				}
			}
			pctx := propagation.TraceContext{}.Extract(ctx, carrier)
			return pctx, trace.SpanContextFromContext(pctx).IsValid()
		}
	}
	return ctx, false
}
