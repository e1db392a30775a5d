package store

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/postflight/postflight"
)

type metrics struct {
	// Precomputed, and passed on with "...": no allocation per write.
	outcomeAttrs [postflight.NumWriteOutcomes][]metric.AddOption
	unitAttrs    unitAttrs

	writes    metric.Int64Counter     // by outcome
	requests  metric.Int64Counter     // by operation and result
	latency   metric.Float64Histogram // by operation
	retention metric.Int64Counter     // items re-stamped by the retention job
	corrupt   metric.Int64Counter     // stored records that could not be read

	writeUnits metric.Float64Counter // consumed by event writes, by op and table (capacity.go)
}

func newMetrics(m metric.Meter) (metrics, error) {
	var x metrics
	var err error
	for o := range x.outcomeAttrs {
		x.outcomeAttrs[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", postflight.WriteOutcome(o).String())))}
	}
	if x.writes, err = m.Int64Counter("postflight.store.writes", metric.WithDescription("Messages handed to the store, by outcome.")); err != nil {
		return x, err
	}
	if x.requests, err = m.Int64Counter("postflight.store.requests", metric.WithDescription("DynamoDB requests, by operation and result.")); err != nil {
		return x, err
	}
	if x.latency, err = m.Float64Histogram("postflight.store.request.duration", metric.WithUnit("s"),
		metric.WithDescription("DynamoDB request latency, by operation."),
		metric.WithExplicitBucketBoundaries(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)); err != nil {
		return x, err
	}
	x.unitAttrs = newUnitAttrs()
	if x.writeUnits, err = m.Float64Counter("postflight.store.write_units", metric.WithUnit("{WCU}"),
		metric.WithDescription("Write units DynamoDB billed for event writes, by statement kind (insert, update) and table (base, index).")); err != nil {
		return x, err
	}
	if x.retention, err = m.Int64Counter("postflight.store.retention.restamped", metric.WithDescription("Items whose TTL the retention job re-stamped.")); err != nil {
		return x, err
	}
	if x.corrupt, err = m.Int64Counter("postflight.store.corrupt_records", metric.WithDescription("Stored records whose packed data could not be read (unknown header, truncated, trailing bytes).")); err != nil {
		return x, err
	}
	return x, nil
}
