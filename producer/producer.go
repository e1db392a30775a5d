// Package producer is the one way to publish message-lifecycle events to
// Postflight's topic (DESIGN.md §1): every event is validated with the same
// code ingest runs (postflight.Event.Validate), encoded as Confluent-framed
// Avro with the newest contract schema (ingest.Encode), and produced keyed by
// its message SID with an idempotent sarama producer (acks=all). Publish
// returns only once Kafka acknowledged every event, with where each landed.
//
// Services written in Go link it; the API's POST /v1/events uses it too.
package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// MaxBatch is the most events one Publish call takes.
const MaxBatch = postflight.MaxPublishBatch

// Config configures a Producer. Zero fields take the defaults documented on them.
type Config struct {
	Brokers []string // Kafka bootstrap brokers, default 127.0.0.1:9092
	Topic   string   // default message-events

	// SchemaID is the ID written in front of every value. It must name the
	// newest contract schema (contracts/message_event.v2.avsc): with no
	// schema registry that is ingest.SchemaIDv2 (the default); with one, the
	// ID the registry gave that schema.
	SchemaID uint32
	// MaxClockSkew is how far in the future date_created and event_time may
	// lie; the same bound as ingest's, default 15m.
	MaxClockSkew time.Duration
	// Timeout bounds one produce request to the broker (sarama's
	// Producer.Timeout and the network timeouts), default 10s. Publish is
	// bounded by its context as well.
	Timeout time.Duration

	Now func() time.Time // default time.Now
}

func (c *Config) setDefaults() {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.Topic == "" {
		c.Topic = "message-events"
	}
	if c.SchemaID == 0 {
		c.SchemaID = ingest.SchemaIDv2
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 15 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.MaxClockSkew < 0 || c.Timeout < 0:
		return errors.New("producer: durations must not be negative")
	case strings.TrimSpace(c.Topic) == "":
		return errors.New("producer: topic is required")
	}
	return nil
}

// SaramaConfig returns the producer's sarama configuration: idempotent
// (exactly one copy of each event per partition despite retries), acks from
// every in-sync replica, the key hashed to the partition as every Postflight
// producer does, so one message's events stay in order on one partition.
func (c *Config) SaramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "postflight-producer"
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer
	sc.Producer.Retry.Max = 10
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Producer.Timeout = c.Timeout
	sc.Net.DialTimeout = c.Timeout
	sc.Net.ReadTimeout = c.Timeout + 5*time.Second
	sc.Net.WriteTimeout = c.Timeout
	sc.Metadata.Retry.Max = 5
	return sc
}

// Ack, InvalidEvent and ValidationError are the domain's (publish.go in
// the root package), so that the API can use them without importing Kafka.
type (
	Ack             = postflight.PublishAck
	InvalidEvent    = postflight.InvalidEvent
	ValidationError = postflight.ValidationError
)

// ValidateEvents checks every event as ingest does and returns a
// *ValidationError naming each invalid one, or nil.
func ValidateEvents(evs []postflight.Event, now time.Time, maxSkew time.Duration) error {
	return postflight.ValidateEvents(evs, now, maxSkew)
}

// ErrClosed: Publish was called after Close.
var ErrClosed = errors.New("producer: closed")

// Producer publishes events. Publish is safe for concurrent use; Close must
// not run concurrently with Publish.
type Producer struct {
	cfg   Config
	ap    sarama.AsyncProducer
	done  chan struct{} // closed when the result reader has returned
	mu    sync.Mutex    // guards closed against Publish's sends
	wg    sync.WaitGroup
	close sync.Once
	shut  chan struct{}
}

// New connects to Kafka and returns a Producer; Close releases it.
func New(cfg Config) (*Producer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ap, err := sarama.NewAsyncProducer(cfg.Brokers, cfg.SaramaConfig())
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p := &Producer{cfg: cfg, ap: ap, done: make(chan struct{}), shut: make(chan struct{})}
	go p.results()
	return p, nil
}

// call is one Publish in flight: the reader fills acks and errs and closes
// done after the last event's answer.
type call struct {
	acks    []Ack
	errs    []error
	mu      sync.Mutex
	pending int
	done    chan struct{}
}

type slot struct {
	c *call
	i int
}

func (c *call) settle(i int, ack Ack, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acks[i], c.errs[i] = ack, err
	if c.pending--; c.pending == 0 {
		close(c.done)
	}
}

// results reads the producer's answers until both channels close (after
// AsyncClose) and hands each to its call. It owns no state but the answers.
func (p *Producer) results() {
	defer close(p.done)
	succ, errs := p.ap.Successes(), p.ap.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			s := m.Metadata.(slot)
			s.c.settle(s.i, Ack{MessageSID: s.c.acks[s.i].MessageSID, Partition: m.Partition, Offset: m.Offset}, nil)
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s := pe.Msg.Metadata.(slot)
			s.c.settle(s.i, Ack{MessageSID: s.c.acks[s.i].MessageSID, Partition: -1, Offset: -1}, pe.Err)
		}
	}
}

// Publish validates evs (a *ValidationError names every invalid event and
// nothing is sent), encodes them and produces them keyed by message SID. It
// returns once Kafka acknowledged every event, acks[i] for evs[i]. If some
// were not acknowledged it returns an error; the acknowledged ones are in
// Kafka, and sending the batch again is safe: ingest keeps the highest
// sequence per message whatever repeats. If ctx ends first, Publish returns
// ctx's error while the events in flight may still be written.
func (p *Producer) Publish(ctx context.Context, evs []postflight.Event) ([]Ack, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	if len(evs) > MaxBatch {
		return nil, fmt.Errorf("producer: %d events, at most %d per call", len(evs), MaxBatch)
	}
	if err := ValidateEvents(evs, p.cfg.Now(), p.cfg.MaxClockSkew); err != nil {
		return nil, err
	}
	c := &call{acks: make([]Ack, len(evs)), errs: make([]error, len(evs)), pending: len(evs), done: make(chan struct{})}
	msgs := make([]*sarama.ProducerMessage, len(evs))
	for i := range evs {
		v, err := ingest.Encode(p.cfg.SchemaID, &evs[i])
		if err != nil {
			return nil, fmt.Errorf("producer: events[%d]: %w", i, err)
		}
		c.acks[i].MessageSID = evs[i].MessageSID
		msgs[i] = &sarama.ProducerMessage{
			Topic: p.cfg.Topic, Key: sarama.StringEncoder(evs[i].MessageSID), Value: sarama.ByteEncoder(v),
			Metadata: slot{c: c, i: i},
		}
	}
	p.mu.Lock()
	select {
	case <-p.shut:
		p.mu.Unlock()
		return nil, ErrClosed
	default:
	}
	p.wg.Add(1) // Close waits for our sends before closing the input
	p.mu.Unlock()
	sent := 0
	func() {
		defer p.wg.Done()
		for _, m := range msgs {
			select {
			case p.ap.Input() <- m:
				sent++
			case <-ctx.Done():
				return
			}
		}
	}()
	if sent < len(msgs) {
		// The unsent ones never get an answer; the sent ones settle into a
		// call nobody waits for.
		return nil, fmt.Errorf("producer: %d of %d events not sent: %w", len(msgs)-sent, len(msgs), ctx.Err())
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("producer: waiting for Kafka's acknowledgement: %w", ctx.Err())
	}
	var errs []error
	for i, err := range c.errs {
		if err != nil {
			errs = append(errs, fmt.Errorf("events[%d] (%s): %w", i, evs[i].MessageSID, err))
		}
	}
	if len(errs) > 0 {
		return c.acks, fmt.Errorf("producer: %d of %d events not acknowledged: %w", len(errs), len(evs), errors.Join(errs...))
	}
	return c.acks, nil
}

// Close flushes what is in flight, closes the connection and waits for the
// result reader. Publish calls after Close return ErrClosed.
func (p *Producer) Close() error {
	p.close.Do(func() {
		p.mu.Lock()
		close(p.shut)
		p.mu.Unlock()
		p.wg.Wait()
		p.ap.AsyncClose()
		<-p.done
	})
	return nil
}

// Validate checks evs as Publish will, with the producer's clock and skew
// bound, without sending anything.
func (p *Producer) Validate(evs []postflight.Event) error {
	return ValidateEvents(evs, p.cfg.Now(), p.cfg.MaxClockSkew)
}
