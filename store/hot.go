package store

import (
	"cmp"
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/postflight/postflight/keydesign"
)

// Hot-account detection
//
// Every process that writes counts the write units it sends per account
// (observe, on the write path) in a count-min sketch: hotDepth rows of
// hotWidth counters, each account adding to one counter per row and
// estimated by the smallest of them. That is a fixed 64 KB per window
// (plus a 32 KB cache of named candidates; two windows are live) whatever
// the number of accounts, never an underestimate, and an
// overestimate by more than e/hotWidth of the window's total units only
// with probability e^-hotDepth. An account whose estimate crosses a
// candidate threshold (a quarter of one shard's budget, scaled to this
// process) is remembered by name, at most hotMaxCandidates per window; the
// sketch cannot list its keys, and only candidates can need a raise.
//
// Windows are HotWindow long and rotate lazily on the first observation
// after their end; the rate over the last HotWindow is the classic sliding
// estimate current + (1 − f)·previous, f the elapsed fraction of the
// current window. The check (Store.Run, every HotWindow/4) scales each
// candidate's local rate to the fleet with Config.HotFleetScale: Kafka is
// keyed by message SID, so every account's events spread evenly over the
// partitions, and a process owning k of P partitions sees k/P of each
// account. An account whose fleet rate exceeds HotShardUnits per shard of
// its current count is raised to keydesign.ShardsFor(rate, HotShardUnits)
// from now on (a raise needs no lead time; see keydesign/doc.go), hottest
// first, at most HotMaxRaisesPerMinute raises per process and one per
// account per HotCooldown. Raises never lower a count, so processes racing
// to raise the same account agree (optimistic concurrency on the config
// item; the loser finds the count already high enough). Detection never
// lowers counts: a decrease is an operator's decision (`postflight shards
// set`), dated at least the lead time ahead.
//
// Observed units are the units of attempted writes (a superseded event's
// conditional write is charged too, and a retried batch is counted again),
// which errs on the side of more shards.
const (
	hotDepth         = 4
	hotWidth         = 4096 // a power of two
	hotMaxCandidates = 1024
	// hotCandidateShare is the fraction of one shard's budget at which an
	// account becomes a candidate: low enough that a rising account is named
	// well before it needs a raise.
	hotCandidateShare = 0.25
)

// hotWindow counts write units per account over [start, end).
type hotWindow struct {
	start, end int64  // unix nanoseconds
	thr        uint32 // candidate threshold: estimated units in this window
	cells      [hotDepth][hotWidth]atomic.Uint32
	cands      sync.Map // account → struct{}
	nCands     atomic.Int32
	// named caches the hashes of named candidates, direct-mapped, so that a
	// hot account's observations skip the map.
	named [hotWidth]atomic.Uint64
}

// hotPair is the current window and the one before it (nil after a gap).
type hotPair struct{ cur, prev *hotWindow }

// hotAccounts detects accounts whose index write rate needs more shards and
// raises them. observe is safe for concurrent use and lock-free; check is
// serialised by a mutex (Store.Run is its only caller in production).
type hotAccounts struct {
	target   float64 // units/s per shard
	window   time.Duration
	cooldown time.Duration
	perMin   int
	scale    func() float64
	seed     maphash.Seed
	win      atomic.Pointer[hotPair]

	mu     sync.Mutex
	shards func(account string, now time.Time) int                        // count in force at now
	raise  func(ctx context.Context, account string, n int) (bool, error) // false: already n or more
	last   map[string]time.Time                                           // last raise (or warning) per account
	raises []time.Time                                                    // raises attempted in the last minute
	full   *hotWindow                                                     // last window reported full

	log     *slog.Logger
	results metric.Int64Counter
	load    metric.Float64Gauge
	attrs   map[string]metric.AddOption
}

// Results of a check's decision about one hot account (metric attribute).
const (
	hotRaised  = "raised"   // shard count raised
	hotAlready = "already"  // another process had raised it
	hotCool    = "cooldown" // raised too recently
	hotLimited = "limited"  // HotMaxRaisesPerMinute reached
	hotAtMax   = "at_max"   // at keydesign.MaxShards and still over target
	hotFailed  = "failed"   // the config update failed
)

// newHotAccounts returns the detector of s, or nil when detection is off
// (observe and check are no-ops on nil).
func newHotAccounts(s *Store, meter metric.Meter) (*hotAccounts, error) {
	c := s.cfg
	if c.HotShardUnits < 0 {
		return nil, nil
	}
	h := &hotAccounts{
		target:   c.HotShardUnits,
		window:   c.HotWindow,
		cooldown: c.HotCooldown,
		perMin:   c.HotMaxRaisesPerMinute,
		scale:    c.HotFleetScale,
		seed:     maphash.MakeSeed(),
		shards:   func(account string, now time.Time) int { return s.Account(account).Schedule.At(now) },
		raise: func(ctx context.Context, account string, n int) (bool, error) {
			_, raised, err := s.raiseShards(ctx, account, n)
			return raised, err
		},
		last:  map[string]time.Time{},
		log:   s.log,
		attrs: map[string]metric.AddOption{},
	}
	var err error
	if h.results, err = meter.Int64Counter("postflight.store.hot_accounts.decisions",
		metric.WithDescription("Hot-account detection's decisions about accounts over their shard budget, by result (raised, already, cooldown, limited, at_max, failed).")); err != nil {
		return nil, err
	}
	if h.load, err = meter.Float64Gauge("postflight.store.hot_accounts.max_shard_load", metric.WithUnit("{unit}/s"),
		metric.WithDescription("Highest estimated fleet-wide index write units/s per shard of any account, at the last check.")); err != nil {
		return nil, err
	}
	for _, r := range []string{hotRaised, hotAlready, hotCool, hotLimited, hotAtMax, hotFailed} {
		h.attrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", r)))
	}
	h.win.Store(&hotPair{cur: h.newWindow(0, nil)})
	return h, nil
}

func (h *hotAccounts) fleetScale() float64 {
	f := h.scale()
	if !(f >= 1) || math.IsInf(f, 0) { // NaN, below 1, infinite: trust the local rate
		return 1
	}
	return f
}

// newWindow returns an empty window from start on. Its candidate threshold
// is hotCandidateShare of a shard's budget scaled to this process, or twice
// the previous window's mean counter if that is higher: at very high local
// rates every counter collects that much from colliding accounts, and a
// threshold below it would name random accounts.
func (h *hotAccounts) newWindow(start int64, prev *hotWindow) *hotWindow {
	w := &hotWindow{start: start, end: start + int64(h.window)}
	thr := h.target * hotCandidateShare * h.window.Seconds() / h.fleetScale()
	if prev != nil {
		var sum float64
		for i := range prev.cells[0] {
			sum += float64(prev.cells[0][i].Load())
		}
		thr = max(thr, 2*sum/hotWidth)
	}
	w.thr = uint32(min(max(thr, 1), math.MaxUint32))
	return w
}

// observe counts units write units of account at now. It is safe for
// concurrent use, lock-free, and allocates only when it opens a window
// (once per HotWindow) or names a new candidate.
func (h *hotAccounts) observe(account string, units int, now time.Time) {
	if h == nil || units <= 0 {
		return
	}
	t := now.UnixNano()
	p := h.win.Load()
	if t >= p.cur.end {
		p = h.rotate(p, t)
	}
	w := p.cur
	x := maphash.String(h.seed, account)
	h1, h2 := uint32(x), uint32(x>>32)|1
	u := uint32(min(units, math.MaxUint16))
	est := uint32(math.MaxUint32)
	for i := range hotDepth {
		est = min(est, w.cells[i][(h1+uint32(i)*h2)&(hotWidth-1)].Add(u))
	}
	if est >= w.thr && w.named[h1&(hotWidth-1)].Load() != x {
		w.candidate(account, x)
	}
}

// rotate opens the window that contains t (unless another goroutine did).
func (h *hotAccounts) rotate(p *hotPair, t int64) *hotPair {
	for {
		var next *hotPair
		if t < p.cur.end+int64(h.window) {
			next = &hotPair{cur: h.newWindow(p.cur.end, p.cur), prev: p.cur}
		} else { // a gap: the old window is out of reach
			next = &hotPair{cur: h.newWindow(t, nil)}
		}
		if h.win.CompareAndSwap(p, next) {
			return next
		}
		if p = h.win.Load(); t < p.cur.end {
			return p
		}
	}
}

// candidate names an account (hash x) as a candidate, up to hotMaxCandidates.
func (w *hotWindow) candidate(account string, x uint64) {
	if _, ok := w.cands.Load(account); !ok {
		if w.nCands.Load() >= hotMaxCandidates {
			return
		}
		w.nCands.Add(1)
		if _, loaded := w.cands.LoadOrStore(strings.Clone(account), struct{}{}); loaded {
			w.nCands.Add(-1)
		}
	}
	w.named[uint32(x)&(hotWidth-1)].Store(x)
}

// count is the window's estimate of an account's units.
func (w *hotWindow) count(seed maphash.Seed, account string) uint32 {
	x := maphash.String(seed, account)
	h1, h2 := uint32(x), uint32(x>>32)|1
	est := uint32(math.MaxUint32)
	for i := range hotDepth {
		est = min(est, w.cells[i][(h1+uint32(i)*h2)&(hotWidth-1)].Load())
	}
	return est
}

// hotRate is a candidate's estimated write rate.
type hotRate struct {
	account string
	local   float64 // units/s this process wrote
	fleet   float64 // scaled to the fleet
}

// rates returns the candidates' local write rates over [t−window, t),
// highest first.
func (h *hotAccounts) rates(t int64) []hotRate {
	p := h.win.Load()
	var newer, older *hotWindow // older is weighted by 1−f
	var f float64
	switch {
	case t < p.cur.end:
		newer, older = p.cur, p.prev
		f = float64(t-p.cur.start) / float64(h.window)
	case t < p.cur.end+int64(h.window): // no write since the window ended
		older = p.cur
		f = float64(t-p.cur.end) / float64(h.window)
	default:
		return nil
	}
	f = min(max(f, 0), 1)
	seen := map[string]bool{}
	var out []hotRate
	add := func(key, _ any) bool {
		a := key.(string)
		if seen[a] {
			return true
		}
		seen[a] = true
		var est float64
		if newer != nil {
			est = float64(newer.count(h.seed, a))
		}
		if older != nil {
			est += (1 - f) * float64(older.count(h.seed, a))
		}
		out = append(out, hotRate{account: a, local: est / h.window.Seconds()})
		return true
	}
	for _, w := range []*hotWindow{newer, older} {
		if w != nil {
			w.cands.Range(add)
			if w.nCands.Load() >= hotMaxCandidates && h.full != w {
				h.full = w
				h.log.Warn("hot-account detection: candidate set full; accounts past it are not tracked in this window",
					"max", hotMaxCandidates, "candidate_units", w.thr)
			}
		}
	}
	scale := h.fleetScale()
	for i := range out {
		out[i].fleet = out[i].local * scale
	}
	slices.SortFunc(out, func(a, b hotRate) int { return cmp.Compare(b.fleet, a.fleet) })
	return out
}

// check raises the shard count of every account whose estimated fleet rate
// exceeds target units/s per shard, within the limits. It is called
// periodically by Store.Run; it logs what it does and never fails.
func (h *hotAccounts) check(ctx context.Context, now time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for a, t := range h.last {
		if now.Sub(t) >= h.cooldown {
			delete(h.last, a)
		}
	}
	h.raises = slices.DeleteFunc(h.raises, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	var maxLoad float64
	for _, r := range h.rates(now.UnixNano()) {
		if ctx.Err() != nil {
			return
		}
		n := h.shards(r.account, now)
		load := r.fleet / float64(n)
		maxLoad = max(maxLoad, load)
		if load <= h.target {
			continue
		}
		need := keydesign.ShardsFor(r.fleet, h.target)
		_, cooling := h.last[r.account]
		switch {
		case need <= n: // at MaxShards: nothing to raise; warn once per cooldown
			if !cooling {
				h.last[r.account] = now
				h.decided(ctx, hotAtMax)
				h.log.Warn("hot account at the maximum index shard count and over the per-shard target",
					"account", r.account, "fleet_units_per_sec", round(r.fleet), "shards", n, "per_shard_target", h.target)
			}
			continue
		case cooling:
			h.decided(ctx, hotCool)
			continue
		case len(h.raises) >= h.perMin:
			h.decided(ctx, hotLimited)
			continue
		}
		h.raises = append(h.raises, now)
		h.last[r.account] = now
		raised, err := h.raise(ctx, r.account, need)
		switch {
		case err != nil:
			h.decided(ctx, hotFailed)
			h.log.Warn("hot account: raising index shards failed", "account", r.account, "shards", need, "err", err)
		case raised:
			h.decided(ctx, hotRaised)
			h.log.Info("hot account: raised index shards", "account", r.account,
				"fleet_units_per_sec", round(r.fleet), "local_units_per_sec", round(r.local),
				"from_shards", n, "to_shards", need, "per_shard_target", h.target)
		default:
			h.decided(ctx, hotAlready)
		}
	}
	h.load.Record(ctx, maxLoad)
}

func (h *hotAccounts) decided(ctx context.Context, result string) {
	h.results.Add(ctx, 1, h.attrs[result])
}

// every is how often Store.Run calls check.
func (h *hotAccounts) every() time.Duration { return max(h.window/4, 100*time.Millisecond) }

func round(f float64) float64 { return math.Round(f*10) / 10 }

// raiseShards raises an account's index shard count to n from now on,
// unless the count in force now is already n or more (raised is then
// false). It never lowers a count, so concurrent raises of one account by
// several processes settle on the highest.
func (s *Store) raiseShards(ctx context.Context, account string, n int) (c AccountConfig, raised bool, err error) {
	c, err = s.updateAccount(ctx, account, func(c *AccountConfig) (bool, error) {
		now := s.cfg.Now()
		raised = false
		if c.Schedule.At(now) >= n {
			return false, nil
		}
		next, err := c.Schedule.Change(now, now, s.cfg.ShardLead(), n)
		if err != nil {
			return false, err
		}
		c.Schedule, raised = next, true
		return true, nil
	})
	return c, raised, err
}
