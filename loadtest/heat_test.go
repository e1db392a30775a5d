package loadtest

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestHeatAcceptance is DESIGN.md §2's partition-key target: at 100k
// messages/s over a million Zipf accounts with the largest at 10%, no base
// or index partition key takes more than 1,000 write units/s.
func TestHeatAcceptance(t *testing.T) {
	cfg := DefaultHeatConfig()
	res, err := Heat(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("base max %d p99 %d; index max %d p99 %d (%s); top account %d shards; headroom %.0f msgs/s (%.1fx)",
		res.MaxBaseKeyUnitsPerSec, res.P99BaseKeyUnitsPerSec, res.MaxIndexKeyUnitsPerSec, res.P99IndexKeyUnitsPerSec,
		res.HottestIndexKey, res.TopAccountShards, res.HeadroomRate, res.HeadroomFactor)
	if res.MaxBaseKeyUnitsPerSec > 1000 {
		t.Errorf("max base key = %d units/s, want ≤ 1000", res.MaxBaseKeyUnitsPerSec)
	}
	if res.MaxIndexKeyUnitsPerSec > 1000 {
		t.Errorf("max index key = %d units/s, want ≤ 1000", res.MaxIndexKeyUnitsPerSec)
	}
	if !res.Passed() {
		t.Errorf("criteria = %v, want all pass", res.Criteria)
	}
	if res.Messages != 1_000_000 {
		t.Errorf("messages = %d, want 1000000", res.Messages)
	}
	if math.Abs(res.TopAccountShare-0.10) > 1e-9 {
		t.Errorf("top account share = %v, want 0.10", res.TopAccountShare)
	}
	// 10k msgs/s × 1.2 writes × 1 unit = 12,000 units/s → 32 shards of 500.
	if res.TopAccountShards != 32 {
		t.Errorf("top account shards = %d, want 32", res.TopAccountShards)
	}
	// Sharding keeps even the hottest key near the per-shard target, so
	// the headroom is many times the rate; the cap of 256 shards bounds it.
	if res.HeadroomRate < 10*cfg.Rate || res.HeadroomRate > 256*1000/(0.1*1.2) {
		t.Errorf("headroom = %.0f msgs/s, want in [10×rate, the 256-shard bound]", res.HeadroomRate)
	}
	if !strings.HasPrefix(res.HottestIndexKey, "AC") || !strings.Contains(res.HottestIndexKey, "#") {
		t.Errorf("hottest index key %q is not an IndexPK", res.HottestIndexKey)
	}
}

// TestHeatUnshardedFails proves the check can fail: without sharding, the
// top account's single index key takes all its 12,000 units/s.
func TestHeatUnshardedFails(t *testing.T) {
	cfg := DefaultHeatConfig()
	cfg.Unsharded = true
	cfg.Seconds = 2
	res, err := Heat(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxIndexKeyUnitsPerSec <= 1000 {
		t.Errorf("unsharded max index key = %d units/s, want > 1000", res.MaxIndexKeyUnitsPerSec)
	}
	if got := res.Criteria[CriterionMaxIndexKey]; got != Fail {
		t.Errorf("index criterion = %q, want fail", got)
	}
	if res.Passed() {
		t.Error("Passed() = true, want false")
	}
	if res.TopAccountShards != 1 || res.HottestIndexKey != AccountSID(0)+"#0" {
		t.Errorf("top shards %d, hottest %q; want 1 and the top account's only key", res.TopAccountShards, res.HottestIndexKey)
	}
	// 1000 units/s over 12,000 per 10,000 msgs/s: about 8,300 msgs/s.
	if res.HeadroomRate < 7000 || res.HeadroomRate > 8400 {
		t.Errorf("unsharded headroom = %.0f msgs/s, want about 8,000", res.HeadroomRate)
	}
}

func TestHeatDeterministic(t *testing.T) {
	cfg := HeatConfig{Rate: 20_000, Accounts: 10_000, TopShare: 0.2, ItemBytes: 3000, WritesPerMessage: 1.5, Seconds: 3, Seed: 7}
	a, err := Heat(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workers = 1 // scheduling must not matter
	b, err := Heat(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Config.Workers, b.Config.Workers = 0, 0
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different results:\n%+v\n%+v", a, b)
	}
	// 3000 B = 3 units; a message writes 1 or 2 times.
	if a.MaxBaseKeyUnitsPerSec != 6 {
		t.Errorf("max base key = %d, want 6", a.MaxBaseKeyUnitsPerSec)
	}
}

// TestHeatModelMatchesSampling checks the per-key Poisson model the
// headroom search uses against the message-level simulation.
func TestHeatModelMatchesSampling(t *testing.T) {
	for _, cfg := range []HeatConfig{
		DefaultHeatConfig(),
		{Rate: 50_000, Accounts: 100_000, TopShare: 0.3, ItemBytes: 1000, WritesPerMessage: 1, Seconds: 5, Seed: 3},
	} {
		cfg = cfg.withDefaults()
		z, err := ZipfForTopShare(cfg.Accounts, cfg.TopShare)
		if err != nil {
			t.Fatal(err)
		}
		s := newHeatSim(cfg, z)
		res, err := s.simulate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sampled := float64(res.MaxIndexKeyUnitsPerSec)
		model := float64(s.modelIndexMax(cfg.Rate, res.MaxIndexKeyUnitsPerSec/2))
		t.Logf("top share %v: sampled %v, model %v", cfg.TopShare, sampled, model)
		if math.Abs(model-sampled) > 0.1*sampled {
			t.Errorf("top share %v: model max %v, sampled max %v: more than 10%% apart", cfg.TopShare, model, sampled)
		}
	}
}

func TestHeatSweep(t *testing.T) {
	cfg := HeatConfig{Rate: 50_000, Accounts: 100_000, ItemBytes: 1000, WritesPerMessage: 1.2, Seconds: 2, Seed: 1}
	pts, err := HeatSweep(t.Context(), cfg, []float64{0.05, 0.1, 0.2, 0.4})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pts {
		if p.MaxIndexKeyUnitsPerSec > 1000 {
			t.Errorf("top share %v: max index key %d > 1000", p.TopShare, p.MaxIndexKeyUnitsPerSec)
		}
		if i > 0 {
			prev := pts[i-1]
			if p.ZipfExponent <= prev.ZipfExponent || p.TopAccountShards < prev.TopAccountShards {
				t.Errorf("top share %v → %v: exponent %v → %v, shards %d → %d; want both rising",
					prev.TopShare, p.TopShare, prev.ZipfExponent, p.ZipfExponent, prev.TopAccountShards, p.TopAccountShards)
			}
			// Once the top account's shards are capped, headroom falls
			// with its share.
			if p.HeadroomRate >= prev.HeadroomRate {
				t.Errorf("headroom at top share %v = %.0f, not below %.0f at %v", p.TopShare, p.HeadroomRate, prev.HeadroomRate, prev.TopShare)
			}
		}
	}
}

func TestHeatHeadroomLimitedByBaseKey(t *testing.T) {
	// 400 KB items written twice: one message's base item takes 800 units.
	cfg := HeatConfig{Rate: 100, Accounts: 10, TopShare: 0.5, ItemBytes: 400 * 1024, WritesPerMessage: 2.5, Limit: 1000, Seconds: 1}
	res, err := Heat(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.HeadroomLimitedByBaseKey || res.HeadroomRate != 0 {
		t.Errorf("headroom %v limited by base %v; want 0, true", res.HeadroomRate, res.HeadroomLimitedByBaseKey)
	}
	if res.MaxBaseKeyUnitsPerSec != 1200 || res.Passed() {
		t.Errorf("max base key %d passed %v; want 1200 and a failure", res.MaxBaseKeyUnitsPerSec, res.Passed())
	}
}

func TestHeatConfigValidate(t *testing.T) {
	ok := DefaultHeatConfig()
	tests := []struct {
		name string
		edit func(*HeatConfig)
	}{
		{"zero rate", func(c *HeatConfig) { c.Rate = 0 }},
		{"NaN rate", func(c *HeatConfig) { c.Rate = math.NaN() }},
		{"too many messages", func(c *HeatConfig) { c.Rate = 1e9 }},
		{"no accounts", func(c *HeatConfig) { c.Accounts = 0 }},
		{"top share 1", func(c *HeatConfig) { c.TopShare = 1 }},
		{"top share below uniform", func(c *HeatConfig) { c.TopShare = 1e-7 }},
		{"item too big", func(c *HeatConfig) { c.ItemBytes = 500_000 }},
		{"writes below 1", func(c *HeatConfig) { c.WritesPerMessage = 0.5 }},
		{"negative per shard", func(c *HeatConfig) { c.PerShard = -1 }},
		{"too many seconds", func(c *HeatConfig) { c.Seconds = 4000 }},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			if err := c.Validate(); err == nil {
				t.Error("Validate() = nil, want an error")
			}
			if _, err := Heat(t.Context(), c); err == nil {
				t.Error("Heat() error = nil, want an error")
			}
		})
	}
}

func TestHeatCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Heat(ctx, DefaultHeatConfig()); err == nil {
		t.Error("Heat on a canceled context: nil error")
	}
}

func TestCountsQuantile(t *testing.T) {
	counts := map[int64]int64{1: 98, 5: 1, 9: 1}
	for _, tt := range []struct {
		q    float64
		want int64
	}{{0.5, 1}, {0.98, 1}, {0.99, 5}, {1, 9}} {
		if got := countsQuantile(counts, tt.q); got != tt.want {
			t.Errorf("q%v = %d, want %d", tt.q, got, tt.want)
		}
	}
	if got := countsQuantile(nil, 0.99); got != 0 {
		t.Errorf("empty = %d, want 0", got)
	}
}
