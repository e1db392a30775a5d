package ingest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight"
)

// The per-record counters live in atomics and are reported by a callback
// (counted): each collection must report them as the monotonic cumulative
// counters they were, with the same names and attributes, a series only
// from its first count on, and still after Run unregistered the gauges.
func TestCountedReportedAsCounters(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	log := slog.New(slog.DiscardHandler)
	s := &Service{
		cfg: Config{RetryInitial: time.Millisecond, RetryMax: time.Millisecond}, log: log,
		batcher: newBatcher(maxBatch, 0, 1<<20),
		limit:   newAIMD(8, 1, 64, time.Hour),
	}
	s.pauses = newPauses(log, func() {}, func() {})
	s.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{})
	var err error
	if s.m, err = newMetrics(mp.Meter("test"), s); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sums := func() map[string]int64 {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				sum, ok := m.Data.(metricdata.Sum[int64])
				if !ok || m.Name == "postflight.ingest.retries" || m.Name == "postflight.ingest.dead_letters" {
					continue
				}
				if !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: monotonic %v, temporality %v", m.Name, sum.IsMonotonic, sum.Temporality)
				}
				for _, dp := range sum.DataPoints {
					got[m.Name+" "+dp.Attributes.Encoded(attribute.DefaultEncoder())] = dp.Value
				}
			}
		}
		return got
	}
	if got := sums(); len(got) != 0 {
		t.Errorf("before any count: %v, want no series", got)
	}
	for range 3 {
		s.m.n.final.Add(1)
	}
	s.m.n.nonFinal.Add(1)
	s.m.n.deadLettered("avro")
	s.m.n.deadLettered("avro")
	s.m.n.deadLettered("frame")
	s.m.n.outcomes[postflight.Applied].Add(2)
	s.m.n.outcomes[postflight.Superseded].Add(1)
	s.m.n.knownSuperseded.Add(4)
	s.m.n.knownStored.Add(5)
	want := map[string]int64{
		"postflight.ingest.records result=final":                               3,
		"postflight.ingest.records result=non_final":                           1,
		"postflight.ingest.records result=dead_letter,stage=avro":              2,
		"postflight.ingest.records result=dead_letter,stage=frame":             1,
		"postflight.ingest.outcomes outcome=" + postflight.Applied.String():    2,
		"postflight.ingest.outcomes outcome=" + postflight.Superseded.String(): 1,
		"postflight.ingest.recent.superseded ":                                 4,
		"postflight.ingest.recent.stored ":                                     5,
	}
	check := func(when string) {
		t.Helper()
		got := sums()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %q = %d, want %d", when, k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: series %v, want %v", when, got, want)
		}
	}
	check("counted")
	check("collected again") // cumulative: the same values, not the difference
	_ = s.m.reg.Unregister() // as Run does when it returns
	check("after Run")
}

// A traced record's freshness measurements carry its trace as an exemplar
// (the SDK's default trace-based filter); an untraced record's carry none.
func TestFreshnessExemplarsNameTheRecordsTrace(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	s := &Service{batcher: newBatcher(maxBatch, 0, 1<<20), limit: newAIMD(8, 1, 64, time.Hour)}
	s.pauses = newPauses(slog.New(slog.DiscardHandler), func() {}, func() {})
	s.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{})
	var err error
	if s.m, err = newMetrics(mp.Meter("test"), s); err != nil {
		t.Fatal(err)
	}
	_, span := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "postflight.ingest")
	defer span.End()
	now := time.Now()
	traced, untraced := testItem("a", 1, 10), testItem("b", 1, 10)
	traced.msg.DateUpdated, untraced.msg.DateUpdated = now.Add(-time.Second), now.Add(-time.Second)
	traced.tickets = []ticket{{rec: &sarama.ConsumerMessage{Timestamp: now.Add(-time.Second)}, span: span}}
	untraced.tickets = []ticket{{rec: &sarama.ConsumerMessage{Timestamp: now.Add(-time.Second)}}}
	s.m.observeFreshness(now, traced)
	s.m.observeFreshness(now, untraced)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	want := span.SpanContext().TraceID()
	seen := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok || (m.Name != "postflight.ingest.delay" && m.Name != "postflight.ingest.event.age") {
				continue
			}
			seen++
			for _, dp := range h.DataPoints {
				if dp.Count != 2 {
					t.Errorf("%s: %d measurements, want 2", m.Name, dp.Count)
				}
				if len(dp.Exemplars) != 1 || trace.TraceID(dp.Exemplars[0].TraceID) != want {
					t.Errorf("%s: exemplars %+v, want one of trace %s", m.Name, dp.Exemplars, want)
				}
			}
		}
	}
	if seen != 2 {
		t.Fatalf("%d freshness histograms collected, want 2", seen)
	}
}
