package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
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

	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Retention bounds of DESIGN.md §3.
const (
	MinRetentionDays = 1
	MaxRetentionDays = 3650
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
	if c.Now == nil {
		c.Now = time.Now
	}
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
	case c.ConfigRefresh < 0 || c.ConfigMaxAge < 0 || c.MaxClockSkew < 0 || c.ListFanout < 0:
		return errors.New("store: durations and fan-out must not be negative")
	}
	return nil
}

// ShardLead is how far ahead a shard-count decrease must be dated: every
// process must have reloaded the schedule, and no event may be dated beyond it.
func (c *Config) ShardLead() time.Duration { return 2*c.ConfigRefresh + c.MaxClockSkew }

// Store is Postflight's DynamoDB table. Its methods are safe for concurrent
// use. Run must be running for account configuration to stay fresh.
type Store struct {
	db      *dynamodb.Client
	cfg     Config
	log     *slog.Logger
	m       metrics
	acc     accounts
	stmts   statements
	table   string
	noRetry func(*dynamodb.Options)
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
	s := &Store{db: db, cfg: cfg, log: log, table: cfg.Table}
	var err error
	if s.m, err = newMetrics(mp.Meter("github.com/postflight/postflight/store")); err != nil {
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
