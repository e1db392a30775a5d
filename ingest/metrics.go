package ingest

import (
	"context"
	"time"

	"github.com/postflight/postflight"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

type metrics struct {
	// Options are built once, as slices passed on with "...": building
	// them per record would allocate, and so would the variadic slice of a
	// single option passed to an interface method.
	final, nonFinal []metric.AddOption
	byOutcome       [postflight.NumWriteOutcomes][]metric.AddOption
	retryBy         [postflight.NumWriteOutcomes][]metric.AddOption
	retryOpen       []metric.AddOption

	records     metric.Int64Counter // by result: final, non_final, dead_letter
	outcomes    metric.Int64Counter // records settled, by write outcome
	retries     metric.Int64Counter // by cause
	deadLetters metric.Int64Counter

	// The memory of recently stored messages (recent.go).
	knownSuperseded metric.Int64Counter // records settled as superseded without a request
	knownStored     metric.Int64Counter // messages sent straight to the UPDATE

	// Freshness, what customers feel: at an applied write, how old the
	// event is (now − its event_time) and how long since it was produced
	// (now − the Kafka record's timestamp).
	eventAge metric.Float64Histogram
	delay    metric.Float64Histogram

	reg metric.Registration // the gauges' callback; unregistered when Run returns
}

// freshnessBuckets span a healthy pipeline (tens of ms) to an hours-long
// backlog, so "records are N minutes late" reads off the histogram.
var freshnessBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400}

// observeFreshness records an applied item's event age and, for each of its
// records that has a timestamp, the delay since it was produced.
func (m *metrics) observeFreshness(ctx context.Context, now time.Time, it *item) {
	if !it.msg.DateUpdated.IsZero() {
		m.eventAge.Record(ctx, max(0, now.Sub(it.msg.DateUpdated).Seconds()))
	}
	for _, tk := range it.tickets {
		if tk.rec != nil && !tk.rec.Timestamp.IsZero() {
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
	x.final, x.nonFinal = set(attribute.String("result", "final")), set(attribute.String("result", "non_final"))
	for o := range x.byOutcome {
		x.byOutcome[o] = set(attribute.String("outcome", postflight.WriteOutcome(o).String()))
		x.retryBy[o] = set(attribute.String("cause", postflight.WriteOutcome(o).String()))
	}
	x.retryOpen = set(attribute.String("cause", "breaker_open"))
	if x.records, err = m.Int64Counter("postflight.ingest.records", metric.WithDescription("Kafka records read, by result.")); err != nil {
		return x, err
	}
	if x.outcomes, err = m.Int64Counter("postflight.ingest.outcomes", metric.WithDescription("Final events settled, by write outcome.")); err != nil {
		return x, err
	}
	if x.retries, err = m.Int64Counter("postflight.ingest.retries", metric.WithDescription("Messages retried, by cause.")); err != nil {
		return x, err
	}
	if x.deadLetters, err = m.Int64Counter("postflight.ingest.dead_letters", metric.WithDescription("Records written to the dead-letter topic.")); err != nil {
		return x, err
	}
	if x.knownSuperseded, err = m.Int64Counter("postflight.ingest.recent.superseded",
		metric.WithDescription("Records settled as superseded without a write: the store is known to hold their sequence or a higher one.")); err != nil {
		return x, err
	}
	if x.knownStored, err = m.Int64Counter("postflight.ingest.recent.stored",
		metric.WithDescription("Messages sent straight to the conditional UPDATE: the store is known to hold them, so an INSERT would fail.")); err != nil {
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
