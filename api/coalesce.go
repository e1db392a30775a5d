package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/postflight/postflight/keydesign"
)

// List reads: coalescing and the in-flight cap
//
// A list is the API's expensive request: one DynamoDB Query per index shard
// of the account (the store's list fan-out at once). Two defences keep a
// burst of lists from swamping DynamoDB and this process:
//
//   - Identical concurrent lists share one read. The key is the account, the
//     normalized query (filters, the range as given, sorted statuses, page
//     size) and the cursor of the page token, so requests join only when
//     they would get the same answer; the account is in the key, so nothing
//     is shared across accounts. A request joins only after requireScope and
//     the rate limits admitted it, and after its own parameters and page
//     token were validated. The first request's clock resolves a default
//     range for all of them: they overlap in time, so either answer is right.
//   - At most MaxListInflight reads run at once in the process. A read waits
//     up to ListQueueTimeout for a slot, then every request waiting on it is
//     answered 503 with Retry-After (backpressure, not an unbounded queue).
//
// A read runs in its own goroutine with its own deadline (RequestTimeout),
// detached from the request that started it, so that the first caller
// hanging up does not fail the others. Server.Run waits for reads in flight
// when it shuts down.

// errListBusy: every list slot stayed taken for ListQueueTimeout.
var errListBusy = errors.New("too many list requests in flight")

// listReads coalesces and bounds list reads. Safe for concurrent use.
type listReads struct {
	group   singleflight.Group
	slots   chan struct{} // a token per read in flight
	wait    time.Duration
	timeout time.Duration

	mu     sync.Mutex // orders wg.Add before wg.Wait
	closed bool
	wg     sync.WaitGroup // reads in flight
}

// errShuttingDown: a read was to start after close.
var errShuttingDown = errors.New("the server is shutting down")

// begin registers a read, unless close has been called.
func (l *listReads) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// close refuses new reads and waits for those in flight (each ends within
// RequestTimeout).
func (l *listReads) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
}

func newListReads(cfg *Config) *listReads {
	return &listReads{slots: make(chan struct{}, cfg.MaxListInflight), wait: cfg.ListQueueTimeout, timeout: cfg.RequestTimeout}
}

// do returns the result of read for key: its own, or that of an identical
// read in flight (shared is then true for every caller but the first). It
// returns early with ctx's error if ctx ends first; the read goes on for the
// others.
func (l *listReads) do(ctx context.Context, key string, read func(context.Context) ([]byte, error)) (body []byte, joined bool, err error) {
	leader := false
	ch := l.group.DoChan(key, func() (v any, err error) {
		leader = true
		if !l.begin() {
			return nil, errShuttingDown
		}
		defer l.wg.Done()
		defer func() {
			// singleflight re-panics a panic of a shared call in a new
			// goroutine, which would crash the process: report it instead.
			if p := recover(); p != nil {
				err = fmt.Errorf("list read panicked: %v", p)
			}
		}()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
		defer cancel()
		release, err := l.acquire(rctx)
		if err != nil {
			return nil, err
		}
		defer release()
		return read(rctx)
	})
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, !leader, res.Err
		}
		return res.Val.([]byte), !leader, nil
	}
}

// acquire takes a slot, waiting at most l.wait.
func (l *listReads) acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-t.C:
		return nil, errListBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// inflight returns the number of reads holding a slot.
func (l *listReads) inflight() int { return len(l.slots) }

// flightKey identifies the answer to a list request: the account, the query
// as given (an unset bound stays unset: the first request's clock resolves
// it), the page size and the page token's cursor. Call it after the token
// was decoded (c is its cursor, or nil) and before resolveRange.
func (p *listParams) flightKey(c *keydesign.Cursor) string {
	var b strings.Builder
	// Fields are separated by NUL, which parseList rejects in every value.
	field := func(s string) {
		b.WriteString(s)
		b.WriteByte(0)
	}
	field(p.q.Account)
	field(p.q.To)
	field(p.q.From)
	for _, t := range []struct {
		set bool
		t   time.Time
	}{{p.startSet, p.q.Start}, {p.endSet, p.q.End}} {
		if t.set {
			field(t.t.Format(time.RFC3339Nano))
		} else {
			field("-")
		}
	}
	for _, st := range p.q.Statuses {
		b.WriteString(st.String())
		b.WriteByte(',')
	}
	b.WriteByte(0)
	field(strconv.Itoa(p.q.PageSize))
	if c != nil {
		field(c.After)
		field(strconv.FormatInt(c.Issued.UnixNano(), 10))
	}
	return b.String()
}
