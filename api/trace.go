package api

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"
)

// traced gives every /v1 request a server span named for its route,
// continuing the caller's W3C traceparent; the store's DynamoDB requests
// made under it are its children (awsconf.WithTracing). Probes and /metrics
// are not traced. Without Config.TracerProvider (or with a no-op one) it is
// next itself.
func (s *Server) traced(next http.Handler) http.Handler {
	if _, off := s.cfg.TracerProvider.(tnoop.TracerProvider); off || s.cfg.TracerProvider == nil {
		return next
	}
	tracer := s.cfg.TracerProvider.Tracer("github.com/postflight/postflight/api")
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		_, route := s.mux.Handler(r)
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, sp := tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
		defer sp.End()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		sp.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			sp.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}
