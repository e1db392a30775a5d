// Package api serves Postflight's REST API (DESIGN.md §3): one http.ServeMux
// with method patterns, one file per resource, problem+json errors, bearer
// tokens, and the embedded OpenAPI description.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight"
)

// Store is what the API needs of the message store, in the domain's terms
// only: the API compiles without the store or the AWS SDK. store.Store
// satisfies it (checked where they are wired, in cmd/postflight). Errors
// that match postflight.ErrNotFound, ErrPreconditionFailed, ErrConflict and
// ErrUnavailable are answered 404, 412, 409 and 503; a corrupt record and
// anything else is a 500.
type Store interface {
	Get(ctx context.Context, account, sid string) (postflight.Message, error)
	List(ctx context.Context, q postflight.ListQuery) (postflight.ListPage, error)
	Update(ctx context.Context, account, sid string, p postflight.Patch, ifRevision *int64) (postflight.Message, error)
	Delete(ctx context.Context, account, sid string) error
	RetentionDays(ctx context.Context, account string) (int, error)
	SetRetentionDays(ctx context.Context, account string, days int) (int, error)
}

// Config configures the API server. Zero fields take the defaults on them.
type Config struct {
	Listen string // default 127.0.0.1:8080

	// PageTokenKey signs page tokens. Every process behind one load balancer
	// needs the same key; empty means a random key per process (pages then
	// resume only on the process that issued them: fine for dev, not prod).
	PageTokenKey []byte
	PageTokenTTL time.Duration // default 24h

	DefaultRange time.Duration // list range when start and end are absent, default 30 days
	MaxRange     time.Duration // the longest range a list may ask for, default 400 days
	MaxBodyBytes int64         // request body limit, default 64 KiB

	RequestTimeout    time.Duration // per-request deadline, default 10s
	ReadHeaderTimeout time.Duration // default 5s
	IdleTimeout       time.Duration // default 2m
	ShutdownTimeout   time.Duration // graceful shutdown deadline, default 15s

	// Noisy neighbours (ratelimit.go, coalesce.go). Rates are requests per
	// second of every /v1 route; a negative rate means no limit. A zero
	// burst is one second's worth of the rate (at least 1).
	RatePerToken    float64 // per bearer token, default 500
	BurstPerToken   int
	RatePerAccount  float64 // per account, whichever token calls, default 200
	BurstPerAccount int
	// MaxLimiters bounds the token buckets kept per kind (least recently
	// used evicted), default 10,000.
	MaxLimiters int
	// MaxListInflight caps the list reads of DynamoDB running at once in the
	// process (each fans out to several DynamoDB queries),
	// default 32. ListQueueTimeout is how long a list waits for a slot
	// before a 503, default 1s.
	MaxListInflight  int
	ListQueueTimeout time.Duration

	// Events publishes POST /v1/events batches (events.go); nil answers 503.
	Events Publisher

	Now func() time.Time

	// TracerProvider, if not nil, traces every /v1 request (a server span
	// continuing the caller's traceparent).
	TracerProvider trace.TracerProvider
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	dur(&c.PageTokenTTL, 24*time.Hour)
	dur(&c.DefaultRange, 30*24*time.Hour)
	dur(&c.MaxRange, 400*24*time.Hour)
	dur(&c.RequestTimeout, 10*time.Second)
	dur(&c.ReadHeaderTimeout, 5*time.Second)
	dur(&c.IdleTimeout, 2*time.Minute)
	dur(&c.ShutdownTimeout, 15*time.Second)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.RatePerToken == 0 {
		c.RatePerToken = 500
	}
	if c.RatePerAccount == 0 {
		c.RatePerAccount = 200
	}
	burst := func(b *int, perSec float64) {
		if *b == 0 {
			*b = max(1, int(math.Ceil(perSec)))
		}
	}
	burst(&c.BurstPerToken, c.RatePerToken)
	burst(&c.BurstPerAccount, c.RatePerAccount)
	if c.MaxLimiters == 0 {
		c.MaxLimiters = 10_000
	}
	if c.MaxListInflight == 0 {
		c.MaxListInflight = 32
	}
	dur(&c.ListQueueTimeout, time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.MaxRange < c.DefaultRange {
		return fmt.Errorf("api: max range %s is shorter than the default range %s", c.MaxRange, c.DefaultRange)
	}
	if c.MaxBodyBytes < 1024 {
		return errors.New("api: max body bytes must be at least 1024")
	}
	if c.BurstPerToken < 0 || c.BurstPerAccount < 0 {
		return errors.New("api: rate limit bursts must not be negative")
	}
	if c.MaxLimiters < 1 {
		return fmt.Errorf("api: max limiters %d must be at least 1", c.MaxLimiters)
	}
	if c.MaxListInflight < 1 {
		return fmt.Errorf("api: max list in flight %d must be at least 1", c.MaxListInflight)
	}
	if c.RequestTimeout < 0 || c.ListQueueTimeout < 0 || c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 || c.ShutdownTimeout < 0 {
		return errors.New("api: timeouts must not be negative")
	}
	return nil
}

// Server is the HTTP API. Handler is safe for concurrent use.
type Server struct {
	cfg     Config
	st      Store
	auth    *Authenticator
	ready   func(context.Context) error
	metrics http.Handler
	log     *slog.Logger
	m       apiMetrics
	mux     *http.ServeMux
	limits  rateLimits
	lists   *listReads
}

// New returns a Server. ready reports readiness (Kafka and DynamoDB);
// metrics serves /metrics. mp may be nil.
func New(cfg Config, st Store, auth *Authenticator, ready func(context.Context) error, metrics http.Handler, log *slog.Logger, mp metric.MeterProvider) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.PageTokenKey) == 0 {
		cfg.PageTokenKey = randomKey()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	if metrics == nil {
		metrics = http.NotFoundHandler()
	}
	s := &Server{cfg: cfg, st: st, auth: auth, ready: ready, metrics: metrics, log: log,
		limits: newRateLimits(&cfg), lists: newListReads(&cfg)}
	meter := mp.Meter("github.com/postflight/postflight/api")
	var err error
	if s.m, err = newAPIMetrics(meter); err != nil {
		return nil, err
	}
	if err := observeListInflight(meter, s.lists); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	// Every /v1 route: authentication and authorization (401, 400, 403),
	// then the rate limits (429), then the handler.
	v1 := func(scope Scope, h http.HandlerFunc) http.HandlerFunc {
		return s.auth.requireScope(scope, s.limited(h))
	}
	mux.HandleFunc("GET /v1/accounts/{account_sid}/messages", v1(ScopeRead, s.listMessages))
	mux.HandleFunc("GET /v1/accounts/{account_sid}/messages/{sid}", v1(ScopeRead, s.getMessage))
	mux.HandleFunc("PATCH /v1/accounts/{account_sid}/messages/{sid}", v1(ScopeWrite, s.patchMessage))
	mux.HandleFunc("DELETE /v1/accounts/{account_sid}/messages/{sid}", v1(ScopeDelete, s.deleteMessage))
	mux.HandleFunc("GET /v1/accounts/{account_sid}/retention", v1(ScopeRead, s.getRetention))
	mux.HandleFunc("PUT /v1/accounts/{account_sid}/retention", v1(ScopeAdmin, s.putRetention))
	mux.HandleFunc("POST /v1/events", s.eventsRoute(s.postEvents))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /openapi.json", handleOpenAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeProblem(w, notFound()) })
	s.mux = mux
}

// Handler returns the API's handler with its middleware: panic recovery,
// request deadline, metrics, and problem+json for unknown routes and methods.
func (s *Server) Handler() http.Handler {
	return recoverPanics(s.log, s.traced(s.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		// Answer 405 ourselves: ServeMux's plain-text 405 is not problem+json.
		if _, pattern := s.mux.Handler(r); pattern == "/" {
			if allowed := allowedMethods(s.mux, r); len(allowed) > 0 {
				writeProblem(w, methodNotAllowed(allowed...))
				return
			}
		}
		s.mux.ServeHTTP(w, r)
	}))))
}

// allowedMethods lists the methods that have a route for r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := mux.Handler(probe); p != "/" && p != "" {
			out = append(out, m)
		}
	}
	return out
}

// Run serves on cfg.Listen until ctx is done, then shuts down gracefully
// within ShutdownTimeout. ln may be nil (Run listens itself).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.RequestTimeout + 5*time.Second,
		WriteTimeout:      s.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
		}
	}
	s.log.Info("api listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.lists.close() // list reads that outlived their requests end within RequestTimeout
	if err != nil {
		return fmt.Errorf("api shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			s.log.Warn("not ready", "err", err)
			p := serviceUnavailable(5 * time.Second)
			p.Detail = "not ready: " + err.Error()
			writeProblem(w, p)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
