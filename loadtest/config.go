package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Modes of `loadtest run`.
const (
	ModeKafka  = "kafka"  // produce events to Kafka; the service ingests them
	ModeDirect = "direct" // write straight to DynamoDB with the same key design
)

// ShardSpec says which of Count cooperating processes this one is (Index
// from 0). Each process runs 1/Count of the rate; `loadtest merge` joins
// their reports.
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShardSpec parses "i/n".
func ParseShardSpec(s string) (ShardSpec, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return ShardSpec{}, fmt.Errorf("shard %q: want i/n", s)
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return ShardSpec{}, fmt.Errorf("shard %q: want i/n", s)
	}
	sp := ShardSpec{Index: i, Count: n}
	return sp, sp.Validate()
}

// Validate checks 0 ≤ Index < Count.
func (s ShardSpec) Validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want 0 ≤ i < n", s.Index, s.Count)
	}
	return nil
}

func (s ShardSpec) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// RunConfig is the configuration of `loadtest run` (DESIGN.md §4), echoed
// into the report. Rates are totals over all shard processes.
type RunConfig struct {
	Mode             string        `json:"mode"`
	Brokers          []string      `json:"brokers"`
	Topic            string        `json:"topic"`
	Service          string        `json:"service"`
	Token            string        `json:"-"` // a secret: never echoed
	DynamoDBEndpoint string        `json:"dynamodb_endpoint,omitempty"`
	Table            string        `json:"table"`
	Rate             float64       `json:"rate"`          // messages/s at steady state, all shards
	Duration         time.Duration `json:"-"`             // steady state, after the ramp
	Ramp             Schedule      `json:"ramp"`          // stages before the steady state
	ReadsPerSec      float64       `json:"reads_per_sec"` // API reads/s, all shards
	Accounts         int           `json:"accounts"`
	TopShare         float64       `json:"top_share"`
	EventsPerMessage int           `json:"events_per_message"` // mean: each message has N−1..N+1 events (at least 1)
	ItemBytes        int           `json:"item_bytes"`         // mean body of long (WhatsApp, RCS) messages
	NonFinalShare    float64       `json:"non_final_share"`    // messages that never reach a final status (kafka mode)
	DuplicateShare   float64       `json:"duplicate_share"`    // messages with one event sent twice
	ReorderWindow    int           `json:"reorder_window"`     // most positions an event is sent away from sequence order
	V1Share          float64       `json:"v1_share"`           // events written with schema v1 (ID 1) rather than v2
	EventGap         time.Duration `json:"-"`                  // time between a message's consecutive events (kafka mode)
	ProbesPerSec     float64       `json:"probes_per_sec"`     // messages/s followed to readable and listed, all shards
	Workers          int           `json:"workers"`
	VerifyTimeout    time.Duration `json:"-"`
	Seed             uint64        `json:"seed"`
	Shard            ShardSpec     `json:"shard"`
	Criteria         Criteria      `json:"criteria"`
}

// DefaultRunConfig returns the defaults the CLI starts from.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		Mode:             ModeKafka,
		Brokers:          []string{"127.0.0.1:9092"},
		Topic:            "message-events",
		Service:          "http://127.0.0.1:8080",
		Table:            "postflight-messages",
		Rate:             1000,
		Duration:         time.Minute,
		ReadsPerSec:      10,
		Accounts:         10_000,
		TopShare:         0.10,
		EventsPerMessage: 4,
		ItemBytes:        1000,
		NonFinalShare:    0.05,
		DuplicateShare:   0.05,
		ReorderWindow:    2,
		V1Share:          0.3,
		EventGap:         100 * time.Millisecond,
		ProbesPerSec:     10,
		Workers:          256,
		VerifyTimeout:    2 * time.Minute,
		Seed:             1,
		Shard:            ShardSpec{Index: 0, Count: 1},
		Criteria:         DefaultCriteria(),
	}
}

// Validate checks the config.
func (c RunConfig) Validate() error {
	switch {
	case c.Mode != ModeKafka && c.Mode != ModeDirect:
		return fmt.Errorf("mode %q: want %s or %s", c.Mode, ModeKafka, ModeDirect)
	case c.Mode == ModeKafka && (len(c.Brokers) == 0 || c.Topic == ""):
		return fmt.Errorf("mode kafka needs --brokers and --topic")
	case c.Table == "":
		return fmt.Errorf("--table is required")
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v must be > 0", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("duration %v must be > 0", c.Duration)
	case !(c.ReadsPerSec >= 0) || math.IsInf(c.ReadsPerSec, 0):
		return fmt.Errorf("reads per second %v must be ≥ 0", c.ReadsPerSec)
	case c.ReadsPerSec > 0 && c.Service == "":
		return fmt.Errorf("reads need --service")
	case c.Mode == ModeKafka && c.ProbesPerSec > 0 && c.Service == "":
		return fmt.Errorf("end-to-end probes in mode kafka need --service (or --probes-per-sec 0)")
	case c.EventsPerMessage < 1:
		return fmt.Errorf("events per message %d must be ≥ 1", c.EventsPerMessage)
	case c.EventsPerMessage > maxEventsPerMessage:
		return fmt.Errorf("events per message %d must be ≤ %d", c.EventsPerMessage, maxEventsPerMessage)
	case c.ItemBytes < 1 || c.ItemBytes > maxItemBytes:
		return fmt.Errorf("item bytes %d out of range [1,%d]", c.ItemBytes, maxItemBytes)
	case !share(c.NonFinalShare) || !share(c.DuplicateShare) || !share(c.V1Share):
		return fmt.Errorf("non-final share %v, duplicate share %v and v1 share %v must be in [0,1]", c.NonFinalShare, c.DuplicateShare, c.V1Share)
	case c.ReorderWindow < 0 || c.ReorderWindow > maxEventsPerMessage:
		return fmt.Errorf("reorder window %d out of range [0,%d]", c.ReorderWindow, maxEventsPerMessage)
	case c.EventGap < 0 || c.EventGap > time.Minute:
		return fmt.Errorf("event gap %v out of range [0,1m]", c.EventGap)
	case !(c.ProbesPerSec >= 0) || math.IsInf(c.ProbesPerSec, 0):
		return fmt.Errorf("probes per second %v must be ≥ 0", c.ProbesPerSec)
	case c.Workers < 1:
		return fmt.Errorf("workers %d must be ≥ 1", c.Workers)
	case c.VerifyTimeout < 0:
		return fmt.Errorf("verify timeout %v must be ≥ 0", c.VerifyTimeout)
	}
	if _, err := ZipfExponent(c.Accounts, c.TopShare); err != nil {
		return fmt.Errorf("top share %v over %d accounts: %w", c.TopShare, c.Accounts, err)
	}
	if err := c.Shard.Validate(); err != nil {
		return err
	}
	if err := c.Criteria.Validate(); err != nil {
		return err
	}
	if len(c.Ramp) > 0 {
		if err := c.Ramp.Validate(); err != nil {
			return fmt.Errorf("ramp: %w", err)
		}
	}
	return c.WriteSchedule().Validate()
}

func share(f float64) bool { return f >= 0 && f <= 1 }

// WriteSchedule is this shard process's message schedule: the ramp stages,
// then Duration at Rate, every rate divided by the shard count.
func (c RunConfig) WriteSchedule() Schedule {
	s := append(Schedule{}, c.Ramp...)
	s = append(s, Stage{Duration: c.Duration, Rate: c.Rate})
	return s.Scale(1 / float64(max(c.Shard.Count, 1)))
}

// ReadSchedule is this shard process's API read schedule: ReadsPerSec over
// the whole write schedule, divided by the shard count. Nil when there are
// no reads.
func (c RunConfig) ReadSchedule() Schedule {
	if c.ReadsPerSec <= 0 {
		return nil
	}
	total := append(Schedule{}, c.Ramp...).Duration() + c.Duration
	return Schedule{{Duration: total, Rate: c.ReadsPerSec / float64(max(c.Shard.Count, 1))}}
}

// runConfigJSON adds the durations as strings.
type runConfigJSON struct {
	runConfigAlias
	Duration      string `json:"duration"`
	EventGap      string `json:"event_gap"`
	VerifyTimeout string `json:"verify_timeout"`
}

type runConfigAlias RunConfig

// MarshalJSON writes durations as Go duration strings ("1m0s").
func (c RunConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(runConfigJSON{
		runConfigAlias: runConfigAlias(c),
		Duration:       c.Duration.String(),
		EventGap:       c.EventGap.String(),
		VerifyTimeout:  c.VerifyTimeout.String(),
	})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (c *RunConfig) UnmarshalJSON(b []byte) error {
	var j runConfigJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = RunConfig(j.runConfigAlias)
	var err error
	if j.Duration != "" {
		if c.Duration, err = time.ParseDuration(j.Duration); err != nil {
			return fmt.Errorf("duration: %w", err)
		}
	}
	if j.EventGap != "" {
		if c.EventGap, err = time.ParseDuration(j.EventGap); err != nil {
			return fmt.Errorf("event_gap: %w", err)
		}
	}
	if j.VerifyTimeout != "" {
		if c.VerifyTimeout, err = time.ParseDuration(j.VerifyTimeout); err != nil {
			return fmt.Errorf("verify_timeout: %w", err)
		}
	}
	return nil
}
