package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// role is what one serve process does: in production ingest and the API
// run as separate fleets, so a Kafka outage never takes reads down and
// each scales on its own signal (lag, requests).
type role string

const (
	roleAll    role = "all"    // ingest and the API in one process (dev, small installs)
	roleIngest role = "ingest" // the Kafka pipeline; HTTP only for probes and /metrics
	roleAPI    role = "api"    // the REST API; never connects to Kafka
)

func parseRole(s string) (role, error) {
	switch r := role(s); r {
	case roleAll, roleIngest, roleAPI:
		return r, nil
	}
	return "", fmt.Errorf("--role %q: want ingest, api or all", s)
}

func (r role) ingests() bool { return r != roleAPI }
func (r role) serves() bool  { return r != roleIngest }

// readiness is what /readyz checks for a role. The API (roles api and all)
// is ready while DynamoDB answers, whatever Kafka does: a Kafka outage
// stops ingest, not reads. An ingest process is ready while DynamoDB
// answers and its own group and breaker are healthy (ingestReady). /healthz
// (liveness) never checks a dependency.
func (r role) readiness(ping, ingestReady func(context.Context) error) func(context.Context) error {
	if r == roleIngest {
		return func(ctx context.Context) error { return errors.Join(ping(ctx), ingestReady(ctx)) }
	}
	return ping
}

// opsServer is the ingest role's HTTP server: /healthz, /readyz and
// /metrics, nothing else (no API routes, no auth file).
type opsServer struct {
	listen  string
	ready   func(context.Context) error
	metrics http.Handler
	log     *slog.Logger
}

// run serves until ctx is done, then shuts down within 5 s. ln may be nil.
func (o *opsServer) run(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok", "")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := o.ready(rctx); err != nil {
			o.log.Warn("not ready", "err", err)
			writeStatus(w, http.StatusServiceUnavailable, "not ready", err.Error())
			return
		}
		writeStatus(w, http.StatusOK, "ready", "")
	})
	mux.Handle("GET /metrics", o.metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelWarn)}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("listen %s: %w", o.listen, err)
		}
	}
	o.log.Info("probes and metrics listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("probe server shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeStatus(w http.ResponseWriter, code int, status, detail string) {
	body := map[string]string{"status": status}
	if detail != "" {
		body["detail"] = detail
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
