package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/postflight/postflight/internal/awsconf"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"

	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/telemetry"
	"github.com/postflight/postflight/store"
)

// The API declares what it needs of the store in the domain's terms.
var _ api.Store = (*store.Store)(nil)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("postflight serve", stderr)
	var f serveFlags
	f.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if f.authFile == "" && f.role != string(roleIngest) {
		return errors.New("serve needs --auth-file (or POSTFLIGHT_AUTH_FILE)")
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, f, getenv, log, nil)
}

// serve runs ingest and the API until ctx is done. ln, if not nil, is the
// API's listener (tests pass one on a free port).
func serve(ctx context.Context, f serveFlags, getenv func(string) string, log *slog.Logger, ln net.Listener) error {
	if f.gogc > 0 {
		debug.SetGCPercent(f.gogc)
	}
	role, err := parseRole(f.role)
	if err != nil {
		return err
	}
	otl, err := telemetry.NewOTLP(ctx, getenv, attribute.String("postflight.role", string(role)))
	if err != nil {
		return err
	}
	defer otl.Shutdown(context.WithoutCancel(ctx)) // runs last: flushes the spans of the drain
	tel, err := telemetry.NewMetrics(otl.MetricOptions()...)
	if err != nil {
		return err
	}
	defer tel.Provider.Shutdown(context.WithoutCancel(ctx))
	db, err := awsconf.DynamoClient(ctx, f.dynamodbEndpoint, getenv, f.dynamodbAttemptTimeout)
	if err != nil {
		return err
	}
	if otl.Enabled() {
		db = awsconf.WithTracing(db, otl.Tracer)
	}
	// Hot-account detection sees this process's share of each account's
	// traffic; ingest knows the share (partitions held of the topic's). in is
	// set below, before Store.Run starts calling this.
	var in *ingest.Service
	fleetScale := func() float64 {
		if in == nil {
			return 1
		}
		return in.FleetScale()
	}
	st, err := store.New(db, store.Config{
		Table: f.table, DefaultShards: f.defaultShards, DefaultRetentionDays: f.retentionDays,
		ConfigRefresh: f.configRefresh, Restamp: store.RestampConfig{Rate: f.restampRate},
		HotFleetScale: fleetScale, AttemptTimeout: f.dynamodbAttemptTimeout,
	}, log.With("component", "store"), tel.Provider)
	if err != nil {
		return err
	}
	if err := st.RefreshAccounts(ctx); err != nil {
		return fmt.Errorf("initial account config load (does table %s exist? run 'postflight table create'): %w", f.table, err)
	}
	if role.ingests() {
		var schemas ingest.SchemaSource = ingest.StaticSchemas{}
		if f.schemaRegistry != "" {
			if schemas, err = ingest.NewRegistrySchemas(f.schemaRegistry, &http.Client{Timeout: 10 * time.Second}); err != nil {
				return err
			}
		}
		icfg := ingest.Config{
			Brokers: splitList(f.brokers), Topic: f.topic, DLQTopic: f.dlqTopic, Group: f.group, DLQMaxBytes: f.dlqMaxBytes,
			DrainTimeout: f.drainTimeout, MaxConcurrency: f.maxConcurrency, MaxPendingMB: f.maxPendingMB, Linger: f.linger,
			RecentPerPartition: f.recentPerPart,
		}
		dec := ingest.NewDecoder(schemas, st.Config().MaxClockSkew, nil)
		in, err = ingest.New(icfg, st, dec, log.With("component", "ingest"), tel.Provider, otl.Tracer)
		if err != nil {
			return err
		}
	}
	if !role.serves() {
		ops := &opsServer{listen: f.listen, ready: role.readiness(st.Ping, in.Ready), metrics: tel.Handler, log: log.With("component", "probes")}
		return runRole(ctx, f, log, in, st, func(ctx context.Context) error { return ops.run(ctx, ln) }, nil)
	}
	if f.pageTokenKey == "" {
		log.Warn("no --page-token-key: page tokens are signed with a random per-process key and resume only on this process; set the same key on every API process")
	}
	auth, err := api.NewAuthenticator(f.authFile)
	if err != nil {
		return err
	}
	events := newPublisher(f, st.Config().MaxClockSkew, log.With("component", "events"))
	defer events.Close() // after the API has stopped
	var ingestReady func(context.Context) error
	if in != nil {
		ingestReady = in.Ready
	}
	ready := role.readiness(st.Ping, ingestReady)
	srv, err := api.New(api.Config{
		Listen: f.listen, PageTokenKey: []byte(f.pageTokenKey), RequestTimeout: f.requestTimeout,
		RatePerToken: f.ratePerToken, BurstPerToken: f.burstPerToken,
		RatePerAccount: f.ratePerAccount, BurstPerAccount: f.burstPerAccount,
		MaxListInflight: f.maxListInflight, ListQueueTimeout: f.listQueueTimeout, Events: events,
		TracerProvider: otl.Tracer,
	}, st, auth, ready,
		tel.Handler, log.With("component", "api"), tel.Provider)
	if err != nil {
		return err
	}

	return runRole(ctx, f, log, in, st, func(ctx context.Context) error { return srv.Run(ctx, ln) },
		func(ctx context.Context) error { return reloadOnHUP(ctx, auth, log) })
}

// runRole runs the role's parts until ctx is done: ingest (if in is not
// nil), the store's background work, the HTTP server (the API or the
// probes) and the auth reloader (if not nil). Shutdown order: ingest stops
// reading, drains and commits; then the HTTP server shuts down gracefully
// (it keeps answering while ingest drains).
func runRole(ctx context.Context, f serveFlags, log *slog.Logger, in *ingest.Service, st *store.Store,
	httpRun, reload func(context.Context) error) error {
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	g, gctx := errgroup.WithContext(ctx)
	if err := startPprof(gctx, g, f.pprofListen, log); err != nil {
		return err
	}
	g.Go(func() error {
		defer stopHTTP()
		if in == nil {
			<-gctx.Done()
			return nil
		}
		return in.Run(gctx)
	})
	g.Go(func() error { return st.Run(gctx) })
	g.Go(func() error {
		err := httpRun(httpCtx)
		if err != nil && gctx.Err() == nil {
			return err
		}
		return nil
	})
	if reload != nil {
		g.Go(func() error { return reload(gctx) })
	}
	log.Info("postflight serving", "role", f.role, "brokers", f.brokers, "topic", f.topic, "table", f.table, "listen", f.listen)
	return g.Wait()
}

// reloadOnHUP reloads the auth file on SIGHUP until ctx is done.
func reloadOnHUP(ctx context.Context, auth *api.Authenticator, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if err := auth.Reload(); err != nil {
				log.Error("auth file reload failed; keeping the previous tokens", "err", err)
			} else {
				log.Info("auth file reloaded", "tokens", auth.Tokens().Len(), "names", auth.Tokens().Names())
			}
		}
	}
}
