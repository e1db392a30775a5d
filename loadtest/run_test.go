package loadtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// TestRunCanceled: a run canceled during the load returns the context's
// error promptly, with every goroutine it started ended (the race detector
// and the test binary's exit would show the rest). The store is never
// reached: kafka mode writes through Kafka, and no verification runs.
func TestRunCanceled(t *testing.T) {
	brokers, _ := testenv.Kafka(t, "message-events")
	db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1")})
	st, err := store.New(db, store.Config{Table: "unused"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultRunConfig()
	cfg.Brokers, cfg.Service, cfg.ReadsPerSec, cfg.ProbesPerSec = brokers, "", 0, 0
	cfg.Rate, cfg.Duration = 200, time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, cfg, Deps{Store: st})
	if !errors.Is(err, context.DeadlineExceeded) || rep != nil {
		t.Fatalf("Run = %v, %v; want the context's error and no report", rep, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to stop", d)
	}
	if _, err := Run(t.Context(), cfg, Deps{}); err == nil {
		t.Error("Run without a store: nil error")
	}
}
