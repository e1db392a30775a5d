package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// MaxBatch is the most statements one BatchExecuteStatement carries.
const MaxBatch = 25

// Write strategy
//
// The highest sequence must win, so every write is conditional, and yet
// single-item requests would cost a round trip and an SDK call each.
// BatchWriteItem takes no conditions and transactions cost twice the write
// units and fail as a whole. PartiQL's BatchExecuteStatement does both: up
// to 25 statements per request, each with its own condition and its own
// result, at the price of ordinary writes. A message is first INSERTed
// (fails with DuplicateItem if its item exists); a duplicate is then
// UPDATEd on condition that the stored sequence is lower, there is no
// tombstone and no API correction pinned a field. The rare statement whose
// condition fails is resolved on its own (resolve): read the item, then
// superseded, tombstoned, or rewritten around the pinned fields.
//
// The caller must not put two messages with the same key in one call, nor
// run two calls with the same key at once (ingest's batcher guarantees it);
// across processes the conditions keep the highest sequence.

// WriteBatch writes up to MaxBatch messages and fills res[i] with the outcome
// of msgs[i]. It never returns early: every message gets an outcome, and a
// failed request marks each of its messages Throttled or Unavailable.
func (s *Store) WriteBatch(ctx context.Context, msgs []*postflight.Message, res []postflight.WriteResult) {
	s.WriteBatchStored(ctx, msgs, nil, res)
}

// WriteBatchStored is WriteBatch for messages of which the caller knows
// some are stored (stored[i], or none if stored is nil): those skip the
// INSERT that would fail (and be billed) and go straight to the conditional
// UPDATE. A message wrongly said stored is still written right: its UPDATE
// fails the condition and resolve settles it.
func (s *Store) WriteBatchStored(ctx context.Context, msgs []*postflight.Message, stored []bool, res []postflight.WriteResult) {
	if len(msgs) > MaxBatch || len(res) < len(msgs) || (stored != nil && len(stored) < len(msgs)) {
		panic(fmt.Sprintf("store: WriteBatch of %d messages, %d results", len(msgs), len(res)))
	}
	if err := s.ConfigStale(); err != nil {
		// Retention and shard schedules may have changed unseen: write
		// nothing rather than with a TTL or shard count that may be wrong.
		for i := range msgs {
			res[i] = postflight.WriteResult{Outcome: postflight.Misconfigured, Err: err}
			s.m.writes.Add(ctx, 1, s.m.outcomeAttrs[postflight.Misconfigured]...)
		}
		return
	}
	now := s.cfg.Now()
	var todoBuf, knownBuf [MaxBatch]int
	arena := make([]encoded, len(msgs)) // one allocation for the batch
	encs := make([]*encoded, len(msgs))
	todo, known := todoBuf[:0], knownBuf[:0]
	for i, m := range msgs {
		if r, ok := s.prepare(m, now, &arena[i]); !ok {
			res[i] = r
			continue
		}
		encs[i] = &arena[i]
		if stored != nil && stored[i] {
			known = append(known, i)
		} else {
			todo = append(todo, i)
		}
	}
	exists := append(known, s.execute(ctx, todo, encs, kindInsert, res, types.BatchStatementErrorCodeEnumDuplicateItem)...)
	conflicts := s.execute(ctx, exists, encs, kindUpdate, res, types.BatchStatementErrorCodeEnumConditionalCheckFailed)
	for _, i := range conflicts {
		res[i] = s.resolve(ctx, encs[i])
	}
	var counts [postflight.NumWriteOutcomes]int64 // one Add per outcome, not per message
	for i := range msgs {
		counts[res[i].Outcome]++
	}
	for o, n := range counts {
		if n > 0 {
			s.m.writes.Add(ctx, n, s.m.outcomeAttrs[o]...)
		}
	}
}

// prepare encodes a message into e, or returns false and the outcome that
// says why it is not written.
func (s *Store) prepare(m *postflight.Message, now time.Time, e *encoded) (postflight.WriteResult, bool) {
	acc := s.Account(m.AccountSID)
	if !m.DateCreated.Add(days(acc.RetentionDays)).After(now) || m.DateCreated.Before(acc.RetentionFloor) {
		return postflight.WriteResult{Outcome: postflight.Expired}, false
	}
	n := acc.Schedule.At(m.DateCreated)
	e.set(m, keydesign.IndexPK(m.AccountSID, keydesign.Shard(m.SID, n)), expiry(m.DateCreated, acc.RetentionDays))
	if e.size > MaxItemBytes {
		err := fmt.Errorf("item of about %d bytes exceeds DynamoDB's %d", e.size, MaxItemBytes)
		return postflight.WriteResult{Outcome: postflight.Rejected, Err: err}, false
	}
	s.hot.observe(m.AccountSID, keydesign.WriteUnits(e.size), now)
	return postflight.WriteResult{}, true
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// ttlGrace is how long after its retention ends a record stays on disk: its
// TTL attribute x is date_created + retention days + ttlGrace. Reads hide a
// record at the policy exactly (retentionCutoff), so the grace is never
// visible through the API; it is the time a retention raise's re-stamp job
// has to reach a record before DynamoDB's TTL may delete it. Without it, x
// was date_created + days, and the records just inside the old policy
// expired minutes after a raise, before the job (hours for an account of
// millions of records at --restamp-rate) extended them: records the new
// policy keeps, and the API answered, were lost.
//
// Every process must agree on it (a record written by one is re-stamped or
// read by another), so it is a constant, not a flag. Two days is the
// job's bound: walking oldest first (retention.go), it reaches each record
// before the record's old expiry as long as it keeps within two days of the
// sweep (postflight.store.retention.headroom, alert
// PostflightRetentionHeadroomLow at one day left). Why two: at the default
// 500 records/s one process re-stamps 86 million records in that time, the
// alert at half of it leaves a day to act, and the storage stays a small
// share of any policy but the shortest. It costs two days more of storage per
// record (0.5% at the default 400 days), no write units: x is written
// anyway. Records written before the grace (x = date_created + days) read
// as before; the first re-stamp of their account gives them the grace.
const ttlGrace = 2 * 24 * time.Hour

// expiry is the TTL attribute of a record created at created under a policy
// of n days.
func expiry(created time.Time, n int) time.Time { return created.Add(days(n) + ttlGrace) }

// execute runs one statement per index in idx as a single
// BatchExecuteStatement and records each outcome in res. It returns the
// indexes whose statement failed with next (they go on to the next phase).
func (s *Store) execute(ctx context.Context, idx []int, encs []*encoded, k stmtKind, res []postflight.WriteResult, next types.BatchStatementErrorCodeEnum) []int {
	if len(idx) == 0 {
		return nil
	}
	size := len(`{"Statements":[`) + len(batchBodyEnd) + len(idx)
	for _, i := range idx {
		size += s.stmts.batchBodySize(k, encs[i])
	}
	body := append(make([]byte, 0, size), `{"Statements":[`...)
	for j, i := range idx {
		if j > 0 {
			body = append(body, ',')
		}
		body = s.stmts.appendStatement(body, k, encs[i])
	}
	body = append(body, batchBodyEnd...)
	op := "insert"
	if k != kindInsert {
		op = "update"
	}
	start := time.Now()
	out, err := s.batch.send(ctx, body)
	s.observe(ctx, op, start, err)
	var results []statementResult
	if err == nil {
		results = out.Responses
		s.countUnits(ctx, k, out.ConsumedCapacity)
	}
	if err == nil && len(results) != len(idx) {
		err = fmt.Errorf("batch of %d statements answered with %d responses", len(idx), len(results))
	}
	if err != nil {
		o := classify(err)
		if o == postflight.Rejected && len(idx) > 1 {
			// A client fault: one statement's item is to blame. Split
			// until it is alone, so it alone is rejected.
			h := len(idx) / 2
			return append(s.execute(ctx, idx[:h:h], encs, k, res, next), s.execute(ctx, idx[h:], encs, k, res, next)...)
		}
		for _, i := range idx {
			res[i] = postflight.WriteResult{Outcome: o, Err: err}
		}
		return nil
	}
	var later []int
	for j, i := range idx {
		e := results[j].Error
		switch {
		case e == nil:
			res[i] = postflight.WriteResult{Outcome: postflight.Applied}
		case types.BatchStatementErrorCodeEnum(e.Code) == next:
			later = append(later, i)
		default:
			res[i] = postflight.WriteResult{Outcome: statementOutcome(types.BatchStatementErrorCodeEnum(e.Code)), Err: &StatementError{Code: e.Code, Message: e.Message}}
		}
	}
	return later
}

func (s *Store) observe(ctx context.Context, op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = classify(err).String()
	}
	s.m.requests.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op), attribute.String("result", result)))
	s.m.latency.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("op", op)))
}

// StatementError is DynamoDB's error for one statement of a batch.
type StatementError struct {
	Code    string
	Message string
}

func (e *StatementError) Error() string { return "dynamodb: " + e.Code + ": " + e.Message }

// resolve settles a message whose conditional UPDATE failed: it reads the
// item and decides. A stored item with pinned fields (redacted body,
// corrected price) is rewritten with the new event's state around them, on
// condition that its revision has not moved. Under contention it tries again
// a few times, then gives the message back as Unavailable for the pipeline
// to retry later.
func (s *Store) resolve(ctx context.Context, e *encoded) postflight.WriteResult {
	for range 4 {
		start := time.Now()
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &s.table,
			Key:            map[string]types.AttributeValue{keydesign.AttrPK: str(e.sid), keydesign.AttrSK: str(e.account)},
			ConsistentRead: aws.Bool(true),
		}, s.noRetry)
		s.observe(ctx, "resolve", start, err)
		if err != nil {
			return postflight.WriteResult{Outcome: classify(err), Err: err}
		}
		item := out.Item
		k, w, rev := kindInsert, e, int64(0)
		switch {
		case item == nil: // expired or removed since: write it afresh
		case item[aDeleted] != nil:
			return postflight.WriteResult{Outcome: postflight.Tombstoned}
		default:
			if stored, _ := nAttr(item, aSeq); stored >= e.msg.Sequence {
				return postflight.WriteResult{Outcome: postflight.Superseded}
			}
			rev, _ = nAttr(item, aRev)
			k = kindPinned
			if w, err = s.aroundPins(e, item); err != nil {
				return postflight.WriteResult{Outcome: postflight.Rejected, Err: err}
			}
		}
		start = time.Now()
		_, err = s.db.ExecuteStatement(ctx, &dynamodb.ExecuteStatementInput{Statement: aws.String(s.stmts.text(k)), Parameters: w.params(k, rev)}, s.noRetry)
		s.observe(ctx, "resolve", start, err)
		var ccf *types.ConditionalCheckFailedException
		var dup *types.DuplicateItemException
		switch {
		case err == nil:
			return postflight.WriteResult{Outcome: postflight.Applied}
		case errors.As(err, &ccf), errors.As(err, &dup):
			continue // changed under us: read again
		default:
			return postflight.WriteResult{Outcome: classify(err), Err: err}
		}
	}
	return postflight.WriteResult{Outcome: postflight.Unavailable, Err: errors.New("item kept changing while resolving a conditional write")}
}

// aroundPins re-encodes e's message keeping the fields the stored item's API
// corrections pinned: a redacted body stays "", a corrected price stays.
func (s *Store) aroundPins(e *encoded, item map[string]types.AttributeValue) (*encoded, error) {
	_, redacted := item[aRedacted]
	_, priceFixed := item[aPriceFixed]
	if !redacted && !priceFixed {
		return e, nil
	}
	stored, ok, err := s.decode(context.Background(), item)
	if err != nil || !ok {
		return nil, fmt.Errorf("read pinned fields: %w", err)
	}
	m := *e.msg
	if redacted {
		empty := ""
		m.Body = &empty
	}
	if priceFixed {
		m.PriceMicros, m.PriceUnit = stored.PriceMicros, stored.PriceUnit
	}
	return encode(&m, e.indexPK, time.Unix(e.expires, 0)), nil
}
