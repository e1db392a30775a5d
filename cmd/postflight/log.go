package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/postflight/postflight/internal/telemetry"
)

// newLogger logs JSON to w; a line logged with a context that carries a span
// gets its trace_id and span_id.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	return slog.New(telemetry.NewTraceHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))), nil
}
