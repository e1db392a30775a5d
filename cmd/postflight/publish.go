package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hamba/avro/v2/registry"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/producer"
)

// newPublisher returns the producer behind POST /v1/events. With a schema
// registry, events are framed with the ID the registry gave the newest
// contract under the topic's value subject (TopicNameStrategy); if it has
// none, publishing is off (the route answers 503) rather than framing
// events with an ID that means another schema there.
func newPublisher(ctx context.Context, f serveFlags, skew time.Duration, log *slog.Logger) (*producer.Producer, error) {
	cfg := producer.Config{Brokers: splitList(f.brokers), Topic: f.topic, MaxClockSkew: skew}
	if f.schemaRegistry != "" {
		c, err := registry.NewClient(f.schemaRegistry, registry.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
		if err != nil {
			return nil, fmt.Errorf("schema registry client: %w", err)
		}
		newest := ingest.Contracts()[len(ingest.Contracts())-1]
		id, _, err := c.IsRegistered(ctx, f.topic+"-value", newest.JSON)
		if err != nil {
			log.Warn("POST /v1/events is off: the newest contract is not registered under the topic's subject", "subject", f.topic+"-value", "err", err)
			return nil, nil
		}
		cfg.SchemaID = uint32(id)
	}
	p, err := producer.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("events producer: %w", err)
	}
	return p, nil
}
