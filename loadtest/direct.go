package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/store"
)

// directBatch is how many messages one direct-mode operation writes: a
// full store.WriteBatch.
const directBatch = store.MaxBatch

// Retries of a direct write whose messages came back Throttled or
// Unavailable (the store does not retry writes itself).
const (
	directAttempts   = 8
	directBackoffMin = 25 * time.Millisecond
	directBackoffMax = time.Second
)

// directWriter is the write side of --mode direct: operation b writes the
// final states of messages b·25 … b·25+24 with one store.WriteBatch (the
// project's key design and conditional writes), retrying throttled and
// unavailable messages with capped backoff. Its op and observe are safe for
// concurrent use.
type directWriter struct {
	st      *store.Store
	plan    func(m int64) *MessagePlan
	ledger  *ledger
	coll    *Collector
	written atomic.Int64 // messages written
	results sync.Map     // batch → *directResult, from op to observe
}

type directResult struct {
	ok []*MessagePlan // messages written
}

func (d *directWriter) op(ctx context.Context, b int64) error {
	plans := make([]*MessagePlan, 0, directBatch)
	msgs := make([]*postflight.Message, 0, directBatch)
	for i := range int64(directBatch) {
		p := d.plan(b*directBatch + i)
		if p.Final != nil {
			plans = append(plans, p)
			msgs = append(msgs, p.Final)
		}
	}
	res := make([]postflight.WriteResult, len(msgs))
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	failed := 0
	wait := directBackoffMin
	for attempt := 1; len(todo) > 0; attempt++ {
		sub := make([]*postflight.Message, len(todo))
		for j, i := range todo {
			sub[j] = msgs[i]
		}
		subRes := make([]postflight.WriteResult, len(sub))
		d.st.WriteBatch(ctx, sub, subRes)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var again []int
		for j, i := range todo {
			r := subRes[j]
			res[i] = r
			switch r.Outcome {
			case postflight.Applied, postflight.Superseded: // written (or already, by an earlier run)
			case postflight.Throttled, postflight.Unavailable:
				d.coll.Error(time.Now(), "write_"+r.Outcome.String())
				if attempt < directAttempts {
					again = append(again, i)
					continue
				}
				failed++
			default: // rejected, tombstoned, expired: retrying cannot help
				d.coll.Error(time.Now(), "write_"+r.Outcome.String())
				failed++
			}
		}
		todo = again
		if len(todo) > 0 {
			if !sleepCtx(ctx, wait) {
				return ctx.Err()
			}
			wait = min(2*wait, directBackoffMax)
		}
	}
	out := &directResult{ok: make([]*MessagePlan, 0, len(plans))}
	for i, p := range plans {
		if o := res[i].Outcome; o == postflight.Applied || o == postflight.Superseded {
			out.ok = append(out.ok, p)
		} else {
			d.ledger.fail(p.Index)
		}
	}
	d.results.Store(b, out)
	d.written.Add(int64(len(out.ok)))
	if failed > 0 {
		return &opError{kind: "write_failed", err: fmt.Errorf("%d of %d messages not written", failed, len(plans))}
	}
	return nil
}

// observe records a finished operation: the batch's latency once per
// message written, and each written message in the ledger.
func (d *directWriter) observe(r OpResult) {
	v, ok := d.results.LoadAndDelete(r.Seq)
	if !ok { // the whole operation failed
		for i := range int64(directBatch) {
			d.ledger.fail(r.Seq*directBatch + i)
		}
		d.coll.Error(r.Intended, kindOf(r.Err, "write_error"))
		return
	}
	res := v.(*directResult)
	if r.Err != nil {
		d.coll.Error(r.Intended, kindOf(r.Err, "write_error"))
	}
	d.coll.Write.RecordN(r.Intended, r.Latency(), int64(len(res.ok)))
	for _, p := range res.ok {
		d.ledger.finalWritten(p, r.Intended)
	}
}
