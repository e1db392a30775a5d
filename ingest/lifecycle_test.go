package ingest_test

import (
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// TestMetricsCallbackUnregistered (issue 11, item 7): once Run returned,
// the Service's observable gauges are no longer reported (their callback
// is unregistered), so a stopped Service is not kept alive and observed by
// the process's meter provider.
func TestMetricsCallbackUnregistered(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c := r.startConsumer("c1", consumerOpts{mp: mp})
	if _, ok := gaugeValue(t.Context(), reader, "postflight.ingest.pending.bytes"); !ok {
		t.Fatal("no pending-bytes gauge while running")
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	if v, ok := gaugeValue(t.Context(), reader, "postflight.ingest.pending.bytes"); ok {
		t.Fatalf("pending-bytes gauge still reported (%d) after Run returned", v)
	}
}
