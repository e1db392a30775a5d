package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// The event write honours the client it was built from: a middleware added
// through APIOptions sees every BatchExecuteStatement the store sends, and
// the writes and their per-statement outcomes are the same as on the fast
// path. Before, the hand-sent request skipped the client's stack entirely.
func TestEventWriteHonoursClientAPIOptions(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	var seen atomic.Int64
	count := func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("CountBatches",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if middleware.GetOperationName(ctx) == "BatchExecuteStatement" {
					seen.Add(1)
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
	db := dynamodb.New(testenv.DynamoDBClient(t, ep).Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, count)
	})
	s := openStore(t, db, store.Config{}, nil, nil)
	ctx := context.Background()
	acc := sid("AC")
	a := msg(acc, 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	b := msg(acc, 2, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, a, b), postflight.Applied, postflight.Applied)
	wantOutcomes(t, write(t, s, withSeq(a, 2, postflight.StatusSent), withSeq(b, 5, postflight.StatusRead)), postflight.Superseded, postflight.Applied)
	if got, err := s.Get(ctx, acc, b.SID); err != nil || got.Sequence != 5 || got.Status != postflight.StatusRead {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if seen.Load() < 3 {
		t.Fatalf("the client's middleware saw %d BatchExecuteStatement calls, want at least 3", seen.Load())
	}
}
