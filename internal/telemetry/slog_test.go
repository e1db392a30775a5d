package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestTraceHandlerAddsIDs: a line logged with a span in its context carries
// the span's trace_id and span_id (also through With); one without does not.
func TestTraceHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewTraceHandler(slog.NewJSONHandler(&buf, nil))).With("component", "api")
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, sp := tp.Tracer("t").Start(context.Background(), "op")
	log.WarnContext(ctx, "store error")
	sp.End()
	log.Warn("no span")
	dec := json.NewDecoder(&buf)
	var with, without map[string]any
	if err := dec.Decode(&with); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&without); err != nil {
		t.Fatal(err)
	}
	if with["trace_id"] != sp.SpanContext().TraceID().String() || with["span_id"] != sp.SpanContext().SpanID().String() || with["component"] != "api" {
		t.Errorf("line in a span: %v, want trace_id %s span_id %s", with, sp.SpanContext().TraceID(), sp.SpanContext().SpanID())
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a span has a trace_id: %v", without)
	}
}
