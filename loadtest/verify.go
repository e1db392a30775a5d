package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/store"
)

// Verification is what the verifier found.
type Verification struct {
	// ProducedFinal counts the messages whose final state was completely
	// written (every event acknowledged, or the direct write applied).
	ProducedFinal int64
	// Verified were read back exactly as expected; Lost were missing at
	// the deadline; Wrong were read back in another state (a wrong final
	// state, one still behind at the deadline, or a record of a message
	// that never became final).
	Verified, Lost, Wrong int64
}

// verifier checks a run's messages in the table with batched, strongly
// consistent reads (store.BatchGet). Messages are regenerated from their
// index rather than remembered.
type verifier struct {
	st   *store.Store
	plan func(m int64) *MessagePlan
	log  *slog.Logger
	// chunk messages are regenerated and read per task, parallel tasks at
	// once.
	chunk, parallel int
	// poll is the wait between looks at the messages still pending.
	poll time.Duration
}

// Verdicts of one message.
type verdict uint8

const (
	verdictOK      verdict = iota // as expected (or, never final, absent)
	verdictMissing                // not stored (yet)
	verdictBehind                 // stored with a lower sequence (yet)
	verdictWrong                  // settled in a wrong state
)

type pending struct {
	plan    *MessagePlan
	verdict verdict
	why     string
}

// run checks every message m in [0, messages) for which include(plan) is
// true: at once, then the missing and behind ones again every poll until
// none is left or deadline passes. include must be safe for concurrent use.
func (v *verifier) run(ctx context.Context, messages int64, include func(*MessagePlan) bool, deadline time.Time) (Verification, error) {
	var (
		mu   sync.Mutex
		res  Verification
		left []pending
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.parallel)
	for lo := int64(0); lo < messages; lo += int64(v.chunk) {
		hi := min(lo+int64(v.chunk), messages)
		g.Go(func() error {
			plans := make([]*MessagePlan, 0, hi-lo)
			for m := lo; m < hi; m++ {
				if p := v.plan(m); include(p) {
					plans = append(plans, p)
				}
			}
			checked, err := v.check(gctx, plans)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, c := range checked {
				if c.plan.Final != nil {
					res.ProducedFinal++
				}
				left = v.settle(&res, left, c)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	for len(left) > 0 && time.Now().Add(v.poll).Before(deadline) {
		if !sleepCtx(ctx, v.poll) {
			return res, ctx.Err()
		}
		plans := make([]*MessagePlan, len(left))
		for i, p := range left {
			plans[i] = p.plan
		}
		checked, err := v.check(ctx, plans)
		if err != nil {
			return res, err
		}
		left = left[:0]
		for _, c := range checked {
			left = v.settle(&res, left, c)
		}
	}
	examples := map[verdict]int{}
	for _, p := range left {
		if p.verdict == verdictMissing {
			res.Lost++
		} else {
			res.Wrong++
		}
		if examples[p.verdict]++; examples[p.verdict] <= 5 {
			v.log.Warn("message not as expected at the verification deadline",
				"account", p.plan.Account, "sid", p.plan.SID, "problem", p.why)
		}
	}
	return res, nil
}

// settle counts a checked message as verified or wrong, or appends it to
// left when it may still change.
func (v *verifier) settle(res *Verification, left []pending, c pending) []pending {
	switch c.verdict {
	case verdictOK:
		if c.plan.Final != nil {
			res.Verified++
		}
	case verdictWrong:
		res.Wrong++
		v.log.Warn("message stored wrong", "account", c.plan.Account, "sid", c.plan.SID, "problem", c.why)
	default:
		left = append(left, c)
	}
	return left
}

// check reads plans' messages and judges each.
func (v *verifier) check(ctx context.Context, plans []*MessagePlan) ([]pending, error) {
	keys := make([]store.Key, len(plans))
	for i, p := range plans {
		keys[i] = store.Key{Account: p.Account, SID: p.SID}
	}
	got, err := v.st.BatchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	stored := make(map[store.Key]*postflight.Message, len(got))
	for i := range got {
		stored[store.Key{Account: got[i].AccountSID, SID: got[i].SID}] = &got[i]
	}
	out := make([]pending, len(plans))
	for i, p := range plans {
		out[i] = judge(p, stored[keys[i]])
	}
	return out, nil
}

// judge compares what is stored of a message (nil: nothing) with its plan.
func judge(p *MessagePlan, got *postflight.Message) pending {
	want := p.Final
	switch {
	case want == nil && got == nil:
		return pending{plan: p, verdict: verdictOK}
	case want == nil:
		return pending{plan: p, verdict: verdictWrong, why: fmt.Sprintf("stored (status %v, sequence %d) though no event of it was final", got.Status, got.Sequence)}
	case got == nil:
		return pending{plan: p, verdict: verdictMissing, why: "missing"}
	case got.Sequence < want.Sequence:
		return pending{plan: p, verdict: verdictBehind, why: fmt.Sprintf("sequence %d, want %d", got.Sequence, want.Sequence)}
	}
	if d := MessageDiff(want, got); d != "" {
		return pending{plan: p, verdict: verdictWrong, why: d}
	}
	return pending{plan: p, verdict: verdictOK}
}

// MessageDiff describes the first difference between the record a message
// should have and the one read back ("" when they agree). Revision is not
// compared.
func MessageDiff(want, got *postflight.Message) string {
	type field struct {
		name      string
		want, got any
	}
	opt := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	optI64 := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	optI32 := func(p *int32) any {
		if p == nil {
			return nil
		}
		return *p
	}
	optT := func(p *time.Time) any {
		if p == nil {
			return nil
		}
		return p.UTC().UnixMilli()
	}
	for _, f := range []field{
		{"sid", want.SID, got.SID},
		{"account_sid", want.AccountSID, got.AccountSID},
		{"sequence", want.Sequence, got.Sequence},
		{"status", want.Status, got.Status},
		{"channel", want.Channel, got.Channel},
		{"direction", want.Direction, got.Direction},
		{"from", want.From, got.From},
		{"to", want.To, got.To},
		{"body", opt(want.Body), opt(got.Body)},
		{"num_segments", want.NumSegments, got.NumSegments},
		{"num_media", want.NumMedia, got.NumMedia},
		{"price_micros", optI64(want.PriceMicros), optI64(got.PriceMicros)},
		{"price_unit", opt(want.PriceUnit), opt(got.PriceUnit)},
		{"error_code", optI32(want.ErrorCode), optI32(got.ErrorCode)},
		{"messaging_service_sid", opt(want.MessagingServiceSID), opt(got.MessagingServiceSID)},
		{"content_sid", opt(want.ContentSID), opt(got.ContentSID)},
		{"date_created", want.DateCreated.UTC().UnixMilli(), got.DateCreated.UTC().UnixMilli()},
		{"date_sent", optT(want.DateSent), optT(got.DateSent)},
		{"date_updated", want.DateUpdated.UTC().UnixMilli(), got.DateUpdated.UTC().UnixMilli()},
	} {
		if f.want != f.got {
			if f.name == "body" {
				return "body differs"
			}
			return fmt.Sprintf("%s: got %v, want %v", f.name, f.got, f.want)
		}
	}
	if len(want.Tags) != len(got.Tags) || !maps.Equal(want.Tags, got.Tags) {
		return fmt.Sprintf("tags: got %v, want %v", got.Tags, want.Tags)
	}
	return ""
}
