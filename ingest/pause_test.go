package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric/noop"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/postflight/postflight"
)

// staleWriter refuses its first calls as the store does when its account
// configuration is stale, then applies (a fake: the store's side is
// TestStaleConfigStopsWrites on DynamoDB Local).
type staleWriter struct {
	calls   int
	refuse  int
	sawStop []bool // per call: was ingest paused for stale config then?
	s       *Service
}

func (w *staleWriter) WriteBatch(_ context.Context, _ []*postflight.Message, res []postflight.WriteResult) {
	w.calls++
	w.sawStop = append(w.sawStop, w.s.pauses.active(pauseStaleConfig))
	for i := range res {
		if w.calls <= w.refuse {
			res[i] = postflight.WriteResult{Outcome: postflight.Misconfigured, Err: fmt.Errorf("%w: last reloaded 25s ago", postflight.ErrStaleConfig)}
		} else {
			res[i] = postflight.WriteResult{Outcome: postflight.Applied}
		}
	}
}

// TestStaleConfigPausesIngest (issue 11, item 5): a write refused for stale
// configuration pauses consumption for that cause (readiness names it, the
// breaker does not count it); the first write that succeeds resumes it.
func TestStaleConfigPausesIngest(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	w := &staleWriter{refuse: 3}
	paused, resumed := 0, 0
	s := &Service{
		cfg: Config{RetryInitial: time.Millisecond, RetryMax: time.Millisecond}, w: w, log: log,
		tracer:  tnoop.NewTracerProvider().Tracer(""),
		batcher: newBatcher(maxBatch, 0, 1<<20),
		limit:   newAIMD(8, 1, 64, time.Hour),
		breaker: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 2 }}),
	}
	w.s = s
	s.pauses = newPauses(log, func() { paused++ }, func() { resumed++ })
	var err error
	if s.m, err = newMetrics(noop.NewMeterProvider().Meter(""), s); err != nil {
		t.Fatal(err)
	}
	tr := newTracker(func(int64) {})
	tr.add(0)
	it := testItem("a", 1, 10)
	it.tickets = []ticket{{t: tr, offset: 0}}
	s.writeBatch(context.Background(), []*item{it})
	if want := []bool{false, true, true, true}; fmt.Sprint(w.sawStop) != fmt.Sprint(want) {
		t.Errorf("paused for stale config at each call: %v, want %v", w.sawStop, want)
	}
	if paused != 1 || resumed != 1 {
		t.Errorf("paused %d, resumed %d times; want once each", paused, resumed)
	}
	if err := s.pauses.err(); err != nil {
		t.Errorf("still paused after a successful write: %v", err)
	}
	if st := s.breaker.State(); st != gobreaker.StateClosed {
		t.Errorf("breaker %v: stale configuration is not a DynamoDB failure", st)
	}
}
