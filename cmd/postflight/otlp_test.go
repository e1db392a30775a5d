package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// otlpReceiver is an in-process OTLP/HTTP receiver (protobuf), the part of
// an OpenTelemetry Collector this test needs: it keeps every span and the
// names of every metric exported to it.
type otlpReceiver struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics map[string]bool
	service map[string]bool // service.name of every resource seen
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var resp proto.Message
	switch req.URL.Path {
	case "/v1/traces":
		var m coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range m.ResourceSpans {
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					r.service[a.Value.GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		resp = &coltracepb.ExportTraceServiceResponse{}
	case "/v1/metrics":
		var m colmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range m.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, x := range sm.Metrics {
					r.metrics[x.Name] = true
				}
			}
		}
		resp = &colmetricpb.ExportMetricsServiceResponse{}
	default:
		http.NotFound(w, req)
		return
	}
	b, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// inTrace returns the spans of trace id, by name.
func (r *otlpReceiver) inTrace(id []byte) map[string][]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]*tracepb.Span{}
	for _, s := range r.spans {
		if bytes.Equal(s.TraceId, id) {
			out[s.Name] = append(out[s.Name], s)
		}
	}
	return out
}

// TestOTLPTraceFollowsAnEvent: serve configured only by the standard OTEL_*
// environment exports, to an in-process OTLP receiver, one trace per event
// produced with a traceparent: the consumer span (child of the producer's
// span) → the write span → the batch span → the DynamoDB request span
// (linked to the event's span) → the commit span, all with the producer's
// trace id; and an API request's server span with the DynamoDB request it
// made, in the caller's trace. Metrics (freshness included) are pushed too.
// Real kfake and DynamoDB Local; the receiver stands in for a collector.
func TestOTLPTraceFollowsAnEvent(t *testing.T) {
	t.Parallel()
	rcv := &otlpReceiver{metrics: map[string]bool{}, service: map[string]bool{}}
	col := httptest.NewServer(rcv)
	t.Cleanup(col.Close)
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": col.URL,
		"OTEL_SERVICE_NAME":           "postflight-test",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test",
		"OTEL_METRIC_EXPORT_INTERVAL": "200",
	}
	account := randomSID("AC")
	s := startStackEnv(t, account, func(k string) string { return env[k] })

	traceID, producerSpan := randomBytes(16), randomBytes(8)
	sid := randomSID("SM")
	rec := record(t, newEvent(account, sid, 3, postflight.StatusDelivered, time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)), ingest.SchemaIDv2)
	rec.Headers = []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte("00-" + hex.EncodeToString(traceID) + "-" + hex.EncodeToString(producerSpan) + "-01")}}
	produce(t, s.brokers, rec)
	eventually(t, time.Minute, "message stored", func() bool {
		return s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+sid, nil) == http.StatusOK
	})

	apiTrace, apiParent := randomBytes(16), randomBytes(8)
	req, _ := http.NewRequest(http.MethodGet, s.api+"/v1/accounts/"+account+"/messages/"+sid, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("traceparent", "00-"+hex.EncodeToString(apiTrace)+"-"+hex.EncodeToString(apiParent)+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, time.Minute, "freshness metric pushed", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.metrics["postflight.ingest.event.age"] && rcv.metrics["postflight.ingest.delay"]
	})
	s.stop(t) // flushes the span exporter

	spans := rcv.inTrace(traceID)
	one := func(name string) *tracepb.Span {
		t.Helper()
		if len(spans[name]) != 1 {
			t.Fatalf("%d %q spans in the producer's trace, want 1 (have %v)", len(spans[name]), name, names(spans))
		}
		return spans[name][0]
	}
	consume := one("postflight.ingest")
	if !bytes.Equal(consume.ParentSpanId, producerSpan) || consume.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("consumer span: parent %x kind %v, want the producer's span %x, consumer", consume.ParentSpanId, consume.Kind, producerSpan)
	}
	write := one("postflight.write")
	if !bytes.Equal(write.ParentSpanId, consume.SpanId) {
		t.Errorf("write span's parent %x, want the consumer span %x", write.ParentSpanId, consume.SpanId)
	}
	batch := one("postflight.write.batch")
	ddb := spans["DynamoDB.BatchExecuteStatement"]
	if len(ddb) == 0 {
		t.Fatalf("no DynamoDB request span in the producer's trace (have %v)", names(spans))
	}
	for _, d := range ddb {
		if !bytes.Equal(d.ParentSpanId, batch.SpanId) || d.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("DynamoDB span: parent %x kind %v, want the batch span %x, client", d.ParentSpanId, d.Kind, batch.SpanId)
		}
		linked := false
		for _, l := range d.Links {
			linked = linked || bytes.Equal(l.SpanId, consume.SpanId)
		}
		if !linked {
			t.Errorf("DynamoDB span does not link to the event's span")
		}
	}
	commit := one("postflight.commit")
	if !bytes.Equal(commit.ParentSpanId, consume.SpanId) {
		t.Errorf("commit span's parent %x, want the consumer span %x", commit.ParentSpanId, consume.SpanId)
	}

	apiSpans := rcv.inTrace(apiTrace)
	route := "GET /v1/accounts/{account_sid}/messages/{sid}"
	if len(apiSpans[route]) != 1 {
		t.Fatalf("API trace: %v, want one %q server span", names(apiSpans), route)
	}
	srv := apiSpans[route][0]
	if !bytes.Equal(srv.ParentSpanId, apiParent) || srv.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("API span: parent %x kind %v, want the caller's %x, server", srv.ParentSpanId, srv.Kind, apiParent)
	}
	var storeCalls int
	for name, ss := range apiSpans {
		for _, x := range ss {
			if name != route && bytes.Equal(x.ParentSpanId, srv.SpanId) {
				storeCalls++
			}
		}
	}
	if storeCalls == 0 {
		t.Errorf("API trace has no DynamoDB request under the server span: %v", names(apiSpans))
	}
	if !rcv.service["postflight-test"] {
		t.Errorf("resources seen %v, want service.name from OTEL_SERVICE_NAME", rcv.service)
	}
}

func names(m map[string][]*tracepb.Span) []string {
	var out []string
	for k, v := range m {
		for range v {
			out = append(out, k)
		}
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + rand.IntN(255))
	}
	return b
}
