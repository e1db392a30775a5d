package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// MaxBatchGet is the most keys one BatchGetItem request carries.
const MaxBatchGet = 100

// Key is the base-table key of a message: its account and SID.
type Key struct {
	Account string
	SID     string
}

// ErrBatchGetStalled: DynamoDB kept handing back the same unprocessed keys.
var ErrBatchGetStalled = errors.New("batch get: unprocessed keys made no progress")

// batchGetStall is how many answers in a row may return nothing before
// BatchGet gives up with ErrBatchGetStalled.
const batchGetStall = 12

// BatchGet reads the messages with the given keys, MaxBatchGet keys per
// BatchGetItem request (one request at a time), with strongly consistent
// reads, and returns those stored, in no particular order. Keys given twice
// are read once. A missing message and a tombstone are both left out, and
// the account's retention is NOT applied: BatchGet returns what is stored
// (the load test's verifier uses it), not what the API would show.
//
// Keys DynamoDB leaves unprocessed (throttling, the 16 MB response limit)
// are asked again with capped exponential backoff until they are read, ctx
// ends, or batchGetStall answers in a row return nothing.
func (s *Store) BatchGet(ctx context.Context, keys []Key) ([]postflight.Message, error) {
	out := make([]postflight.Message, 0, len(keys))
	seen := make(map[Key]struct{}, len(keys))
	for len(keys) > 0 {
		chunk := make([]map[string]types.AttributeValue, 0, MaxBatchGet)
		for len(keys) > 0 && len(chunk) < MaxBatchGet {
			k := keys[0]
			keys = keys[1:]
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			chunk = append(chunk, map[string]types.AttributeValue{keydesign.AttrPK: str(k.SID), keydesign.AttrSK: str(k.Account)})
		}
		err := s.batchGet(ctx, chunk, nil, func(item map[string]types.AttributeValue) error {
			m, ok, err := s.decode(ctx, item)
			if ok {
				out = append(out, m)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// batchGet reads one request's worth of keys (≤ MaxBatchGet), retrying
// unprocessed keys, and hands each item found to visit. proj, if not nil,
// sets a projection on the request.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, proj func(*types.KeysAndAttributes), visit func(map[string]types.AttributeValue) error) error {
	const (
		backoffMin = 20 * time.Millisecond
		backoffMax = time.Second
	)
	wait := backoffMin
	idle := 0
	for len(keys) > 0 {
		start := time.Now()
		ka := types.KeysAndAttributes{Keys: keys, ConsistentRead: aws.Bool(true)}
		if proj != nil {
			proj(&ka)
		}
		resp, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.table: ka},
		})
		s.observe(ctx, "batch_get", start, err)
		if err != nil {
			return fmt.Errorf("batch get: %w", err)
		}
		items := resp.Responses[s.table]
		for _, item := range items {
			if err := visit(item); err != nil {
				return fmt.Errorf("batch get: %w", err)
			}
		}
		keys = resp.UnprocessedKeys[s.table].Keys
		if len(keys) == 0 {
			break
		}
		if len(items) > 0 {
			wait, idle = backoffMin, 0 // progress: ask again at once, gently
		} else if idle++; idle >= batchGetStall {
			return fmt.Errorf("%w: %d keys left", ErrBatchGetStalled, len(keys))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("batch get: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, backoffMax)
	}
	return nil
}
