package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/producer"
)

// TestPublisherWithoutKafka: the API's publisher connects on first use, so
// serve starts while Kafka is down; a publish then fails (503), and the
// next ones within reconnectAfter fail with the same error at once rather
// than each waiting for a connection.
func TestPublisherWithoutKafka(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	f := defaultFlags(t)
	f.brokers = addr
	p := newPublisher(f, 15*time.Minute, slog.New(slog.DiscardHandler))
	defer p.Close()
	ev := []postflight.Event{{}}
	var ve *producer.ValidationError
	if err := p.Validate(ev); !errors.As(err, &ve) {
		t.Fatalf("Validate needs no Kafka and must reject an empty event: %v", err)
	}
	ctx := context.Background()
	_, err1 := p.Publish(ctx, ev)
	_, err2 := p.Publish(ctx, ev)
	if err1 == nil || !errors.Is(err2, err1) {
		t.Fatalf("errors %v, %v: want a failure, then the same one", err1, err2)
	}
	p.Close()
	p.retryAt = time.Time{}
	if _, err := p.Publish(ctx, ev); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
