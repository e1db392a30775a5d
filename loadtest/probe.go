package loadtest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/store"
)

// probeTarget is where probes look for a message: the API in kafka mode,
// the table itself in direct mode.
type probeTarget interface {
	// get returns the message as read by a get; found is false while it
	// is not readable.
	get(ctx context.Context, account, sid string) (m postflight.Message, found bool, err error)
	// listed reports whether the account's list of messages created in
	// the millisecond of created holds sid (an index query).
	listed(ctx context.Context, account, sid string, created time.Time) (bool, error)
}

// storeTarget follows probes in the table, through the store's own get and
// index query.
type storeTarget struct{ st *store.Store }

func (s storeTarget) get(ctx context.Context, account, sid string) (postflight.Message, bool, error) {
	m, err := s.st.Get(ctx, account, sid)
	if errors.Is(err, postflight.ErrNotFound) {
		return m, false, nil
	}
	return m, err == nil, err
}

func (s storeTarget) listed(ctx context.Context, account, sid string, created time.Time) (bool, error) {
	q := store.ListQuery{Account: account, Start: created, End: created.Add(time.Millisecond), PageSize: 1000}
	for range 10 {
		page, err := s.st.List(ctx, q)
		if err != nil {
			return false, err
		}
		for _, m := range page.Messages {
			if m.SID == sid {
				return true, nil
			}
		}
		if !page.More {
			return false, nil
		}
		q.After = page.Last
	}
	return false, nil
}

// probe follows one message whose winning final state was written at
// written.
type probe struct {
	plan    *MessagePlan
	written time.Time
}

// probes follow a sample of messages: from the write of the final state
// until a get returns it (end-to-end latency), then until the index query
// lists it (index lag, from the moment the get saw it). A bounded queue
// feeds a fixed set of workers; when it is full a sample is dropped (and
// counted) rather than queued without bound. Start with startProbes; close
// ends the workers after the queued probes are done.
type probes struct {
	target  probeTarget
	coll    *Collector
	timeout time.Duration
	queue   chan probe
	wg      sync.WaitGroup
}

// startProbes starts workers that follow probes until close. A probe gives
// up after timeout (counted as probe_timeout or index_timeout).
func startProbes(ctx context.Context, target probeTarget, coll *Collector, workers int, timeout time.Duration) *probes {
	p := &probes{target: target, coll: coll, timeout: timeout, queue: make(chan probe, 4*workers)}
	for range workers {
		p.wg.Go(func() {
			for pr := range p.queue {
				p.follow(ctx, pr)
			}
		})
	}
	return p
}

// submit queues a probe, or counts it as dropped when the queue is full.
// Safe for concurrent use; not after close.
func (p *probes) submit(pr probe) {
	select {
	case p.queue <- pr:
	default:
		p.coll.Error(pr.written, "probe_dropped")
	}
}

// close waits for the queued and running probes to finish.
func (p *probes) close() {
	close(p.queue)
	p.wg.Wait()
}

// pollInterval is how long a probe waits between looks: a tenth of the time
// it has waited so far (so the measurement is good to about 10%), at least
// 5 ms and at most 100 ms. A probe of a message that appears after 500 ms
// asks about 30 times.
func pollInterval(elapsed time.Duration) time.Duration {
	return min(max(elapsed/10, 5*time.Millisecond), 100*time.Millisecond)
}

func (p *probes) follow(ctx context.Context, pr probe) {
	want := pr.plan.Final
	readable, ok := p.poll(ctx, pr.written, "probe", func() (bool, error) {
		m, found, err := p.target.get(ctx, pr.plan.Account, pr.plan.SID)
		return found && m.Sequence >= want.Sequence, err
	})
	if !ok {
		return
	}
	p.coll.EndToEnd.Record(pr.written, readable.Sub(pr.written))
	listed, ok := p.poll(ctx, readable, "index", func() (bool, error) {
		return p.target.listed(ctx, pr.plan.Account, pr.plan.SID, want.DateCreated)
	})
	if ok {
		p.coll.IndexLag.Record(readable, listed.Sub(readable))
	}
}

// poll calls look until it reports true, returning when it did. It gives up
// at timeout after from (or when ctx ends); the first error of a probe and
// a timeout are counted under kind.
func (p *probes) poll(ctx context.Context, from time.Time, kind string, look func() (bool, error)) (time.Time, bool) {
	deadline := from.Add(p.timeout)
	counted := false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-t.C:
		}
		ok, err := look()
		now := time.Now()
		if ok {
			return now, true
		}
		if err != nil && !counted && ctx.Err() == nil {
			p.coll.Error(now, kind+"_"+errorKind(err))
			counted = true
		}
		if now.After(deadline) {
			p.coll.Error(now, kind+"_timeout")
			return time.Time{}, false
		}
		t.Reset(pollInterval(now.Sub(from)))
	}
}
