package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/postflight/postflight/internal/awsconf"
	"io"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

const shardsUsage = `usage:
  postflight shards show --account AC... [--json]
  postflight shards set  --account AC... --shards N [--from RFC3339]

An account's index shard schedule (docs/keydesign.md). A raise may take
effect now; a decrease must be dated at least the lead time ahead
(2 × --config-refresh + 15m). --config-refresh and --default-shards must be
the fleet's (they are read from POSTFLIGHT_CONFIG_REFRESH and
POSTFLIGHT_DEFAULT_SHARDS like serve's).`

// runShards is `postflight shards show|set`.
func runShards(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "set") {
		fmt.Fprintln(stderr, shardsUsage)
		return errors.New("usage: postflight shards show|set [flags]")
	}
	set := args[0] == "set"
	fs := newFlagSet("postflight shards "+args[0], stderr)
	var f serveFlags
	f.registerTable(fs)
	fs.DurationVar(&f.configRefresh, "config-refresh", 10*time.Second, "the fleet's account configuration refresh interval (sets the lead time of decreases)")
	fs.IntVar(&f.defaultShards, "default-shards", 1, "the fleet's index shards of accounts without a schedule (must match serve's: it is stored with the first change)")
	account := fs.String("account", "", "account SID (required)")
	asJSON := fs.Bool("json", false, "show: print the schedule as JSON")
	shards := fs.Int("shards", 0, fmt.Sprintf("set: the new shard count, 1–%d (a power of two keeps shards even)", keydesign.MaxShards))
	from := fs.String("from", "", "set: when the count takes effect, RFC 3339 (default now)")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	if !postflight.ValidAccountSID(*account) {
		return fmt.Errorf("--account %q is not an account SID (AC + 32 hex digits)", *account)
	}
	var at time.Time
	if set {
		if *shards < 1 || *shards > keydesign.MaxShards {
			return fmt.Errorf("--shards %d out of range [1,%d]", *shards, keydesign.MaxShards)
		}
		if *from != "" {
			var err error
			if at, err = time.Parse(time.RFC3339, *from); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
		}
	} else if *shards != 0 || *from != "" {
		return errors.New("show takes no --shards or --from")
	}
	db, err := awsconf.DynamoClient(ctx, f.dynamodbEndpoint, getenv, f.dynamodbAttemptTimeout)
	if err != nil {
		return err
	}
	st, err := store.New(db, store.Config{
		Table: f.table, ConfigRefresh: f.configRefresh, DefaultShards: f.defaultShards, HotShardUnits: -1,
	}, nil, nil)
	if err != nil {
		return err
	}
	cfg := st.Config()
	var acc store.AccountConfig
	if set {
		acc, err = st.SetShards(ctx, *account, at, *shards)
		if errors.Is(err, keydesign.ErrTooSoon) {
			return fmt.Errorf("%w: date it at or after %s (--from)", err,
				cfg.Now().Add(cfg.ShardLead()).UTC().Truncate(time.Second).Add(time.Second).Format(time.RFC3339))
		}
	} else {
		acc, err = st.FreshAccount(ctx, *account)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeScheduleJSON(stdout, *account, acc, cfg)
	}
	writeSchedule(stdout, *account, acc, cfg)
	return nil
}

// scheduleView is the --json form of `shards show`.
type scheduleView struct {
	Account          string             `json:"account"`
	Version          int64              `json:"version"`
	ShardsNow        int                `json:"shards_now"`
	Schedule         keydesign.Schedule `json:"schedule"`
	EarliestDecrease time.Time          `json:"earliest_decrease"`
}

func writeScheduleJSON(w io.Writer, account string, acc store.AccountConfig, cfg store.Config) error {
	now := cfg.Now().UTC()
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(scheduleView{
		Account: account, Version: acc.Version, ShardsNow: acc.Schedule.At(now), Schedule: acc.Schedule,
		EarliestDecrease: now.Add(cfg.ShardLead()).Truncate(time.Second),
	})
}

func writeSchedule(w io.Writer, account string, acc store.AccountConfig, cfg store.Config) {
	now := cfg.Now().UTC()
	stored := "no stored configuration: fleet defaults"
	if acc.Version > 0 {
		stored = fmt.Sprintf("configuration version %d", acc.Version)
	}
	fmt.Fprintf(w, "account      %s (%s)\n", account, stored)
	fmt.Fprintf(w, "shards now   %d\n", acc.Schedule.At(now))
	fmt.Fprintf(w, "schedule     %d shards before the first epoch\n", acc.Schedule.Default)
	for _, e := range acc.Schedule.Epochs {
		when := "in force"
		if e.From.After(now) {
			when = "in " + e.From.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(w, "             from %s  %3d shards  (%s)\n", e.From.UTC().Format(time.RFC3339Nano), e.Shards, when)
	}
	fmt.Fprintf(w, "decreases    must be dated at or after %s (lead %s)\n",
		now.Add(cfg.ShardLead()).Truncate(time.Second).Add(time.Second).Format(time.RFC3339), cfg.ShardLead())
}
