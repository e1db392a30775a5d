package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/postflight/postflight"
)

// Config configures a Store. The zero value of every field but Table takes
// the default documented on it.
type Config struct {
	Table string // DynamoDB table name (required)

	// DefaultRetentionDays applies to accounts without a retention policy.
	DefaultRetentionDays int // default 400
	// DefaultShards is the index shard count of accounts without a schedule.
	DefaultShards int // default 1
	// ConfigRefresh is how often account configuration is reloaded.
	ConfigRefresh time.Duration // default 10s
	// ConfigMaxAge bounds how stale the API may read an account's retention.
	ConfigMaxAge time.Duration // default 1s
	// MaxClockSkew is how far in the future an event's date_created may lie;
	// with ConfigRefresh it sets the lead time of shard decreases.
	MaxClockSkew time.Duration // default 15m
	// ListFanout bounds the concurrent shard queries of one list request.
	ListFanout int // default 16
	// AttemptTimeout bounds every attempt of every DynamoDB request the
	// store makes (the hand-sent write batch and each SDK call attempt): an
	// endpoint that accepts and never answers costs a transient failure
	// after it, not the TCP timeout.
	AttemptTimeout time.Duration // default 5s

	// Hot-account detection (hot.go). HotShardUnits is the index write
	// units/s per shard it sizes for: an account whose fleet-wide rate
	// exceeds HotShardUnits times its shard count is raised to
	// keydesign.ShardsFor(rate, HotShardUnits) shards.
	HotShardUnits float64 // default 500 (half a partition); negative: detection off
	// HotWindow is the sliding window write rates are measured over.
	HotWindow time.Duration // default 10s, at most 10m
	// HotCooldown is the least time between two automatic raises of one account.
	HotCooldown time.Duration // default 1m
	// HotMaxRaisesPerMinute bounds this process's automatic raises, all accounts.
	HotMaxRaisesPerMinute int // default 10
	// HotFleetScale returns the factor from this process's write rate to the
	// fleet's, e.g. Kafka partitions / partitions this process owns. It is
	// called about once per HotWindow from the write path and by the check,
	// so it must be cheap and safe for concurrent use. Values below 1 count
	// as 1. Default: 1.
	HotFleetScale func() float64
	// Restamp configures the retention re-stamp job (see retention.go).
	Restamp RestampConfig

	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Retention bounds of DESIGN.md §3.
const (
	MinRetentionDays = postflight.MinRetentionDays
	MaxRetentionDays = postflight.MaxRetentionDays
)

func (c *Config) setDefaults() {
	if c.DefaultRetentionDays == 0 {
		c.DefaultRetentionDays = 400
	}
	if c.DefaultShards == 0 {
		c.DefaultShards = 1
	}
	if c.ConfigRefresh == 0 {
		c.ConfigRefresh = 10 * time.Second
	}
	if c.ConfigMaxAge == 0 {
		c.ConfigMaxAge = time.Second
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 15 * time.Minute
	}
	if c.ListFanout == 0 {
		c.ListFanout = 16
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HotShardUnits == 0 {
		c.HotShardUnits = 500
	}
	if c.HotWindow == 0 {
		c.HotWindow = 10 * time.Second
	}
	if c.HotCooldown == 0 {
		c.HotCooldown = time.Minute
	}
	if c.HotMaxRaisesPerMinute == 0 {
		c.HotMaxRaisesPerMinute = 10
	}
	if c.HotFleetScale == nil {
		c.HotFleetScale = func() float64 { return 1 }
	}
	c.Restamp.setDefaults(c.ConfigRefresh)
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Table == "":
		return errors.New("store: table name is required")
	case c.DefaultRetentionDays < MinRetentionDays || c.DefaultRetentionDays > MaxRetentionDays:
		return fmt.Errorf("store: default retention %d days out of range [%d,%d]", c.DefaultRetentionDays, MinRetentionDays, MaxRetentionDays)
	case c.DefaultShards < 1 || c.DefaultShards > 256:
		return fmt.Errorf("store: default shards %d out of range [1,256]", c.DefaultShards)
	case c.ConfigRefresh < 0 || c.ConfigMaxAge < 0 || c.MaxClockSkew < 0 || c.ListFanout < 0 || c.AttemptTimeout < 0:
		return errors.New("store: durations and fan-out must not be negative")
	case math.IsNaN(c.HotShardUnits) || math.IsInf(c.HotShardUnits, 0):
		return fmt.Errorf("store: hot shard units %v must be finite", c.HotShardUnits)
	case c.HotWindow < 0 || c.HotWindow > 10*time.Minute:
		return fmt.Errorf("store: hot window %v out of range (0,10m]", c.HotWindow)
	case c.HotCooldown < 0 || c.HotMaxRaisesPerMinute < 0:
		return errors.New("store: hot cooldown and raises per minute must not be negative")
	}
	return c.Restamp.validate()
}

// ShardLead is how far ahead a shard-count decrease must be dated: every
// process must have reloaded the schedule, and no event may be dated beyond it.
func (c *Config) ShardLead() time.Duration { return 2*c.ConfigRefresh + c.MaxClockSkew }

// ConfigStaleAfter is how old this process's account configuration may grow
// before it stops writing: ShardLead without the clock-skew allowance, i.e.
// the 2 × ConfigRefresh within which shard decreases, the re-stamp job's
// delay and the Expired check assume every process has reloaded.
func (c *Config) ConfigStaleAfter() time.Duration { return c.ShardLead() - c.MaxClockSkew }

// Store is Postflight's DynamoDB table. Its methods are safe for concurrent
// use. Run must be running for account configuration to stay fresh.
type Store struct {
	db      *dynamodb.Client
	cfg     Config
	log     *slog.Logger
	m       metrics
	acc     accounts
	hot     *hotAccounts // nil: detection off
	stmts   statements
	table   string
	noRetry func(*dynamodb.Options)
	batch   *batchSender
	restamp restamper

	refreshed atomic.Int64 // unix ns of the last successful RefreshAccounts; 0: never
}

// New returns a Store on db. The MeterProvider may be nil (no metrics).
func New(db *dynamodb.Client, cfg Config, log *slog.Logger, mp metric.MeterProvider) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	// The batch sender judges the caller's client, before the store's own
	// attempt-deadline middleware (which would otherwise always make it take
	// the SDK path); the fast path applies the same deadline itself, and the
	// SDK path sends through the wrapped client.
	wrapped := withAttemptTimeout(db, cfg.AttemptTimeout)
	s := &Store{db: wrapped, cfg: cfg, log: log, table: cfg.Table, batch: newBatchSender(db)}
	s.batch.attemptTimeout = cfg.AttemptTimeout
	if s.batch.viaSDK != nil {
		s.batch.viaSDK = wrapped
	}
	meter := mp.Meter("github.com/postflight/postflight/store")
	var err error
	if s.m, err = newMetrics(meter); err != nil {
		return nil, err
	}
	if s.hot, err = newHotAccounts(s, meter); err != nil {
		return nil, err
	}
	if err := s.restamp.init(s, meter); err != nil {
		return nil, err
	}
	if _, err := meter.Float64ObservableGauge("postflight.store.config.age", metric.WithUnit("s"),
		metric.WithDescription("Seconds since account configuration was last reloaded (writes stop past 2 × config refresh)."),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			if ns := s.refreshed.Load(); ns != 0 {
				o.Observe(s.cfg.Now().Sub(time.Unix(0, ns)).Seconds())
			}
			return nil
		})); err != nil {
		return nil, err
	}
	s.acc.init(cfg)
	s.stmts.init(cfg.Table)
	// The ingest pipeline retries writes itself, with backoff and adaptive
	// concurrency: the SDK's own retries would hide throttling from it.
	s.noRetry = func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} }
	return s, nil
}

// Config returns the store's configuration with defaults applied.
func (s *Store) Config() Config { return s.cfg }

// Ping checks that the table is reachable (readiness).
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	if err != nil {
		return fmt.Errorf("describe table: %w", err)
	}
	return nil
}
