package telemetry

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestNewOTLPFromEnv: off unless an endpoint is set, and the standard
// variables are read as the specification names them; bad values are
// errors naming the variable, not silent defaults.
func TestNewOTLPFromEnv(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		getenv        func(string) string
		traces, metrs bool
		err           string
	}{
		{name: "unset", getenv: env()},
		{name: "endpoint", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), traces: true, metrs: true},
		{name: "traces only", getenv: env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces"), traces: true},
		{name: "metrics exporter none", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_METRICS_EXPORTER", "none"), traces: true},
		{name: "sdk disabled", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_SDK_DISABLED", "true")},
		{name: "grpc", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), err: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "bad url", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318"), err: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "bad sampler", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_TRACES_SAMPLER", "sometimes"), err: "OTEL_TRACES_SAMPLER"},
		{name: "bad ratio", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "2"), err: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "bad interval", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_METRIC_EXPORT_INTERVAL", "soon"), err: "OTEL_METRIC_EXPORT_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := NewOTLP(ctx, tt.getenv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer o.Shutdown(ctx)
			if o.Enabled() != tt.traces || (o.Reader != nil) != tt.metrs {
				t.Errorf("traces %v metrics %v, want %v %v", o.Enabled(), o.Reader != nil, tt.traces, tt.metrs)
			}
			if o.Reader != nil {
				_ = o.Reader.Shutdown(ctx)
			}
		})
	}
}

func TestResourceFromEnv(t *testing.T) {
	r, err := Resource(env("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs, deployment.environment=prod%20eu", "OTEL_SERVICE_NAME", "pf"),
		attribute.String("postflight.role", "api"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range r.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	want := map[string]string{"service.name": "pf", "deployment.environment": "prod eu", "postflight.role": "api"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, err := Resource(env("OTEL_RESOURCE_ATTRIBUTES", "novalue")); err == nil {
		t.Error("OTEL_RESOURCE_ATTRIBUTES=novalue accepted")
	}
}
