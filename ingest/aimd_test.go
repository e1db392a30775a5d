package ingest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/postflight/postflight"
)

// failingWriter answers every message Unavailable (a fake: this test is
// about writeBatch's bookkeeping, not DynamoDB).
type failingWriter struct{}

func (failingWriter) WriteBatch(_ context.Context, _ []*postflight.Message, res []postflight.WriteResult) {
	for i := range res {
		res[i] = postflight.WriteResult{Outcome: postflight.Unavailable, Err: errors.New("503")}
	}
}

// TestFailedAttemptsDoNotRaiseLimit (issue 11, item 7): attempts the
// breaker refuses, and attempts that failed, are not successes: the AIMD
// limit must not grow on them, or it is at its maximum when DynamoDB
// returns.
func TestFailedAttemptsDoNotRaiseLimit(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	log := slog.New(slog.DiscardHandler)
	s := &Service{
		cfg: Config{RetryInitial: time.Millisecond, RetryMax: time.Millisecond}, w: failingWriter{}, log: log,
		tracer:  tnoop.NewTracerProvider().Tracer(""),
		batcher: newBatcher(maxBatch, 0, 1<<20),
		limit:   newAIMD(8, 1, 64, time.Hour),
	}
	s.pauses = newPauses(log, func() {}, func() {})
	s.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Timeout:     time.Hour,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
	})
	var err error
	if s.m, err = newMetrics(mp.Meter("test"), s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.writeBatch(ctx, []*item{testItem("a", 1, 10), testItem("b", 1, 10)})
	}()
	// Wait for 200 refused attempts (2 messages each), then stop.
	refused := func() int64 {
		var rm metricdata.ResourceMetrics
		_ = reader.Collect(ctx, &rm)
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "postflight.ingest.retries" {
					for _, dp := range sum.DataPoints {
						if v, _ := dp.Attributes.Value("cause"); v.AsString() == "breaker_open" {
							return dp.Value / 2
						}
					}
				}
			}
		}
		return 0
	}
	tick := time.NewTicker(5 * time.Millisecond)
	for refused() < 200 {
		<-tick.C
	}
	tick.Stop()
	cancel()
	<-done
	if l, _ := s.limit.current(); l > 8 {
		t.Fatalf("limit %.2f after 5 failed and 200 refused attempts, started at 8: failures raised it", l)
	}
}
