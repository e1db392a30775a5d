package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"
)

// OTLP is what the standard OTEL_* environment asks for: a TracerProvider
// exporting over OTLP (a no-op one when no endpoint is set) and, when an
// endpoint is set, a metric reader pushing the same instruments /metrics
// serves. Shutdown flushes both; call it once, after everything that makes
// spans has stopped.
type OTLP struct {
	Tracer   trace.TracerProvider
	Reader   sdkmetric.Reader // nil when metrics are not exported
	res      *resource.Resource
	Shutdown func(context.Context) error
}

// MetricOptions are the MeterProvider options that push metrics over OTLP
// (none when metrics are not exported); pass them to NewMetrics.
func (o *OTLP) MetricOptions() []sdkmetric.Option {
	if o.Reader == nil {
		return nil
	}
	return []sdkmetric.Option{sdkmetric.WithReader(o.Reader), sdkmetric.WithResource(o.res)}
}

// Enabled reports whether traces leave the process.
func (o *OTLP) Enabled() bool { _, noop := o.Tracer.(tnoop.TracerProvider); return !noop }

// NewOTLP reads the standard variables through getenv:
//
//	OTEL_SDK_DISABLED=true                     nothing is exported
//	OTEL_EXPORTER_OTLP_ENDPOINT                base URL; /v1/traces and /v1/metrics are appended
//	OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT  full URL of one signal (wins over the base)
//	OTEL_EXPORTER_OTLP_PROTOCOL                http/protobuf (the only one built in)
//	OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER  otlp (default when an endpoint is set) or none
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG  the spec's samplers (default parentbased_always_on)
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES  the resource (service.name defaults to "postflight")
//	OTEL_METRIC_EXPORT_INTERVAL                milliseconds between metric pushes (default 60000)
//
// Headers, timeout, compression and certificates (OTEL_EXPORTER_OTLP_HEADERS
// …) are read by the OTLP exporters themselves from the process environment.
// With no endpoint set, the result exports nothing and costs nothing.
func NewOTLP(ctx context.Context, getenv func(string) string, extra ...attribute.KeyValue) (*OTLP, error) {
	off := &OTLP{Tracer: tnoop.NewTracerProvider(), Shutdown: func(context.Context) error { return nil }}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return off, nil
	}
	if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is built in", p)
	}
	traceURL, err := signalURL(getenv, "TRACES", "/v1/traces")
	if err != nil {
		return nil, err
	}
	metricURL, err := signalURL(getenv, "METRICS", "/v1/metrics")
	if err != nil {
		return nil, err
	}
	if !exporterOn(getenv("OTEL_TRACES_EXPORTER")) {
		traceURL = ""
	}
	if !exporterOn(getenv("OTEL_METRICS_EXPORTER")) {
		metricURL = ""
	}
	if traceURL == "" && metricURL == "" {
		return off, nil
	}
	res, err := Resource(getenv, extra...)
	if err != nil {
		return nil, err
	}
	o := &OTLP{Tracer: tnoop.NewTracerProvider(), res: res}
	var shutdowns []func(context.Context) error
	if traceURL != "" {
		sampler, err := Sampler(getenv)
		if err != nil {
			return nil, err
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(traceURL))
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		// The batch processor's queue is bounded: when the collector is slow
		// or gone, spans are dropped, never the ingest path blocked.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
		o.Tracer = tp
		shutdowns = append(shutdowns, tp.Shutdown)
	}
	if metricURL != "" {
		interval := time.Minute
		if v := getenv("OTEL_METRIC_EXPORT_INTERVAL"); v != "" {
			ms, err := strconv.Atoi(v)
			if err != nil || ms <= 0 {
				return nil, fmt.Errorf("OTEL_METRIC_EXPORT_INTERVAL=%q: want positive milliseconds", v)
			}
			interval = time.Duration(ms) * time.Millisecond
		}
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(metricURL))
		if err != nil {
			return nil, fmt.Errorf("otlp metric exporter: %w", err)
		}
		o.Reader = sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))
		// The MeterProvider that owns the reader shuts it down.
	}
	o.Shutdown = func(ctx context.Context) error {
		var errs []error
		for _, f := range shutdowns {
			errs = append(errs, f(ctx))
		}
		return errors.Join(errs...)
	}
	return o, nil
}

func exporterOn(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || v == "otlp"
}

// signalURL is the signal's own endpoint, or the base endpoint with path
// appended, or "" when neither is set.
func signalURL(getenv func(string) string, signal, path string) (string, error) {
	name := "OTEL_EXPORTER_OTLP_" + signal + "_ENDPOINT"
	u := getenv(name)
	if u == "" {
		name = "OTEL_EXPORTER_OTLP_ENDPOINT"
		if base := getenv(name); base != "" {
			u = strings.TrimRight(base, "/") + path
		}
	}
	if u == "" {
		return "", nil
	}
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("%s=%q: want an http or https URL", name, u)
	}
	return u, nil
}

// Resource is service.name (OTEL_SERVICE_NAME, default "postflight"), the
// attributes of OTEL_RESOURCE_ATTRIBUTES (key=value,… percent-encoded) and
// extra (the process's role).
func Resource(getenv func(string) string, extra ...attribute.KeyValue) (*resource.Resource, error) {
	var kvs []attribute.KeyValue
	name := "postflight"
	if v := getenv("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		for _, pair := range strings.Split(v, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %q is not key=value", pair)
			}
			dec, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil {
				return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %s: %w", k, err)
			}
			if k == string(semconv.ServiceNameKey) {
				name = dec
				continue
			}
			kvs = append(kvs, attribute.String(k, dec))
		}
	}
	if v := getenv("OTEL_SERVICE_NAME"); v != "" {
		name = v
	}
	kvs = append(kvs, semconv.ServiceName(name))
	kvs = append(kvs, extra...)
	return resource.NewWithAttributes(semconv.SchemaURL, kvs...), nil
}

// Sampler is OTEL_TRACES_SAMPLER with OTEL_TRACES_SAMPLER_ARG, as the
// specification names them. The default, parentbased_always_on, samples
// what the producer sampled: the traceparent's flag decides.
func Sampler(getenv func(string) string) (sdktrace.Sampler, error) {
	arg := getenv("OTEL_TRACES_SAMPLER_ARG")
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio in [0, 1]", arg)
		}
		return r, nil
	}
	switch s := getenv("OTEL_TRACES_SAMPLER"); s {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if s == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: not a sampler this build knows", s)
	}
}
