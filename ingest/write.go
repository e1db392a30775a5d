package ingest

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/telemetry"
)

// Writer is what ingest needs of the store: write up to 25 distinct messages
// and say what became of each (res[i] for msgs[i]). store.Store satisfies it.
type Writer interface {
	WriteBatch(ctx context.Context, msgs []*postflight.Message, res []postflight.WriteResult)
}

// errUnavailable tells the breaker that a batch met 5xx or network errors.
var errUnavailable = errors.New("dynamodb unavailable")

// writeLoop is one writer: it takes a batch and writes it until every
// message in it is done. It returns when ctx is done. (A writer waits for a
// batch without a concurrency slot: a slot held by an idle writer could
// starve the writers that are retrying.)
func (s *Service) writeLoop(ctx context.Context) {
	for {
		batch, err := s.batcher.next(ctx)
		if err != nil {
			return
		}
		s.writeBatch(ctx, batch)
	}
}

// writeBatch writes a batch, retrying what is retryable with capped,
// jittered exponential backoff, until every item is done or ctx ends (the
// unfinished items' offsets are then never committed, and the records are
// read again by whoever owns the partition next). Each attempt takes a
// concurrency slot and releases it with what DynamoDB said, so a throttled
// attempt halves the limit at once, and the backoff waits without a slot:
// the limit bounds the requests actually in flight, retries included.
func (s *Service) writeBatch(ctx context.Context, batch []*item) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.RetryInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.cfg.RetryMax,
	}
	bo.Reset()
	if batch = s.settleKnown(ctx, batch); len(batch) == 0 {
		return
	}
	msgs := make([]*postflight.Message, len(batch))
	res := make([]postflight.WriteResult, len(batch))
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt > 0 && !sleep(ctx, bo.NextBackOff()) {
			return
		}
		if s.limit.acquire(ctx) != nil {
			return
		}
		msgs, res = msgs[:len(batch)], res[:len(batch)]
		for i, it := range batch {
			msgs[i] = it.msg
		}
		wctx, endSpans := s.startWriteSpans(ctx, batch, attempt)
		_, err := s.breaker.Execute(func() (struct{}, error) {
			s.write(wctx, batch, msgs, res)
			for _, r := range res {
				if r.Outcome == postflight.Unavailable {
					return struct{}{}, errUnavailable
				}
			}
			return struct{}{}, nil
		})
		endSpans()
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			s.limit.release(false, false, time.Now()) // nothing was sent: no news
			s.m.retries.Add(ctx, int64(len(batch)), s.m.retryOpen...)
			continue // nothing was sent
		}
		throttled := false
		var refused error // DynamoDB refused this process (Misconfigured)
		keep := batch[:0]
		for i, it := range batch {
			r := res[i]
			switch {
			case r.Outcome.Done():
				s.finish(ctx, it, r)
			default:
				switch r.Outcome {
				case postflight.Throttled:
					throttled = true
				case postflight.Misconfigured:
					refused = cmp.Or(refused, r.Err, errUnavailable)
				}
				s.m.retries.Add(ctx, 1, s.m.retryBy[r.Outcome]...)
				keep = append(keep, it)
			}
		}
		switch {
		case errors.Is(refused, postflight.ErrStaleConfig):
			s.pauses.set(pauseStaleConfig, refused.Error())
		case refused != nil:
			s.pauses.set(pauseMisconfigured, refused.Error())
		case len(keep) < len(batch): // progress
			s.pauses.clear(pauseMisconfigured)
			s.pauses.clear(pauseStaleConfig)
		}
		s.limit.release(throttled, len(keep) < len(batch), time.Now())
		if len(keep) < len(batch) {
			bo.Reset() // progress: the next retry starts small again
		}
		batch = keep
	}
}

// finish settles a written item: a rejected one goes to the dead-letter
// topic first; its records (and those of a pending version it made
// redundant) are then done.
func (s *Service) finish(ctx context.Context, it *item, r postflight.WriteResult) {
	if r.Outcome == postflight.Applied || r.Outcome == postflight.Superseded {
		it.memory().remember(it.msg)
	}
	s.m.n.outcomes[r.Outcome].Add(int64(len(it.tickets)))
	if r.Outcome == postflight.Applied {
		s.m.observeFreshness(time.Now(), it)
	}
	if r.Outcome == postflight.Rejected {
		reason := "dynamodb rejected the item: " + errString(r.Err)
		for _, tk := range it.tickets {
			// false only at final shutdown, after every drain: the record
			// stays uncommitted and is read again.
			_ = s.dlq.sendCounted(ctx, tk, reason)
		}
	} else {
		for _, tk := range it.tickets {
			tk.finish()
		}
	}
	if sup := s.batcher.done(it, r.Outcome == postflight.Applied); sup != nil {
		s.m.n.outcomes[postflight.Superseded].Add(int64(len(sup.tickets)))
		for _, tk := range sup.tickets {
			tk.finish()
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "unknown reason"
	}
	return err.Error()
}

// startWriteSpans starts the spans of one write attempt when some record in
// the batch carried a traceparent: in each such record's own trace a child
// "postflight.write" span, so the producer's trace continues into the write,
// and a "postflight.write.batch" span in the first such record's trace,
// linked to every one of them; the DynamoDB request spans
// (awsconf.WithTracing) are its children and carry the same links. A batch
// of untraced records starts no span (no root span per batch for the
// sampler to keep). The returned func ends them all.
func (s *Service) startWriteSpans(ctx context.Context, batch []*item, attempt int) (context.Context, func()) {
	var links []trace.Link
	var spans []trace.Span
	var first trace.Span
	attrs := trace.WithAttributes(attribute.Int("batch.size", len(batch)), attribute.Int("attempt", attempt))
	for _, it := range batch {
		for _, tk := range it.tickets {
			if tk.span != nil {
				if first == nil {
					first = tk.span
				}
				links = append(links, trace.Link{SpanContext: tk.span.SpanContext()})
				_, sp := s.tracer.Start(trace.ContextWithSpan(ctx, tk.span), "postflight.write", attrs,
					trace.WithAttributes(attribute.String("message_sid", it.msg.SID)))
				spans = append(spans, sp)
			}
		}
	}
	if first == nil {
		return ctx, func() {}
	}
	wctx, span := s.tracer.Start(trace.ContextWithSpan(ctx, first), "postflight.write.batch", trace.WithLinks(links...), attrs)
	wctx = telemetry.WithLinks(wctx, links)
	return wctx, func() {
		span.End()
		for _, sp := range spans {
			sp.End()
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
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
