package store

import (
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// Get returns one message of an account. A tombstoned message, one of
// another account, and one older than the account's current retention (or
// its retention floor: retentionCutoff) are all postflight.ErrNotFound.
//
// The read is strongly consistent: right after a Delete it must answer
// ErrNotFound, and right after a redaction the redacted body (the API's
// read-your-own-delete). It costs 1 read unit per 4 KB instead of 0.5, so
// a typical item (under 1 KB) costs 1 RCU per GET instead of 0.5.
func (s *Store) Get(ctx context.Context, account, sid string) (postflight.Message, error) {
	acc, err := s.FreshAccount(ctx, account)
	if err != nil {
		return postflight.Message{}, err
	}
	start := time.Now()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            map[string]types.AttributeValue{keydesign.AttrPK: str(sid), keydesign.AttrSK: str(account)},
		ConsistentRead: aws.Bool(true),
	})
	s.observe(ctx, "get", start, err)
	if err != nil {
		return postflight.Message{}, wrapErr("get message", err)
	}
	m, ok, err := s.decode(ctx, out.Item)
	if err != nil {
		return m, err
	}
	if !ok || m.DateCreated.Before(s.retentionCutoff(acc)) {
		return postflight.Message{}, postflight.ErrNotFound
	}
	return m, nil
}

// ceilMilli rounds t up to a whole millisecond.
func ceilMilli(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); r.Before(t) {
		return r.Add(time.Millisecond)
	}
	return t
}

// retentionCutoff is the oldest date_created a read shows: the account's
// current policy, and never below its retention floor. A record below the
// floor was past the policy in force when the retention last changed: it was
// hidden then, its TTL (the old policy's, plus ttlGrace) may remove it at any
// moment, and ingest refuses its events. Showing it again after a raise would
// answer a record that is about to vanish and can never be written again.
func (s *Store) retentionCutoff(acc AccountConfig) time.Time {
	cut := s.cfg.Now().Add(-days(acc.RetentionDays))
	if acc.RetentionFloor.After(cut) {
		return acc.RetentionFloor
	}
	return cut
}

// ListQuery and ListPage are the domain's (the API declares its own
// interface in terms of them).
type (
	ListQuery = postflight.ListQuery
	ListPage  = postflight.ListPage
)

// List returns one page of an account's messages. It queries every index
// shard of the epochs the range overlaps in parallel (at most ListFanout at
// once) and merges them newest first. Records older than the account's
// current retention are hidden even before DynamoDB's TTL removes them.
func (s *Store) List(ctx context.Context, q ListQuery) (ListPage, error) {
	acc, err := s.FreshAccount(ctx, q.Account)
	if err != nil {
		return ListPage{}, err
	}
	if acc.BadSchedule != nil {
		return ListPage{}, fmt.Errorf("list %s: %w", q.Account, acc.BadSchedule)
	}
	if cut := s.retentionCutoff(acc); q.Start.Before(cut) {
		q.Start = cut
	}
	// date_created is stored to the millisecond, so t ≥ Start and t < End
	// are t ≥ and t < the bounds rounded up to the next millisecond: the
	// half-open range stays exact whatever precision the caller gave.
	q.Start, q.End = ceilMilli(q.Start), ceilMilli(q.End)
	if !q.Start.Before(q.End) {
		return ListPage{}, nil
	}
	hi := keydesign.Before(keydesign.IndexSKBound(q.End))
	if q.After != "" {
		if a := keydesign.Before(q.After); a < hi {
			hi = a
		}
	}
	lo := keydesign.IndexSKBound(q.Start)
	if hi < lo {
		return ListPage{}, nil
	}
	n := acc.Schedule.Over(q.Start, q.End)
	want := q.PageSize + 1 // one more tells whether there is a next page
	// Each shard holds about 1/n of the range; ask for a little more than
	// its share so that most pages need one round of queries.
	limit := min(1000, want*3/(2*n)+8)
	cursors := make([]*shardCursor, n)
	for i := range cursors {
		cursors[i] = &shardCursor{s: s, in: s.listInput(q, i, lo, hi, int32(limit))}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.ListFanout)
	for _, c := range cursors {
		g.Go(func() error { return c.fetch(gctx) })
	}
	if err := g.Wait(); err != nil {
		return ListPage{}, err
	}
	h := make(cursorHeap, 0, n)
	for _, c := range cursors {
		if c.ready() {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	page := ListPage{Messages: make([]postflight.Message, 0, q.PageSize)}
	for len(h) > 0 {
		c := h[0]
		if len(page.Messages) == q.PageSize {
			page.More = true
			break
		}
		page.Messages = append(page.Messages, c.items[0].msg)
		page.Last = c.items[0].sk
		c.items = c.items[1:]
		if len(c.items) == 0 && !c.done {
			if err := c.fetch(ctx); err != nil {
				return ListPage{}, err
			}
		}
		if c.ready() {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return page, nil
}

func (s *Store) listInput(q ListQuery, shard int, lo, hi string, limit int32) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		IndexName:              aws.String(keydesign.IndexName),
		KeyConditionExpression: aws.String("#g = :g AND #t BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{
			"#g": keydesign.AttrIndexPK, "#t": keydesign.AttrIndexSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":g": str(keydesign.IndexPK(q.Account, shard)), ":lo": str(lo), ":hi": str(hi),
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(limit),
	}
	var filters []string
	if q.To != "" {
		in.ExpressionAttributeNames["#to"] = aTo
		in.ExpressionAttributeValues[":to"] = str(q.To)
		filters = append(filters, "#to = :to")
	}
	if q.From != "" {
		in.ExpressionAttributeNames["#fa"] = aFrom
		in.ExpressionAttributeValues[":fa"] = str(q.From)
		filters = append(filters, "#fa = :fa")
	}
	if len(q.Statuses) > 0 {
		in.ExpressionAttributeNames["#st"] = aStatus
		f := "#st IN ("
		for i, st := range q.Statuses {
			name := ":st" + strconv.Itoa(i)
			in.ExpressionAttributeValues[name] = num(int64(st))
			if i > 0 {
				f += ", "
			}
			f += name
		}
		filters = append(filters, f+")")
	}
	for i, f := range filters {
		if i == 0 {
			in.FilterExpression = aws.String(f)
		} else {
			in.FilterExpression = aws.String(*in.FilterExpression + " AND " + f)
		}
	}
	return in
}

type listed struct {
	sk  string
	msg postflight.Message
}

// shardCursor pages through one index shard, newest first.
type shardCursor struct {
	s     *Store
	in    *dynamodb.QueryInput
	items []listed
	done  bool
}

func (c *shardCursor) ready() bool { return len(c.items) > 0 }

// fetch reads pages until it has at least one item or the shard is
// exhausted (a filter can make a page come back empty).
func (c *shardCursor) fetch(ctx context.Context) error {
	for !c.done && len(c.items) == 0 {
		start := time.Now()
		out, err := c.s.db.Query(ctx, c.in)
		c.s.observe(ctx, "query", start, err)
		if err != nil {
			return wrapErr("query index", err)
		}
		for _, item := range out.Items {
			m, ok, err := c.s.decode(ctx, item)
			if err != nil {
				return err
			}
			if ok {
				sk, _ := sAttr(item, keydesign.AttrIndexSK)
				c.items = append(c.items, listed{sk: sk, msg: m})
			}
		}
		c.in.ExclusiveStartKey = out.LastEvaluatedKey
		c.done = len(out.LastEvaluatedKey) == 0
	}
	return nil
}

// cursorHeap orders cursors by their next item, newest (largest key) first.
type cursorHeap []*shardCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].items[0].sk > h[j].items[0].sk }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*shardCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
