package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hamba/avro/v2/registry"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/producer"
)

// publisher is the producer behind POST /v1/events, connected on first
// use: the API starts and serves reads while Kafka is unreachable, and a
// publish then fails with a 503 until Kafka answers. With a schema
// registry, events are framed with the ID the registry gave the newest
// contract under the topic's value subject (TopicNameStrategy), never with
// an ID that may mean another schema there.
type publisher struct {
	cfg      producer.Config
	registry string // schema registry URL, or empty
	log      *slog.Logger

	mu sync.Mutex // guards the fields below; a leaf, never held while connecting
	p  *producer.Producer
	// closed: Close ran; no new connection is made.
	closed     bool
	connecting bool
	// After a failed connection, publishes fail with failErr until
	// retryAt instead of each waiting for a connection of its own.
	failErr error
	retryAt time.Time
}

// errConnecting: another publish is connecting to Kafka right now.
var errConnecting = errors.New("connecting to Kafka")

// reconnectAfter is how long a failed connection is not tried again.
const reconnectAfter = 5 * time.Second

var _ api.Publisher = (*publisher)(nil)

func newPublisher(f serveFlags, skew time.Duration, log *slog.Logger) *publisher {
	return &publisher{
		cfg:      producer.Config{Brokers: splitList(f.brokers), Topic: f.topic, MaxClockSkew: skew},
		registry: f.schemaRegistry,
		log:      log,
	}
}

// Validate implements api.Publisher; it needs no connection.
func (p *publisher) Validate(evs []postflight.Event) error {
	return producer.ValidateEvents(evs, time.Now(), p.cfg.MaxClockSkew)
}

// Publish implements api.Publisher.
func (p *publisher) Publish(ctx context.Context, evs []postflight.Event) ([]producer.Ack, error) {
	prod, err := p.producer(ctx)
	if err != nil {
		return nil, err
	}
	return prod.Publish(ctx, evs)
}

// producer returns the connected producer, connecting if no other call is
// (p.mu is never held while connecting: a publish that finds a connection
// under way fails at once with errConnecting, a 503).
func (p *publisher) producer(ctx context.Context) (*producer.Producer, error) {
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return nil, producer.ErrClosed
	case p.p != nil:
		prod := p.p
		p.mu.Unlock()
		return prod, nil
	case p.connecting:
		p.mu.Unlock()
		return nil, errConnecting
	case time.Now().Before(p.retryAt):
		err := p.failErr
		p.mu.Unlock()
		return nil, err
	}
	p.connecting = true
	p.mu.Unlock()

	prod, err := p.connect(ctx)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.connecting = false
	switch {
	case err != nil:
		p.log.Warn("events producer: cannot connect; POST /v1/events answers 503 until it can", "err", err)
		p.failErr, p.retryAt = err, time.Now().Add(reconnectAfter)
		return nil, err
	case p.closed: // Close ran meanwhile
		prod.Close()
		return nil, producer.ErrClosed
	}
	p.p = prod
	return prod, nil
}

func (p *publisher) connect(ctx context.Context) (*producer.Producer, error) {
	cfg := p.cfg
	if p.registry != "" {
		c, err := registry.NewClient(p.registry, registry.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
		if err != nil {
			return nil, fmt.Errorf("schema registry client: %w", err)
		}
		cs := ingest.Contracts()
		id, _, err := c.IsRegistered(ctx, cfg.Topic+"-value", cs[len(cs)-1].JSON)
		if err != nil {
			return nil, fmt.Errorf("the newest contract's ID under %s-value: %w", cfg.Topic, err)
		}
		cfg.SchemaID = uint32(id)
	}
	return producer.New(cfg)
}

// Close closes the producer, if connected. Call it after the API stopped.
func (p *publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.p == nil {
		return nil
	}
	return p.p.Close()
}
