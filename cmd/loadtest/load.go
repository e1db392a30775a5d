package main

import (
	"context"
	"fmt"
	"github.com/postflight/postflight/internal/awsconf"
	"io"
	"log/slog"
	"strings"

	"github.com/postflight/postflight/loadtest"
	"github.com/postflight/postflight/store"
)

// runLoad is `loadtest run`: drive traffic through the service (or straight
// into the table), verify it, and report (DESIGN.md §4). loadtest.Run does
// the work; this is flags and wiring.
func runLoad(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := loadtest.DefaultRunConfig()
	fs := newFlagSet("run", stderr)
	brokers := fs.String("brokers", strings.Join(cfg.Brokers, ","), "Kafka brokers, comma-separated")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "Kafka topic the service consumes")
	fs.StringVar(&cfg.Service, "service", cfg.Service, "base URL of the service's REST API")
	fs.StringVar(&cfg.Token, "token", "", "bearer token for the API (better: LOADTEST_TOKEN)")
	fs.StringVar(&cfg.DynamoDBEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint (empty: the AWS SDK's resolution)")
	fs.StringVar(&cfg.Table, "table", cfg.Table, "DynamoDB table")
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "kafka: produce events to Kafka; direct: write straight to DynamoDB")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "messages per second at steady state, all shard processes together")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "steady-state duration (after --ramp)")
	ramp := fs.String("ramp", "", "ramp-up stages before the steady state, DURATION:RATE,... (e.g. 30s:1000,30s:5000)")
	fs.Float64Var(&cfg.ReadsPerSec, "reads-per-sec", cfg.ReadsPerSec, "API reads per second, all shard processes together")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "accounts in the Zipf mix")
	fs.Float64Var(&cfg.TopShare, "top-share", cfg.TopShare, "the largest account's share of all messages")
	fs.IntVar(&cfg.EventsPerMessage, "events-per-message", cfg.EventsPerMessage, "mean lifecycle events per message: each has N-1 to N+1, ending final unless non-final")
	fs.IntVar(&cfg.ItemBytes, "item-bytes", cfg.ItemBytes, "mean body bytes of long (WhatsApp, RCS) messages; SMS and MMS bodies stay short")
	fs.Float64Var(&cfg.NonFinalShare, "non-final-share", cfg.NonFinalShare, "share of messages that never reach a final status (kafka mode)")
	fs.Float64Var(&cfg.DuplicateShare, "duplicate-share", cfg.DuplicateShare, "share of messages with one event sent twice")
	fs.IntVar(&cfg.ReorderWindow, "reorder-window", cfg.ReorderWindow, "most positions an event is sent away from its sequence order (0: in order)")
	fs.Float64Var(&cfg.V1Share, "v1-share", cfg.V1Share, "share of events written with schema v1 (ID 1) rather than v2")
	fs.DurationVar(&cfg.EventGap, "event-gap", cfg.EventGap, "time between a message's consecutive events (kafka mode)")
	fs.Float64Var(&cfg.ProbesPerSec, "probes-per-sec", cfg.ProbesPerSec, "messages/s followed until readable and listed (end-to-end latency, index lag), all shard processes together")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "most operations in flight per schedule")
	fs.DurationVar(&cfg.VerifyTimeout, "verify-timeout", cfg.VerifyTimeout, "how long after the load to wait for the service to drain and every final message to be readable")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (SIDs, accounts, event order)")
	shard := fs.String("shard", cfg.Shard.String(), "this process's part i/n of a run split over n processes")
	defaultShards := fs.Int("default-shards", 1, "index shards of accounts without a schedule: the service's --default-shards (direct mode writes index keys with it)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (logs go to stderr)")
	var out outputs
	fs.StringVar(&out.json, "json", "", "write the report as JSON to this file")
	fs.StringVar(&out.html, "html", "", "write a self-contained HTML report to this file")
	crit := addCriteriaFlags(fs, cfg.Criteria)
	pos, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("run: unexpected arguments %q", pos)
	}
	cfg.Brokers = nil
	for b := range strings.SplitSeq(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if cfg.Ramp, err = loadtest.ParseSchedule(*ramp); err != nil {
		return fmt.Errorf("--ramp: %w", err)
	}
	if cfg.Shard, err = loadtest.ParseShardSpec(*shard); err != nil {
		return fmt.Errorf("--shard: %w", err)
	}
	cfg.Criteria = crit.criteria()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	db, err := awsconf.DynamoClient(ctx, cfg.DynamoDBEndpoint, getenv, 0)
	if err != nil {
		return err
	}
	st, err := store.New(db, store.Config{Table: cfg.Table, DefaultShards: *defaultShards}, log.With("component", "store"), nil)
	if err != nil {
		return err
	}
	rep, err := loadtest.Run(ctx, cfg, loadtest.Deps{Store: st, Progress: stdout, Log: log})
	if err != nil {
		return err
	}
	return finish(rep, out, stdout)
}
