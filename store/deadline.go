package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Per-attempt deadlines
//
// A DynamoDB endpoint that accepts a connection and never answers would hold
// a write batch, its partitions' progress and a concurrency slot until TCP
// gives up, and an API read until its request deadline. Every attempt the
// store makes therefore runs under Config.AttemptTimeout: the hand-sent batch
// (sender.go) and every SDK call attempt (a Finalize middleware after the
// retry loop, so the SDK's own retries, where it has any, each get a fresh
// deadline). A timed-out attempt is an AttemptTimeoutError: transient, a
// server-side failure for the breaker, retried like any other.

// AttemptTimeoutError is an attempt that got no answer within the attempt
// timeout. It is transient.
type AttemptTimeoutError struct {
	Timeout time.Duration
	Err     error
}

func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("no answer from DynamoDB within the %v attempt timeout: %v", e.Timeout, e.Err)
}

func (e *AttemptTimeoutError) Unwrap() error { return e.Err }

// RetryableError tells the SDK's retryer that the attempt may be retried.
func (e *AttemptTimeoutError) RetryableError() bool { return true }

// withAttemptDeadline runs f under a deadline of d from now and, if the
// deadline (not ctx) ended it with an error, wraps that error in an
// AttemptTimeoutError.
func withAttemptDeadline[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out, err := f(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		err = &AttemptTimeoutError{Timeout: d, Err: err}
	}
	return out, err
}

// withAttemptTimeout returns a copy of db whose every call attempt runs under
// a deadline of d.
func withAttemptTimeout(db *dynamodb.Client, d time.Duration) *dynamodb.Client {
	return dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(slices.Clone(o.APIOptions), func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("PostflightAttemptDeadline",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					var md middleware.Metadata
					out, err := withAttemptDeadline(ctx, d, func(ctx context.Context) (middleware.FinalizeOutput, error) {
						var err error
						var out middleware.FinalizeOutput
						out, md, err = next.HandleFinalize(ctx, in)
						return out, err
					})
					return out, md, err
				}), middleware.After)
		})
	})
}
