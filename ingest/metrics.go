package ingest

import (
	"context"

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

	reg metric.Registration // the gauges' callback; unregistered when Run returns
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
