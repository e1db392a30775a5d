package ingest_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// TestTraceparentContinuesIntoWriteSpan: a record's W3C traceparent (and
// tracestate) header becomes the remote parent of its "postflight.ingest"
// consumer span, whose child "postflight.write" span covers the DynamoDB
// write, in the producer's trace; the batch's "postflight.write.batch" span
// links to it. A record without the header starts no trace of its own.
func TestTraceparentContinuesIntoWriteSpan(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	r.startConsumer("c1", consumerOpts{tp: tp})

	account := randomSID("AC")
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	type traced struct {
		sid     string
		traceID trace.TraceID
		spanID  trace.SpanID
	}
	var want []traced
	var recs []*sarama.ProducerMessage
	for range 3 {
		tr := traced{sid: randomSID("SM")}
		copy(tr.traceID[:], []byte(randomHex(8)))
		copy(tr.spanID[:], []byte(randomHex(4)))
		rec := record(t, newEvent(account, tr.sid, 4, postflight.StatusDelivered, created), ingest.SchemaIDv2)
		rec.Headers = []sarama.RecordHeader{
			{Key: []byte("traceparent"), Value: []byte("00-" + tr.traceID.String() + "-" + tr.spanID.String() + "-01")},
			{Key: []byte("tracestate"), Value: []byte("vendor=abc")},
		}
		want = append(want, tr)
		recs = append(recs, rec)
	}
	recs = append(recs, record(t, newEvent(account, randomSID("SM"), 4, postflight.StatusDelivered, created), ingest.SchemaIDv2))
	r.produce(recs, nil)
	r.waitCommitted(time.Minute)

	spans := sr.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	if n := len(byName["postflight.ingest"]); n != len(want) {
		t.Errorf("%d postflight.ingest spans, want one per traced record (%d)", n, len(want))
	}
	for _, tr := range want {
		var ingestSpan, writeSpan sdktrace.ReadOnlySpan
		for _, s := range byName["postflight.ingest"] {
			if s.SpanContext().TraceID() == tr.traceID {
				ingestSpan = s
			}
		}
		if ingestSpan == nil {
			t.Errorf("%s: no postflight.ingest span in trace %s", tr.sid, tr.traceID)
			continue
		}
		if p := ingestSpan.Parent(); !p.IsRemote() || p.SpanID() != tr.spanID {
			t.Errorf("%s: ingest span's parent is %s (remote %v), want the producer's span %s", tr.sid, p.SpanID(), p.IsRemote(), tr.spanID)
		}
		if ingestSpan.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("%s: ingest span kind %s, want consumer", tr.sid, ingestSpan.SpanKind())
		}
		if ts := ingestSpan.SpanContext().TraceState().String(); ts != "vendor=abc" {
			t.Errorf("%s: tracestate %q, want vendor=abc carried on", tr.sid, ts)
		}
		for _, s := range byName["postflight.write"] {
			if s.SpanContext().TraceID() == tr.traceID && s.Parent().SpanID() == ingestSpan.SpanContext().SpanID() {
				writeSpan = s
			}
		}
		if writeSpan == nil {
			t.Errorf("%s: no postflight.write span under its ingest span", tr.sid)
			continue
		}
		linked := false
		for _, s := range byName["postflight.write.batch"] {
			for _, l := range s.Links() {
				linked = linked || l.SpanContext.SpanID() == ingestSpan.SpanContext().SpanID()
			}
		}
		if !linked {
			t.Errorf("%s: no postflight.write.batch span links to its ingest span", tr.sid)
		}
	}
}
