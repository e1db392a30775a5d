package loadtest

import (
	"math/rand/v2"
	"sync"
	"time"
)

// ledger records what became of the run's messages as writes complete:
// which ones had a write fail (they are not verified: their state is
// unknown), and which final states were written, for the reads to get and
// the probes to follow. It is safe for concurrent use.
type ledger struct {
	mu     sync.Mutex
	failed map[int64]struct{}

	recent      *recentFinals
	probes      *probes // nil: no probes
	sampleEvery int64   // probe messages whose index is a multiple of it
}

func newLedger(recent *recentFinals, pr *probes, sampleEvery int64) *ledger {
	return &ledger{failed: map[int64]struct{}{}, recent: recent, probes: pr, sampleEvery: max(sampleEvery, 1)}
}

// fail marks message m as not (certainly) written.
func (l *ledger) fail(m int64) {
	l.mu.Lock()
	l.failed[m] = struct{}{}
	l.mu.Unlock()
}

// isFailed reports whether a write of message m failed.
func (l *ledger) isFailed(m int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.failed[m]
	return ok
}

// finalWritten notes that p's winning final state was written by an
// operation intended to start at at.
func (l *ledger) finalWritten(p *MessagePlan, at time.Time) {
	l.recent.add(recentMessage{account: p.Account, sid: p.SID, at: at})
	if l.probes != nil && p.Index%l.sampleEvery == 0 {
		l.probes.submit(probe{plan: p, written: at})
	}
}

// recentMessage is a message whose final state was written at at.
type recentMessage struct {
	account, sid string
	at           time.Time
}

// recentFinals is a ring of the latest messages written final, which the
// reads pick their gets from (so gets find messages that exist, mostly of
// the hot accounts, as the Zipf mix wrote them). Safe for concurrent use.
type recentFinals struct {
	mu   sync.Mutex
	ring []recentMessage
	n    int // entries filled
	next int
}

func newRecentFinals(size int) *recentFinals {
	return &recentFinals{ring: make([]recentMessage, size)}
}

func (r *recentFinals) add(m recentMessage) {
	r.mu.Lock()
	r.ring[r.next] = m
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// pick returns a random entry written no later than before, trying a few.
func (r *recentFinals) pick(rng *rand.Rand, before time.Time) (recentMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range 4 {
		if r.n == 0 {
			return recentMessage{}, false
		}
		m := r.ring[rng.IntN(r.n)]
		if !m.at.After(before) {
			return m, true
		}
	}
	return recentMessage{}, false
}
