package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/postflight/postflight/loadtest"
)

// runLoad is `loadtest run`: drive traffic through the service, verify it,
// and report (DESIGN.md §4).
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
	fs.IntVar(&cfg.EventsPerMessage, "events-per-message", cfg.EventsPerMessage, "lifecycle events per message, the last one final")
	fs.IntVar(&cfg.ItemBytes, "item-bytes", cfg.ItemBytes, "approximate message size in bytes (body padding)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "most operations in flight per schedule")
	fs.DurationVar(&cfg.VerifyTimeout, "verify-timeout", cfg.VerifyTimeout, "how long to wait for every final message to be readable")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (SIDs, accounts, event order)")
	shard := fs.String("shard", cfg.Shard.String(), "this process's part i/n of a run split over n processes")
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

	rep, err := execute(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	rep.Evaluate(cfg.Criteria)
	return finish(rep, out, stdout)
}

// errNotWired: `loadtest run` has its flags, config and reporting, but not
// yet the generator and verifier that drive the service.
var errNotWired = errors.New("run: not wired yet")

// execute runs the load test and returns its report, not yet evaluated.
//
// TODO(lead): wire to the service. The intended shape:
//
//	coll := loadtest.NewCollector()
//	wp, _ := loadtest.NewPacer(loadtest.PacerConfig{Schedule: cfg.WriteSchedule(), Workers: cfg.Workers})
//	rp, _ := loadtest.NewPacer(loadtest.PacerConfig{Schedule: cfg.ReadSchedule(), Workers: cfg.Workers})
//	// errgroup: wp.Run(ctx, produceOp, observe → coll.Write / coll.Error),
//	//           rp.Run(ctx, readOp, observe → coll.Read / coll.Error),
//	//           lag sampler → coll.Lag, loadtest.NewProgress(stdout).Run(ctx, time.Second, status)
//	// then verify every final message → coll.EndToEnd, coll.IndexLag, lost, wrong
//	rep, err := coll.Report(cfg, writeStats, readStats)
//	rep.ProducedFinal, rep.Verified, rep.Lost, rep.Wrong = …
//	rep.ServiceCPUSeconds, rep.ServiceRecords = … // deltas of the service's /metrics
func execute(ctx context.Context, cfg loadtest.RunConfig, stdout io.Writer) (*loadtest.Report, error) {
	return nil, errNotWired
}
