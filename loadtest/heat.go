package loadtest

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/postflight/postflight/keydesign"
)

// HeatConfig describes the traffic `loadtest heat` simulates against the key
// design (keydesign/doc.go). Zero fields take the defaults noted.
type HeatConfig struct {
	// Rate is final messages per second, all accounts together.
	Rate float64 `json:"rate"`
	// Accounts is the number of accounts in the Zipf mix.
	Accounts int `json:"accounts"`
	// TopShare is the largest account's share of all messages; the Zipf
	// exponent is solved to match it exactly.
	TopShare float64 `json:"top_share"`
	// ItemBytes is the size of a base item, which sets its write units.
	ItemBytes int `json:"item_bytes"`
	// IndexItemBytes is the size of an index item. 0: ItemBytes (the index
	// projects every attribute).
	IndexItemBytes int `json:"index_item_bytes"`
	// WritesPerMessage is the mean number of stored (final) writes per
	// message, ≥ 1: each message writes ⌊w⌋ times, plus once more with
	// probability w−⌊w⌋ (a later final event superseding the first). Every
	// write rewrites both the base item and its index item. 0: 1.
	WritesPerMessage float64 `json:"writes_per_message"`
	// PerShard is the index shard sizing target in write units/s: an account
	// writing U units/s gets keydesign.ShardsFor(U, PerShard) shards. 0: 500.
	PerShard float64 `json:"per_shard_units"`
	// Limit is the per-partition-key budget the result is judged against,
	// in write units/s. 0: 1000 (one DynamoDB partition).
	Limit float64 `json:"limit_units"`
	// Seconds of traffic to simulate. 0: 10.
	Seconds int `json:"seconds"`
	// Seed makes a run reproducible: the same config gives the same result.
	Seed uint64 `json:"seed"`
	// Unsharded gives every account one index key, ignoring ShardsFor: the
	// design without sharding, which shows that the check can fail.
	Unsharded bool `json:"unsharded,omitempty"`
	// Workers is the number of seconds simulated in parallel. 0: GOMAXPROCS.
	Workers int `json:"-"`
}

// DefaultHeatConfig returns the acceptance case of DESIGN.md §2: 100k
// messages/s over a million accounts, the largest sending 10%, 1 KB items.
func DefaultHeatConfig() HeatConfig {
	return HeatConfig{
		Rate:             100_000,
		Accounts:         1_000_000,
		TopShare:         0.10,
		ItemBytes:        1000,
		WritesPerMessage: 1.2,
		PerShard:         500,
		Limit:            1000,
		Seconds:          10,
		Seed:             1,
	}
}

func (c HeatConfig) withDefaults() HeatConfig {
	if c.IndexItemBytes == 0 {
		c.IndexItemBytes = c.ItemBytes
	}
	if c.WritesPerMessage == 0 {
		c.WritesPerMessage = 1
	}
	if c.PerShard == 0 {
		c.PerShard = 500
	}
	if c.Limit == 0 {
		c.Limit = 1000
	}
	if c.Seconds == 0 {
		c.Seconds = 10
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c
}

// maxHeatMessages bounds the messages one simulation samples (Rate·Seconds).
const maxHeatMessages = 200_000_000

// maxItemBytes is DynamoDB's item size limit.
const maxItemBytes = 400 * 1024

// Validate checks the config after defaults are applied.
func (c HeatConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("heat: rate %v must be > 0", c.Rate)
	case c.Rate*float64(c.Seconds) > maxHeatMessages:
		return fmt.Errorf("heat: rate × seconds = %.0f messages, more than %d", c.Rate*float64(c.Seconds), maxHeatMessages)
	case c.Accounts < 1 || c.Accounts > maxZipfN:
		return fmt.Errorf("heat: accounts %d out of range [1,%d]", c.Accounts, maxZipfN)
	case c.ItemBytes < 1 || c.ItemBytes > maxItemBytes:
		return fmt.Errorf("heat: item bytes %d out of range [1,%d]", c.ItemBytes, maxItemBytes)
	case c.IndexItemBytes < 1 || c.IndexItemBytes > maxItemBytes:
		return fmt.Errorf("heat: index item bytes %d out of range [1,%d]", c.IndexItemBytes, maxItemBytes)
	case !(c.WritesPerMessage >= 1) || c.WritesPerMessage > 100:
		return fmt.Errorf("heat: writes per message %v out of range [1,100]", c.WritesPerMessage)
	case !(c.PerShard > 0) || math.IsInf(c.PerShard, 0):
		return fmt.Errorf("heat: per-shard units %v must be > 0", c.PerShard)
	case !(c.Limit > 0) || math.IsInf(c.Limit, 0):
		return fmt.Errorf("heat: limit %v must be > 0", c.Limit)
	case c.Seconds < 1 || c.Seconds > 3600:
		return fmt.Errorf("heat: seconds %d out of range [1,3600]", c.Seconds)
	}
	if _, err := ZipfExponent(c.Accounts, c.TopShare); err != nil {
		return fmt.Errorf("heat: top share %v over %d accounts: %w", c.TopShare, c.Accounts, err)
	}
	return nil
}

// HeatResult is the output of `loadtest heat` (its --json form). Loads are
// DynamoDB write units per partition key per second, counted per (key,
// simulated second); p99s are over the (key, second) pairs that saw writes.
type HeatResult struct {
	Config       HeatConfig `json:"config"`
	ZipfExponent float64    `json:"zipf_exponent"`
	Messages     int64      `json:"messages"`

	TopAccount               string  `json:"top_account"`
	TopAccountShare          float64 `json:"top_account_share"`
	TopAccountUnitsPerSec    float64 `json:"top_account_units_per_sec"`
	TopAccountShards         int     `json:"top_account_shards"`
	TopAccountUnitsPerShard  float64 `json:"top_account_units_per_shard"`
	ShardedAccounts          int     `json:"sharded_accounts"`
	MaxBaseKeyUnitsPerSec    int64   `json:"max_base_key_units_per_sec"`
	P99BaseKeyUnitsPerSec    int64   `json:"p99_base_key_units_per_sec"`
	HottestBaseKey           string  `json:"hottest_base_key"`
	MaxIndexKeyUnitsPerSec   int64   `json:"max_index_key_units_per_sec"`
	P99IndexKeyUnitsPerSec   int64   `json:"p99_index_key_units_per_sec"`
	HottestIndexKey          string  `json:"hottest_index_key"`
	LimitUnitsPerSec         float64 `json:"limit_units_per_sec"`
	HeadroomRate             float64 `json:"headroom_rate"`
	HeadroomFactor           float64 `json:"headroom_factor"`
	HeadroomLimitedByBaseKey bool    `json:"headroom_limited_by_base_key,omitempty"`

	// Criteria: CriterionMaxBaseKey and CriterionMaxIndexKey, each "pass"
	// when at or under the limit, else "fail".
	Criteria map[string]string `json:"criteria"`

	// Sweep holds the same simulation at other top shares (--sweep-top-share).
	Sweep []HeatSweepPoint `json:"sweep,omitempty"`
}

// Names of the criteria in HeatResult.Criteria.
const (
	CriterionMaxBaseKey  = "max_base_key_units_per_sec"
	CriterionMaxIndexKey = "max_index_key_units_per_sec"
)

// HeatSweepPoint is one top share of a sweep.
type HeatSweepPoint struct {
	TopShare               float64 `json:"top_share"`
	ZipfExponent           float64 `json:"zipf_exponent"`
	TopAccountShards       int     `json:"top_account_shards"`
	MaxBaseKeyUnitsPerSec  int64   `json:"max_base_key_units_per_sec"`
	MaxIndexKeyUnitsPerSec int64   `json:"max_index_key_units_per_sec"`
	P99IndexKeyUnitsPerSec int64   `json:"p99_index_key_units_per_sec"`
	HeadroomRate           float64 `json:"headroom_rate"`
}

// Passed reports whether every criterion passed.
func (r *HeatResult) Passed() bool {
	for _, v := range r.Criteria {
		if v != Pass {
			return false
		}
	}
	return len(r.Criteria) > 0
}

// Heat runs the heat simulation. It samples Rate·Seconds messages, each with
// a random SID and an account drawn from the Zipf mix, and counts the write
// units every base key (the SID) and index key (IndexPK(account, Shard(sid,
// n))) takes in each simulated second. The headroom rate (the largest rate
// at which no key exceeds the limit, shard counts re-sized for each rate) is
// then found by bisecting on the rate with a per-key Poisson model of the
// same traffic, which costs O(hot keys) rather than O(messages) and agrees
// with the sampling within its noise.
//
// Heat uses up to cfg.Workers goroutines and returns when they are done, or
// early with ctx's error.
func Heat(ctx context.Context, cfg HeatConfig) (*HeatResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("heat: %w", err)
	}
	z, err := ZipfForTopShare(cfg.Accounts, cfg.TopShare)
	if err != nil {
		return nil, fmt.Errorf("heat: %w", err)
	}
	s := newHeatSim(cfg, z)
	res, err := s.simulate(ctx)
	if err != nil {
		return nil, err
	}
	if res.HeadroomRate, res.HeadroomLimitedByBaseKey, err = s.headroom(ctx); err != nil {
		return nil, err
	}
	res.HeadroomFactor = res.HeadroomRate / cfg.Rate
	res.Criteria = map[string]string{
		CriterionMaxBaseKey:  passFail(float64(res.MaxBaseKeyUnitsPerSec) <= cfg.Limit),
		CriterionMaxIndexKey: passFail(float64(res.MaxIndexKeyUnitsPerSec) <= cfg.Limit),
	}
	return res, nil
}

// HeatSweep runs Heat at each top share, everything else as in cfg.
func HeatSweep(ctx context.Context, cfg HeatConfig, topShares []float64) ([]HeatSweepPoint, error) {
	out := make([]HeatSweepPoint, 0, len(topShares))
	for _, ts := range topShares {
		c := cfg
		c.TopShare = ts
		r, err := Heat(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("top share %v: %w", ts, err)
		}
		out = append(out, HeatSweepPoint{
			TopShare:               ts,
			ZipfExponent:           r.ZipfExponent,
			TopAccountShards:       r.TopAccountShards,
			MaxBaseKeyUnitsPerSec:  r.MaxBaseKeyUnitsPerSec,
			MaxIndexKeyUnitsPerSec: r.MaxIndexKeyUnitsPerSec,
			P99IndexKeyUnitsPerSec: r.P99IndexKeyUnitsPerSec,
			HeadroomRate:           r.HeadroomRate,
		})
	}
	return out, nil
}

// heatSim holds what one simulation's seconds share. Read-only once built.
type heatSim struct {
	cfg           HeatConfig
	z             *Zipf
	uBase, uIndex int64   // write units per write of a base / index item
	whole         int64   // every message writes ⌊w⌋ times…
	frac          float64 // …and once more with this probability
}

func newHeatSim(cfg HeatConfig, z *Zipf) *heatSim {
	whole := math.Floor(cfg.WritesPerMessage)
	return &heatSim{
		cfg:    cfg,
		z:      z,
		uBase:  int64(keydesign.WriteUnits(cfg.ItemBytes)),
		uIndex: int64(keydesign.WriteUnits(cfg.IndexItemBytes)),
		whole:  int64(whole),
		frac:   cfg.WritesPerMessage - whole,
	}
}

// maxWrites is the most writes one message makes.
func (s *heatSim) maxWrites() int64 {
	if s.frac > 0 {
		return s.whole + 1
	}
	return s.whole
}

// shardsOf returns rank k's index shard count at the given message rate:
// ShardsFor of the account's index write units/s.
func (s *heatSim) shardsOf(rate float64, k int) int {
	if s.cfg.Unsharded {
		return 1
	}
	units := rate * s.z.Share(k) * s.cfg.WritesPerMessage * float64(s.uIndex)
	return keydesign.ShardsFor(units, s.cfg.PerShard)
}

// shardTable returns the shard counts of the ranks that have more than one;
// shares fall with rank, so every later rank has one.
func (s *heatSim) shardTable(rate float64) []int {
	var t []int
	for k := 0; k < s.z.N(); k++ {
		n := s.shardsOf(rate, k)
		if n == 1 {
			break
		}
		t = append(t, n)
	}
	return t
}

// heatSecond is the tally of one simulated second.
type heatSecond struct {
	messages          int64
	maxBase, maxIndex int64
	hotBase           [16]byte
	hotIndex          uint64          // rank<<16 | shard
	base, index       map[int64]int64 // units → number of keys with that load
}

const indexKeyShift = 16 // rank<<16 | shard identifies an index key (shard < MaxShards ≤ 1<<16)

func (s *heatSim) simulate(ctx context.Context) (*HeatResult, error) {
	shards := s.shardTable(s.cfg.Rate)
	secs := make([]heatSecond, s.cfg.Seconds)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Workers)
	for i := range secs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			secs[i] = s.second(i, shards)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("heat: %w", err)
	}

	topShards := 1
	if len(shards) > 0 {
		topShards = shards[0]
	}
	topUnits := s.cfg.Rate * s.z.Share(0) * s.cfg.WritesPerMessage * float64(s.uIndex)
	res := &HeatResult{
		Config:                  s.cfg,
		ZipfExponent:            s.z.Exponent(),
		TopAccount:              AccountSID(0),
		TopAccountShare:         s.z.Share(0),
		TopAccountUnitsPerSec:   topUnits,
		TopAccountShards:        topShards,
		TopAccountUnitsPerShard: topUnits / float64(topShards),
		ShardedAccounts:         len(shards),
		LimitUnitsPerSec:        s.cfg.Limit,
	}
	base, index := map[int64]int64{}, map[int64]int64{}
	for i := range secs {
		sec := &secs[i]
		res.Messages += sec.messages
		if sec.maxBase > res.MaxBaseKeyUnitsPerSec {
			res.MaxBaseKeyUnitsPerSec = sec.maxBase
			res.HottestBaseKey = sid("SM", sec.hotBase)
		}
		if sec.maxIndex > res.MaxIndexKeyUnitsPerSec {
			res.MaxIndexKeyUnitsPerSec = sec.maxIndex
			res.HottestIndexKey = keydesign.IndexPK(AccountSID(int(sec.hotIndex>>indexKeyShift)), int(sec.hotIndex&(1<<indexKeyShift-1)))
		}
		for u, n := range sec.base {
			base[u] += n
		}
		for u, n := range sec.index {
			index[u] += n
		}
	}
	res.P99BaseKeyUnitsPerSec = countsQuantile(base, 0.99)
	res.P99IndexKeyUnitsPerSec = countsQuantile(index, 0.99)
	return res, nil
}

// second simulates simulated second i. Its random stream depends only on the
// seed and i, so the result does not depend on scheduling.
func (s *heatSim) second(i int, shards []int) heatSecond {
	r := rand.New(rand.NewPCG(s.cfg.Seed, uint64(i)))
	msgs := int64(math.Floor(float64(i+1)*s.cfg.Rate)) - int64(math.Floor(float64(i)*s.cfg.Rate))
	base := make(map[[16]byte]int64, msgs)
	index := make(map[uint64]int64)
	sidBuf := [34]byte{'S', 'M'}
	for range msgs {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], r.Uint64())
		binary.BigEndian.PutUint64(id[8:], r.Uint64())
		k := s.z.Sample(r)
		w := s.whole
		if s.frac > 0 && r.Float64() < s.frac {
			w++
		}
		base[id] += w * s.uBase
		shard := 0
		if k < len(shards) {
			hex.Encode(sidBuf[2:], id[:])
			shard = keydesign.Shard(string(sidBuf[:]), shards[k])
		}
		index[uint64(k)<<indexKeyShift|uint64(shard)] += w * s.uIndex
	}
	out := heatSecond{messages: msgs, base: map[int64]int64{}, index: map[int64]int64{}}
	for id, u := range base {
		out.base[u]++
		if u > out.maxBase || (u == out.maxBase && string(id[:]) < string(out.hotBase[:])) {
			out.maxBase, out.hotBase = u, id
		}
	}
	for key, u := range index {
		out.index[u]++
		if u > out.maxIndex || (u == out.maxIndex && key < out.hotIndex) {
			out.maxIndex, out.hotIndex = u, key
		}
	}
	return out
}

// countsQuantile returns the q-quantile of a distribution given as value →
// count: the smallest value with at least ⌈q·total⌉ observations at or below.
func countsQuantile(counts map[int64]int64, q float64) int64 {
	var total int64
	vals := make([]int64, 0, len(counts))
	for v, n := range counts {
		vals = append(vals, v)
		total += n
	}
	if total == 0 {
		return 0
	}
	slices.Sort(vals)
	rank := int64(math.Ceil(q * float64(total)))
	var cum int64
	for _, v := range vals {
		cum += counts[v]
		if cum >= rank {
			return v
		}
	}
	return vals[len(vals)-1]
}

// headroomStream is the PCG stream of the headroom model, apart from the
// simulated seconds' streams (0…Seconds−1).
const headroomStream = 1 << 62

// negligible is the expected number of (key, second) pairs over a load below
// which the model skips a key: the chance it matters is far below the
// simulation's own noise.
const negligible = 1e-6

// modelIndexMax returns the hottest index-key load in Seconds seconds at the
// given rate among the keys that can plausibly exceed floor units/s (others
// are skipped; if none can, the result may be ≤ floor or 0). It models each
// (key, second) as independent Poisson message counts, split by Poisson
// thinning into messages that write ⌊w⌋ and ⌊w⌋+1 times: the limit of the
// message-level simulation when keys are many and each message is a small
// fraction of the traffic. It costs O(keys that can exceed floor), not
// O(messages), so it can be evaluated at millions of messages/s.
func (s *heatSim) modelIndexMax(rate float64, floor int64) int64 {
	r := rand.New(rand.NewPCG(s.cfg.Seed, headroomStream))
	perMsg := s.maxWrites() * s.uIndex
	need := floor/perMsg + 1 // messages in a second it takes to exceed floor
	var hot int64
	for k := 0; k < s.z.N(); k++ {
		n := s.shardsOf(rate, k)
		lambda := rate * s.z.Share(k) / float64(n)
		trials := n * s.cfg.Seconds
		if float64(trials)*poissonTailBound(lambda, need) < negligible {
			if n == 1 {
				break // every later rank has one shard and less traffic
			}
			continue
		}
		for range trials {
			more := poisson(r, lambda*s.frac)
			plain := poisson(r, lambda*(1-s.frac))
			hot = max(hot, s.uIndex*(s.whole*(plain+more)+more))
		}
	}
	return hot
}

// headroom returns the largest message rate at which no key exceeds the
// limit, to 0.1%, by doubling (or halving) from cfg.Rate and then bisecting
// on modelIndexMax. Every evaluation draws from the same random stream, so
// the comparison between rates is not blurred by fresh noise. Base keys do
// not depend on the rate (every message has its own SID); when one
// message's base writes alone exceed the limit, the headroom is 0 and
// limitedByBase is set.
func (s *heatSim) headroom(ctx context.Context) (rate float64, limitedByBase bool, err error) {
	limit := int64(math.Floor(s.cfg.Limit))
	if s.maxWrites()*s.uBase > limit {
		return 0, true, nil
	}
	fits := func(rate float64) bool { return s.modelIndexMax(rate, limit) <= limit }
	const ceiling = 1e12
	lo, hi := s.cfg.Rate, s.cfg.Rate
	if fits(lo) {
		for hi = lo * 2; fits(hi); hi *= 2 {
			if err := ctx.Err(); err != nil {
				return 0, false, err
			}
			if lo = hi; hi >= ceiling {
				return hi, false, nil
			}
		}
	} else {
		for lo = hi / 2; !fits(lo); lo /= 2 {
			if err := ctx.Err(); err != nil {
				return 0, false, err
			}
			if hi = lo; lo < 1e-3 {
				return 0, false, nil
			}
		}
	}
	for hi-lo > 1e-3*lo {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		mid := (lo + hi) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, false, nil
}
