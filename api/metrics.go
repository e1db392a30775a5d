package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

type apiMetrics struct {
	requests  metric.Int64Counter
	latency   metric.Float64Histogram
	throttled metric.Int64Counter // 429s and 503s of the noisy-neighbour limits, by limit
	coalesced metric.Int64Counter // list requests answered by another request's read
}

func newAPIMetrics(m metric.Meter) (apiMetrics, error) {
	var x apiMetrics
	var err error
	if x.requests, err = m.Int64Counter("postflight.api.requests", metric.WithDescription("API requests, by route and status.")); err != nil {
		return x, err
	}
	if x.latency, err = m.Float64Histogram("postflight.api.request.duration", metric.WithUnit("s"),
		metric.WithDescription("API request latency, by route."),
		metric.WithExplicitBucketBoundaries(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)); err != nil {
		return x, err
	}
	if x.throttled, err = m.Int64Counter("postflight.api.throttled",
		metric.WithDescription("Requests refused by a noisy-neighbour limit, by limit (token, account: 429; list_inflight: 503).")); err != nil {
		return x, err
	}
	x.coalesced, err = m.Int64Counter("postflight.api.list.coalesced",
		metric.WithDescription("List requests answered by an identical concurrent request's DynamoDB read."))
	return x, err
}

// observeListInflight reports the list reads holding a slot.
func observeListInflight(m metric.Meter, l *listReads) error {
	_, err := m.Int64ObservableGauge("postflight.api.list.inflight",
		metric.WithDescription("List reads of DynamoDB in flight (capped by MaxListInflight)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(l.inflight()))
			return nil
		}))
	return err
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		_, route := s.mux.Handler(r)
		attrs := metric.WithAttributes(attribute.String("route", route), attribute.String("status", strconv.Itoa(sw.status)))
		s.m.requests.Add(r.Context(), 1, attrs)
		s.m.latency.Record(r.Context(), time.Since(start).Seconds(), metric.WithAttributes(attribute.String("route", route)))
	})
}
