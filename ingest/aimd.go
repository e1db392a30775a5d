package ingest

import (
	"context"
	"sync"
	"time"
)

// aimd is a concurrency limit that grows by one request per round of
// successes and halves on throttling (additive increase, multiplicative
// decrease, as TCP does), at most once per cooldown so that one burst of
// throttled responses halves it once.
type aimd struct {
	min, max float64
	cooldown time.Duration

	mu       sync.Mutex
	limit    float64
	inflight int
	lastCut  time.Time
	wake     chan struct{} // cap 1
}

func newAIMD(initial, lo, hi int, cooldown time.Duration) *aimd {
	return &aimd{min: float64(lo), max: float64(hi), limit: float64(initial), cooldown: cooldown, wake: make(chan struct{}, 1)}
}

// acquire waits for a slot under the current limit.
func (a *aimd) acquire(ctx context.Context) error {
	for {
		a.mu.Lock()
		if a.inflight < int(a.limit) {
			a.inflight++
			a.mu.Unlock()
			return nil
		}
		a.mu.Unlock()
		select {
		case <-a.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release frees a slot and adjusts the limit: throttled halves it, a
// success grows it by 1/limit (one slot per limit's worth of successes),
// and anything else (a failed attempt, one the breaker refused) leaves it:
// only successes show that more concurrency is welcome.
func (a *aimd) release(throttled, succeeded bool, now time.Time) {
	a.mu.Lock()
	a.inflight--
	switch {
	case throttled && now.Sub(a.lastCut) >= a.cooldown:
		a.limit = max(a.min, a.limit/2)
		a.lastCut = now
	case !throttled && succeeded:
		a.limit = min(a.max, a.limit+1/a.limit)
	}
	a.mu.Unlock()
	signal(a.wake)
}

// current returns the limit and the requests in flight.
func (a *aimd) current() (limit float64, inflight int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit, a.inflight
}
