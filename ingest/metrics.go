package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postflight/postflight"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

type metrics struct {
	// Options are built once, as slices passed on with "...": building
	// them per record would allocate, and so would the variadic slice of a
	// single option passed to an interface method.
	retryBy   [postflight.NumWriteOutcomes][]metric.AddOption
	retryOpen []metric.AddOption

	// n holds the counters bumped once per record or message; they are
	// reported by an observable counter's callback (counted).
	n *counted

	retries     metric.Int64Counter // by cause
	deadLetters metric.Int64Counter

	// Freshness, what customers feel: at an applied write, how old the
	// event is (now − its event_time) and how long since it was produced
	// (now − the Kafka record's timestamp).
	eventAge metric.Float64Histogram
	delay    metric.Float64Histogram

	reg metric.Registration // the gauges' callback; unregistered when Run returns
}

// counted are the counters bumped once per record or per message, kept in
// atomics and reported, as the same monotonic counters, by a callback at
// each collection. A synchronous OpenTelemetry Add costs an attribute-set
// lookup under the aggregator's lock, ~0.3–0.5 µs; three of them per record
// were ~5 % of a record's CPU, an atomic add is a few ns. A series is
// reported from its first count on, as a synchronous counter's would be.
//
// The callback is never unregistered: the final collection at shutdown
// (after Run returned) still reports the last counts.
type counted struct {
	final, nonFinal atomic.Int64 // postflight.ingest.records by result
	deadLetter      sync.Map     // stage → *atomic.Int64: result dead_letter
	outcomes        [postflight.NumWriteOutcomes]atomic.Int64

	// The memory of recently stored messages (recent.go).
	knownSuperseded atomic.Int64 // records settled as superseded without a request
	knownStored     atomic.Int64 // messages sent straight to the UPDATE
}

// deadLettered counts a record dead-lettered at a decode stage.
func (c *counted) deadLettered(stage string) {
	v, ok := c.deadLetter.Load(stage)
	if !ok {
		v, _ = c.deadLetter.LoadOrStore(stage, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// freshnessBuckets span a healthy pipeline (tens of ms) to an hours-long
// backlog, so "records are N minutes late" reads off the histogram.
var freshnessBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400}

// observeFreshness records an applied item's event age and, for each of its
// records that has a timestamp, the delay since it was produced.
//
// The context a measurement is recorded in only serves exemplars (the SDK's
// trace-based filter looks for a sampled span in it): a traced record's
// measurement is recorded in its own span's context, the others in an empty
// one. The writer's context has no span, and walking its chain of values
// for one took half of a measurement's cost, ~2 % of a record's CPU.
func (m *metrics) observeFreshness(now time.Time, it *item) {
	if !it.msg.DateUpdated.IsZero() {
		ctx := context.Background()
		for _, tk := range it.tickets {
			if tk.span != nil {
				ctx = trace.ContextWithSpan(ctx, tk.span)
				break
			}
		}
		m.eventAge.Record(ctx, max(0, now.Sub(it.msg.DateUpdated).Seconds()))
	}
	for _, tk := range it.tickets {
		if tk.rec != nil && !tk.rec.Timestamp.IsZero() {
			ctx := context.Background()
			if tk.span != nil {
				ctx = trace.ContextWithSpan(ctx, tk.span)
			}
			m.delay.Record(ctx, max(0, now.Sub(tk.rec.Timestamp).Seconds()))
		}
	}
}

// newMetrics makes the Service's instruments. Its gauges' callback reads s's
// batcher, limit, breaker, pauses and claims: they must all be set first.
func newMetrics(m metric.Meter, s *Service) (metrics, error) {
	var x metrics
	var err error
	set := func(kv ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	for o := range x.retryBy {
		x.retryBy[o] = set(attribute.String("cause", postflight.WriteOutcome(o).String()))
	}
	x.retryOpen = set(attribute.String("cause", "breaker_open"))
	if err := x.registerCounted(m); err != nil {
		return x, err
	}
	if x.retries, err = m.Int64Counter("postflight.ingest.retries", metric.WithDescription("Messages retried, by cause.")); err != nil {
		return x, err
	}
	if x.deadLetters, err = m.Int64Counter("postflight.ingest.dead_letters", metric.WithDescription("Records written to the dead-letter topic.")); err != nil {
		return x, err
	}
	// Counters alerts and dashboards rate() exist from the start, at 0,
	// rather than appearing with the first retry or dead letter.
	for o := range x.retryBy {
		if o := postflight.WriteOutcome(o); o == postflight.Throttled || o == postflight.Unavailable {
			x.retries.Add(context.Background(), 0, x.retryBy[o]...)
		}
	}
	x.retries.Add(context.Background(), 0, x.retryOpen...)
	x.deadLetters.Add(context.Background(), 0)
	if x.eventAge, err = m.Float64Histogram("postflight.ingest.event.age", metric.WithUnit("s"),
		metric.WithDescription("At an applied write, now minus the event's event_time."),
		metric.WithExplicitBucketBoundaries(freshnessBuckets...)); err != nil {
		return x, err
	}
	if x.delay, err = m.Float64Histogram("postflight.ingest.delay", metric.WithUnit("s"),
		metric.WithDescription("At an applied write, now minus the Kafka record's timestamp: produce to stored."),
		metric.WithExplicitBucketBoundaries(freshnessBuckets...)); err != nil {
		return x, err
	}
	pending, err := m.Int64ObservableGauge("postflight.ingest.pending.bytes", metric.WithDescription("Bytes of records pending or in flight (bounded by max pending)."))
	if err != nil {
		return x, err
	}
	limit, err := m.Float64ObservableGauge("postflight.ingest.concurrency.limit", metric.WithDescription("AIMD limit on concurrent write requests."))
	if err != nil {
		return x, err
	}
	breaker, err := m.Int64ObservableGauge("postflight.ingest.breaker.state", metric.WithDescription("DynamoDB circuit breaker: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return x, err
	}
	paused, err := m.Int64ObservableGauge("postflight.ingest.paused", metric.WithDescription("1 while ingest is paused for a cause (breaker_open, dynamodb_refused, stale_account_config), else 0."))
	if err != nil {
		return x, err
	}
	lag, err := m.Int64ObservableGauge("postflight.ingest.lag", metric.WithDescription("Records behind the high-water mark and not yet committed, by partition."))
	if err != nil {
		return x, err
	}
	x.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(pending, int64(s.batcher.pendingBytes()))
		l, _ := s.limit.current()
		o.ObserveFloat64(limit, l)
		o.ObserveInt64(breaker, int64(s.breaker.State()))
		for _, c := range []string{pauseBreaker, pauseMisconfigured, pauseStaleConfig} {
			v := int64(0)
			if s.pauses.active(c) {
				v = 1
			}
			o.ObserveInt64(paused, v, metric.WithAttributes(attribute.String("cause", c)))
		}
		s.lag.Range(func(k, v any) bool {
			ck := k.(claimKey)
			o.ObserveInt64(lag, v.(claimLag).value(), metric.WithAttributes(attribute.String("topic", ck.topic), attribute.Int("partition", int(ck.part))))
			return true
		})
		return nil
	}, pending, limit, breaker, paused, lag)
	return x, err
}

// registerCounted makes the counters of x.n and the callback that reports
// them (type counted).
func (x *metrics) registerCounted(m metric.Meter) error {
	x.n = new(counted)
	records, err := m.Int64ObservableCounter("postflight.ingest.records", metric.WithDescription("Kafka records read, by result."))
	if err != nil {
		return err
	}
	outcomes, err := m.Int64ObservableCounter("postflight.ingest.outcomes", metric.WithDescription("Final events settled, by write outcome."))
	if err != nil {
		return err
	}
	knownSuperseded, err := m.Int64ObservableCounter("postflight.ingest.recent.superseded",
		metric.WithDescription("Records settled as superseded without a write: the store is known to hold their sequence or a higher one."))
	if err != nil {
		return err
	}
	knownStored, err := m.Int64ObservableCounter("postflight.ingest.recent.stored",
		metric.WithDescription("Messages sent straight to the conditional UPDATE: the store is known to hold them, so an INSERT would fail."))
	if err != nil {
		return err
	}
	opt := func(kv ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(kv...))
	}
	final, nonFinal := opt(attribute.String("result", "final")), opt(attribute.String("result", "non_final"))
	var byOutcome [postflight.NumWriteOutcomes]metric.ObserveOption
	for o := range byOutcome {
		byOutcome[o] = opt(attribute.String("outcome", postflight.WriteOutcome(o).String()))
	}
	n := x.n
	observe := func(o metric.Observer, c metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
		if v > 0 { // a series appears with its first count
			o.ObserveInt64(c, v, opts...)
		}
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		observe(o, records, n.final.Load(), final)
		observe(o, records, n.nonFinal.Load(), nonFinal)
		n.deadLetter.Range(func(k, v any) bool {
			observe(o, records, v.(*atomic.Int64).Load(), opt(attribute.String("result", "dead_letter"), attribute.String("stage", k.(string))))
			return true
		})
		for i := range n.outcomes {
			observe(o, outcomes, n.outcomes[i].Load(), byOutcome[i])
		}
		observe(o, knownSuperseded, n.knownSuperseded.Load())
		observe(o, knownStored, n.knownStored.Load())
		return nil
	}, records, outcomes, knownSuperseded, knownStored)
	return err
}
