package main

import (
	"context"
	"fmt"
	"io"

	"github.com/postflight/postflight/loadtest"
)

// runHeat is `loadtest heat`: the key-design heat simulation.
func runHeat(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := loadtest.DefaultHeatConfig()
	fs := newFlagSet("heat", stderr)
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "final messages per second, all accounts")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "number of accounts in the Zipf mix")
	fs.Float64Var(&cfg.TopShare, "top-share", cfg.TopShare, "the largest account's share of all messages")
	fs.IntVar(&cfg.ItemBytes, "item-bytes", cfg.ItemBytes, "base item size in bytes")
	fs.IntVar(&cfg.IndexItemBytes, "index-item-bytes", 0, "index item size in bytes (0: --item-bytes, the index projects everything)")
	fs.Float64Var(&cfg.WritesPerMessage, "writes-per-message", cfg.WritesPerMessage, "mean stored (final) writes per message, ≥ 1")
	fs.Float64Var(&cfg.PerShard, "per-shard", cfg.PerShard, "index shard sizing target, write units/s per shard")
	fs.Float64Var(&cfg.Limit, "limit", cfg.Limit, "write units/s a partition key may take")
	fs.IntVar(&cfg.Seconds, "seconds", cfg.Seconds, "seconds of traffic to simulate")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (same seed, same result)")
	fs.BoolVar(&cfg.Unsharded, "unsharded", false, "one index key per account (the design without sharding)")
	sweep := fs.String("sweep-top-share", "", "also simulate these top shares, comma-separated (e.g. 0.05,0.1,0.2,0.4)")
	jsonPath := fs.String("json", "", "write the result as JSON to this file")
	pos, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("heat: unexpected arguments %q", pos)
	}
	shares, err := parseFloats(*sweep)
	if err != nil {
		return fmt.Errorf("--sweep-top-share: %w", err)
	}

	res, err := loadtest.Heat(ctx, cfg)
	if err != nil {
		return err
	}
	if len(shares) > 0 {
		if res.Sweep, err = loadtest.HeatSweep(ctx, cfg, shares); err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
	}
	if err := loadtest.WriteHeatSummary(stdout, res); err != nil {
		return err
	}
	if *jsonPath != "" {
		if err := loadtest.WriteJSONFile(*jsonPath, res); err != nil {
			return err
		}
	}
	if !res.Passed() {
		return fmt.Errorf("%w: hottest keys take %d (base) and %d (index) write units/s, limit %g",
			loadtest.ErrCriteriaFailed, res.MaxBaseKeyUnitsPerSec, res.MaxIndexKeyUnitsPerSec, res.LimitUnitsPerSec)
	}
	return nil
}
