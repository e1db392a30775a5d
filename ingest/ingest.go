package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"
)

// Config configures a Service. Zero fields take the defaults documented on them.
type Config struct {
	Brokers  []string // default 127.0.0.1:9092
	Topic    string   // default message-events
	DLQTopic string   // default message-events.dlq
	Group    string   // consumer group, default postflight
	// DLQMaxBytes is the largest dead letter written (the producer's
	// MaxMessageBytes); a larger one is written truncated, marked with
	// HeaderTruncated. Keep it at or below the dead-letter topic's
	// max.message.bytes (Kafka's default is 1048588). Default 1000000.
	DLQMaxBytes int

	Linger         time.Duration // how long a partial batch waits for more, default 5ms
	MaxConcurrency int           // most write requests in flight (AIMD upper bound), default 64
	MinConcurrency int           // AIMD lower bound, default 1
	MaxPendingMB   int           // bound on pending and in-flight records, default 64
	DrainTimeout   time.Duration // rebalance and shutdown drain deadline, default 30s
	RetryInitial   time.Duration // first retry delay, default 50ms
	RetryMax       time.Duration // retry delay cap, default 5s

	// Breaker: opens after BreakerFailures consecutive failed batches (5xx,
	// network), stays open BreakerOpen, then lets probes through.
	BreakerFailures uint32        // default 5
	BreakerOpen     time.Duration // default 5s

	MaxClockSkew time.Duration // how far in the future event times may lie, default 15m

	// RecentPerPartition bounds the memory of recently stored messages
	// per partition (recent.go): default 32768 (~3.5 MB); negative: none.
	RecentPerPartition int
}

func (c *Config) setDefaults() {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Topic, "message-events")
	def(&c.DLQTopic, "message-events.dlq")
	def(&c.Group, "postflight")
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	dur(&c.Linger, 5*time.Millisecond)
	dur(&c.DrainTimeout, 30*time.Second)
	dur(&c.RetryInitial, 50*time.Millisecond)
	dur(&c.RetryMax, 5*time.Second)
	dur(&c.BreakerOpen, 5*time.Second)
	dur(&c.MaxClockSkew, 15*time.Minute)
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = 64
	}
	if c.MinConcurrency == 0 {
		c.MinConcurrency = 1
	}
	if c.MaxPendingMB == 0 {
		c.MaxPendingMB = 64
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.DLQMaxBytes == 0 {
		c.DLQMaxBytes = 1_000_000
	}
	if c.RecentPerPartition == 0 {
		c.RecentPerPartition = 32768
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Topic == c.DLQTopic:
		return errors.New("ingest: the dead-letter topic must differ from the topic")
	case c.MinConcurrency < 1 || c.MaxConcurrency < c.MinConcurrency:
		return fmt.Errorf("ingest: concurrency bounds [%d,%d] invalid", c.MinConcurrency, c.MaxConcurrency)
	case c.DLQMaxBytes < 4096:
		return errors.New("ingest: the dead-letter size limit must be at least 4096 bytes")
	case c.MaxPendingMB < 1:
		return errors.New("ingest: max pending MB must be positive")
	case c.Linger < 0 || c.DrainTimeout < 0 || c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial:
		return errors.New("ingest: invalid durations")
	}
	return nil
}

// SaramaConfig returns the sarama configuration ingest runs with.
func (c *Config) SaramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "postflight"
	sc.Version = sarama.V2_8_0_0
	// A group with no committed offset starts from the earliest retained
	// record: a new deployment or a renamed group never skips events.
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Return.Errors = true
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sc.Consumer.Group.Rebalance.Timeout = c.DrainTimeout + 10*time.Second
	sc.Consumer.Fetch.Default = 1 << 20
	sc.ChannelBufferSize = 256
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Retry.Max = 10
	// Set on purpose: a dead letter over it is truncated (dlq.letter),
	// and sarama also bounds its request batches by it.
	if c.DLQMaxBytes > 0 {
		sc.Producer.MaxMessageBytes = c.DLQMaxBytes
	}
	sc.Metadata.RefreshFrequency = time.Minute
	return sc
}

// Service is the ingest pipeline of one process. Run it once.
type Service struct {
	cfg     Config
	w       Writer
	dec     *Decoder
	log     *slog.Logger
	tracer  trace.Tracer
	m       metrics
	batcher *batcher
	limit   *aimd
	breaker *gobreaker.CircuitBreaker[struct{}]
	pauses  *pauses
	dlq     *dlq
	lag     sync.Map     // claimKey → claimLag
	owned   atomic.Int64 // partitions of the topic this process holds
	total   atomic.Int64 // partitions of the topic

	client sarama.Client
	group  sarama.ConsumerGroup
}

// New connects to Kafka and returns a Service that writes through w. The
// providers may be nil (no metrics, no traces).
func New(cfg Config, w Writer, dec *Decoder, log *slog.Logger, mp metric.MeterProvider, tp trace.TracerProvider) (*Service, error) {
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
	if tp == nil {
		tp = tnoop.NewTracerProvider()
	}
	s := &Service{
		cfg: cfg, w: w, dec: dec, log: log,
		tracer:  tp.Tracer("github.com/postflight/postflight/ingest"),
		batcher: newBatcher(maxBatch, cfg.Linger, cfg.MaxPendingMB<<20),
		limit:   newAIMD(min(16, cfg.MaxConcurrency), cfg.MinConcurrency, cfg.MaxConcurrency, 200*time.Millisecond),
	}
	client, err := sarama.NewClient(cfg.Brokers, cfg.SaramaConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	group, err := sarama.NewConsumerGroupFromClient(cfg.Group, client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("consumer group: %w", err)
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		group.Close()
		client.Close()
		return nil, fmt.Errorf("dead-letter producer: %w", err)
	}
	s.client, s.group = client, group
	s.pauses = newPauses(log, group.PauseAll, group.ResumeAll)
	s.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "dynamodb",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			log.Warn("dynamodb circuit breaker", "from", from.String(), "to", to.String())
			switch to {
			case gobreaker.StateOpen:
				s.pauses.set(pauseBreaker, "dynamodb circuit breaker is open") // the backlog waits in Kafka
			case gobreaker.StateClosed:
				s.pauses.clear(pauseBreaker)
			}
		},
	})
	// Last: the gauges' callback reads everything above.
	if s.m, err = newMetrics(mp.Meter("github.com/postflight/postflight/ingest"), s); err != nil {
		prod.Close()
		group.Close()
		client.Close()
		return nil, err
	}
	s.dlq = newDLQ(cfg.DLQTopic, cfg.DLQMaxBytes, prod, log, s.m.deadLetters)
	s.dlq.budget = s.batcher // dead letters count toward MaxPendingMB
	return s, nil
}

// Run consumes until ctx is done, then shuts down in order: stop reading,
// let every claim drain its records (up to DrainTimeout), commit, and only
// then stop the writers and the dead-letter producer. It returns nil once
// stopped by ctx, also when Kafka could not be told (the last commit, the
// group left): that is logged, and costs only re-reads.
func (s *Service) Run(ctx context.Context) error {
	// Writers and the DLQ outlive ctx: the claims drain through them.
	wctx, stopWriters := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for range s.cfg.MaxConcurrency {
		wg.Go(func() { s.writeLoop(wctx) })
	}
	wg.Go(func() { s.dlq.run(wctx) })
	wg.Go(func() {
		for err := range s.group.Errors() {
			s.log.Warn("consumer group", "err", err)
		}
	})
	var err error
	for ctx.Err() == nil {
		// Consume returns at every rebalance; call it again.
		cerr := s.group.Consume(ctx, []string{s.cfg.Topic}, handler{s})
		switch {
		case cerr == nil:
		case ctx.Err() != nil:
			// The session's end (its last commit included) failed while
			// stopping: the next owner reads those records again.
			s.log.Warn("stopping: the consumer group session ended with an error; uncommitted records are read again by the next owner (harmless)", "err", cerr)
		case errors.Is(cerr, sarama.ErrClosedConsumerGroup):
			err = cerr
		default:
			s.log.Warn("consume", "err", cerr)
			sleep(ctx, time.Second)
		}
		if err != nil {
			break
		}
	}
	stopWriters()
	// Closing leaves the group. If Kafka is unreachable it cannot, and that
	// is not a failed stop: the coordinator expires the member after its
	// session timeout, and the next owner of the partitions reads any
	// uncommitted records again, which the conditional writes make
	// harmless. So it is logged, and the stop stays clean (serve exits 0).
	if cerr := s.group.Close(); cerr != nil { // closes Errors(), ending its reader
		s.log.Warn("stopping: could not leave the consumer group; the coordinator expires this member after its session timeout", "err", cerr)
	}
	wg.Wait()
	s.dlq.prod.Close()
	s.client.Close()
	if s.m.reg != nil {
		_ = s.m.reg.Unregister()
	}
	return err
}

// Ready reports whether Kafka is reachable and ingest is not paused (the
// breaker open, DynamoDB refusing this process, configuration too stale).
func (s *Service) Ready(ctx context.Context) error {
	if s.breaker.State() == gobreaker.StateOpen {
		return errors.New("dynamodb circuit breaker is open")
	}
	if err := s.pauses.err(); err != nil {
		return err
	}
	if _, err := s.client.Controller(); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// FleetScale estimates the factor from this process's share of the traffic
// to the whole fleet's: the topic's partitions over the ones this process
// holds. Message SIDs spread every account evenly over partitions, so an
// account's fleet-wide rate is its local rate times this. 1 before the first
// assignment.
func (s *Service) FleetScale() float64 {
	owned, total := s.owned.Load(), s.total.Load()
	if owned == 0 || total == 0 {
		return 1
	}
	return float64(total) / float64(owned)
}
