package store

// Tests of hot-account detection. The unit tests drive the detector with
// synthetic timestamps and replace the two things it does to the Store
// (read an account's shard count, raise it) with a fake (fakeShards), so
// that they can check its decisions exactly; TestHotAccountRaisedOnDynamoDB
// runs the real thing against DynamoDB Local.

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
)

// fakeShards stands in for the account configuration in the unit tests.
type fakeShards struct {
	mu     sync.Mutex
	n      map[string]int
	def    int
	raises []string // "account→n"
}

func (f *fakeShards) shards(account string, _ time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.n[account]; ok {
		return n
	}
	return f.def
}

func (f *fakeShards) raise(_ context.Context, account string, n int) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raises = append(f.raises, fmt.Sprintf("%s→%d", account, n))
	f.n[account] = n
	return true, nil
}

func (f *fakeShards) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.raises
	f.raises = nil
	return out
}

type hotHarness struct {
	h      *hotAccounts
	fake   *fakeShards
	reader *sdkmetric.ManualReader
	log    *testenv.SyncBuffer
}

func newHotHarness(t testing.TB, cfg Config) *hotHarness {
	t.Helper()
	cfg.Table = "unused"
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	buf := &testenv.SyncBuffer{}
	reader := sdkmetric.NewManualReader()
	s := &Store{cfg: cfg, log: slog.New(slog.NewTextHandler(buf, nil))}
	h, err := newHotAccounts(s, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeShards{n: map[string]int{}, def: 1}
	h.shards, h.raise = fake.shards, fake.raise
	return &hotHarness{h: h, fake: fake, reader: reader, log: buf}
}

// decisions returns the detector's decision counter by result.
func (hh *hotHarness) decisions(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := hh.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "postflight.store.hot_accounts.decisions" {
				for _, dp := range sum.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key("result"))
					out[v.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

// traffic feeds the detector from..to in 10 ms steps: each account in rates
// writes its local units/s (in whole units, fractions carried over), and
// `cold` other accounts, drawn uniformly, write one unit each per step.
type traffic struct {
	r     *mrand.Rand
	carry map[string]float64
	cold  []string
}

func newTraffic(seed uint64, coldAccounts int) *traffic {
	tr := &traffic{r: mrand.New(mrand.NewPCG(seed, 1)), carry: map[string]float64{}}
	for i := range coldAccounts {
		tr.cold = append(tr.cold, fmt.Sprintf("AC%032x", i+1<<40))
	}
	return tr
}

func (tr *traffic) feed(h *hotAccounts, from, to time.Time, rates map[string]float64, coldPerStep int) {
	const step = 10 * time.Millisecond
	for now := from; now.Before(to); now = now.Add(step) {
		for a, r := range rates {
			tr.carry[a] += r * step.Seconds()
			if u := int(tr.carry[a]); u > 0 {
				tr.carry[a] -= float64(u)
				h.observe(a, u, now)
			}
		}
		for range coldPerStep {
			h.observe(tr.cold[tr.r.IntN(len(tr.cold))], 1, now)
		}
	}
}

func acct(name string) string { return "AC" + strings.Repeat("0", 32-len(name)) + name }

func TestHotAccountsRaiseWithCooldown(t *testing.T) {
	hh := newHotHarness(t, Config{HotFleetScale: func() float64 { return 4 }})
	h, ctx := hh.h, context.Background()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	a, b := acct("a"), acct("b")
	tr := newTraffic(1, 10_000)
	// 10k cold accounts share 10k units/s; a writes 750 units/s here, 3000
	// across the fleet (8 shards of ≤ 500); b 400 across the fleet (1 shard).
	tr.feed(h, t0, t0.Add(20*time.Second), map[string]float64{a: 750, b: 100}, 100)
	now := t0.Add(20 * time.Second)
	found := 0
	for _, r := range h.rates(now.UnixNano()) {
		switch r.account {
		case a:
			found++
			if r.fleet < 2900 || r.fleet > 3100 {
				t.Errorf("a: estimated %.0f units/s across the fleet, want about 3000", r.fleet)
			}
		case b:
			found++
			if r.fleet < 380 || r.fleet > 420 {
				t.Errorf("b: estimated %.0f units/s across the fleet, want about 400", r.fleet)
			}
		default:
			t.Errorf("cold account %s is a candidate (%.0f units/s)", r.account, r.fleet)
		}
	}
	if found != 2 {
		t.Fatalf("%d of the 2 warm accounts are candidates", found)
	}
	h.check(ctx, now)
	if got := hh.fake.took(); len(got) != 1 || got[0] != a+"→8" {
		t.Fatalf("raises %v, want [%s→8]", got, a)
	}
	if !strings.Contains(hh.log.String(), "hot account: raised index shards") || !strings.Contains(hh.log.String(), "to_shards=8") {
		t.Fatalf("no log line for the raise:\n%s", hh.log)
	}
	h.check(ctx, now.Add(time.Second)) // 375 units/s per shard now: nothing to do
	if got := hh.fake.took(); len(got) != 0 {
		t.Fatalf("raised again at once: %v", got)
	}

	// a doubles: 16 shards are due, but not within the cooldown.
	tr.feed(h, now, now.Add(30*time.Second), map[string]float64{a: 1500, b: 100}, 100)
	now = now.Add(30 * time.Second)
	h.check(ctx, now)
	if got := hh.fake.took(); len(got) != 0 {
		t.Fatalf("raised within the cooldown: %v", got)
	}
	tr.feed(h, now, now.Add(31*time.Second), map[string]float64{a: 1500, b: 100}, 100)
	now = now.Add(31 * time.Second)
	h.check(ctx, now)
	if got := hh.fake.took(); len(got) != 1 || got[0] != a+"→16" {
		t.Fatalf("raises after the cooldown %v, want [%s→16]", got, a)
	}
	if d := hh.decisions(t); d[hotRaised] != 2 || d[hotCool] != 1 || d[hotFailed] != 0 {
		t.Fatalf("decisions %v", d)
	}
	// Silence: the rate decays over one window and the candidates go.
	h.check(ctx, now.Add(5*time.Second))
	if rs := h.rates(now.Add(25 * time.Second).UnixNano()); len(rs) != 0 {
		t.Fatalf("candidates after two silent windows: %+v", rs)
	}
}

func TestHotAccountsLimitRaisesPerMinute(t *testing.T) {
	hh := newHotHarness(t, Config{HotMaxRaisesPerMinute: 3})
	h, ctx := hh.h, context.Background()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rates := map[string]float64{}
	for i := range 5 {
		rates[acct(fmt.Sprint(i))] = float64(600 + 400*i) // all need 2 or 4 shards
	}
	tr := newTraffic(2, 100)
	tr.feed(h, t0, t0.Add(15*time.Second), rates, 10)
	h.check(ctx, t0.Add(15*time.Second))
	// Hottest first: 2200 units/s need 8 shards, 1800 and 1400 need 4.
	want := []string{acct("4") + "→8", acct("3") + "→4", acct("2") + "→4"}
	if got := hh.fake.took(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first minute raised %v, want %v", got, want)
	}
	tr.feed(h, t0.Add(15*time.Second), t0.Add(76*time.Second), rates, 10)
	h.check(ctx, t0.Add(76*time.Second))
	want = []string{acct("1") + "→2", acct("0") + "→2"}
	if got := hh.fake.took(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second minute raised %v, want %v", got, want)
	}
	if d := hh.decisions(t); d[hotRaised] != 5 || d[hotLimited] != 2 {
		t.Fatalf("decisions %v", d)
	}
}

func TestHotAccountsAtMaxShardsWarnsOnce(t *testing.T) {
	hh := newHotHarness(t, Config{})
	hh.fake.def = keydesign.MaxShards
	h, ctx := hh.h, context.Background()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	a := acct("a")
	tr := newTraffic(3, 10)
	tr.feed(h, t0, t0.Add(12*time.Second), map[string]float64{a: 200_000}, 0)
	h.check(ctx, t0.Add(12*time.Second))
	h.check(ctx, t0.Add(13*time.Second))
	if got := hh.fake.took(); len(got) != 0 {
		t.Fatalf("raised past the maximum: %v", got)
	}
	if d := hh.decisions(t); d[hotAtMax] != 1 || len(d) != 1 {
		t.Fatalf("decisions %v, want one at_max", d)
	}
	if n := strings.Count(hh.log.String(), "maximum index shard count"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, hh.log)
	}
}

// The sketch and the candidate set are bounded whatever the number of
// accounts; a genuinely hot account is still found among a flood of others
// that each cross the candidate threshold.
func TestHotAccountsMemoryIsBounded(t *testing.T) {
	hh := newHotHarness(t, Config{HotShardUnits: 0.01})
	h := hh.h
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	h.observe(acct("hot"), 5000, t0)
	for i := range 50_000 {
		h.observe(fmt.Sprintf("AC%032x", i), 1, t0.Add(time.Millisecond))
	}
	w := h.win.Load().cur
	if n := w.nCands.Load(); n > hotMaxCandidates {
		t.Fatalf("%d candidates, bound %d", n, hotMaxCandidates)
	}
	var named int
	w.cands.Range(func(_, _ any) bool { named++; return true })
	if named > hotMaxCandidates {
		t.Fatalf("%d candidates named, bound %d", named, hotMaxCandidates)
	}
	if _, ok := w.cands.Load(acct("hot")); !ok {
		t.Fatal("the hot account is not a candidate")
	}
	h.check(context.Background(), t0.Add(time.Second))
	if !strings.Contains(hh.log.String(), "candidate set full") {
		t.Fatalf("no warning about the full candidate set:\n%s", hh.log)
	}
}

// Observers on many goroutines, windows rotating under them, and checks at
// the same time (run with -race).
func TestHotAccountsConcurrentUse(t *testing.T) {
	hh := newHotHarness(t, Config{HotWindow: time.Second})
	h, ctx := hh.h, context.Background()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(g), 9))
			for i := range 20_000 {
				now := t0.Add(time.Duration(i) * 200 * time.Microsecond) // 4 s, 4 windows
				account := acct("hot")
				if r.IntN(2) == 0 {
					account = fmt.Sprintf("AC%032x", r.IntN(5000))
				}
				h.observe(account, 1+r.IntN(3), now)
			}
		})
	}
	wg.Go(func() {
		for i := range 40 {
			h.check(ctx, t0.Add(time.Duration(i)*100*time.Millisecond))
		}
	})
	wg.Wait()
	// About 20k units/s for hot (it needs 64 shards), 4 for each other
	// account. Which checks saw what depends on scheduling; only hot is
	// ever raised.
	h.check(ctx, t0.Add(4*time.Second))
	raised := hh.fake.took()
	for _, r := range raised {
		if !strings.HasPrefix(r, acct("hot")+"→") {
			t.Fatalf("raised %s", r)
		}
	}
	if len(raised) == 0 || hh.decisions(t)[hotFailed] != 0 {
		t.Fatalf("raises %v, decisions %v", raised, hh.decisions(t))
	}
}

func TestHotAccountsOffAndNil(t *testing.T) {
	cfg := Config{Table: "unused", HotShardUnits: -1}
	cfg.setDefaults()
	s := &Store{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	h, err := newHotAccounts(s, sdkmetric.NewMeterProvider().Meter("test"))
	if err != nil || h != nil {
		t.Fatalf("negative HotShardUnits: detector %v, %v", h, err)
	}
	h.observe(acct("a"), 1, time.Now()) // nil receiver: no-ops
	h.check(context.Background(), time.Now())
}

// TestHotAccountRaisedOnDynamoDB runs detection on a real Store: two
// processes (two Stores on one table, each seeing half the traffic) detect
// the same hot account; one raises it, the other finds it raised; messages
// written before and after stay listable.
func TestHotAccountRaisedOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	table := testenv.TableName(t)
	var mu sync.Mutex
	clock := time.Now().UTC().Truncate(time.Millisecond)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	open := func() (*Store, *testenv.SyncBuffer) {
		buf := &testenv.SyncBuffer{}
		s, err := New(db, Config{Table: table, Now: now, HotFleetScale: func() float64 { return 2 }, AttemptTimeout: testenv.AttemptTimeout},
			slog.New(slog.NewTextHandler(buf, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s, buf
	}
	p1, log1 := open()
	p2, log2 := open()
	if err := p1.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.DropTable(t, db, p1.cfg.Table)

	account := "AC" + strings.Repeat("e", 32)
	var all []*postflight.Message
	writeSome := func(n int) {
		batch := make([]*postflight.Message, 0, n)
		for i := range n {
			m := &postflight.Message{
				SID: fmt.Sprintf("SM%032x", mrand.Uint64()), AccountSID: account, Status: postflight.StatusDelivered,
				Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI, From: "+15550001111", To: "+15550002222",
				NumSegments: 1, DateCreated: now().Add(-time.Duration(i) * time.Millisecond), DateUpdated: now(), Sequence: 1,
			}
			batch = append(batch, m)
		}
		res := make([]postflight.WriteResult, len(batch))
		p1.WriteBatch(ctx, batch, res)
		for i, r := range res {
			if r.Outcome != postflight.Applied {
				t.Fatalf("write %d: %v %v", i, r.Outcome, r.Err)
			}
		}
		all = append(all, batch...)
	}
	writeSome(20)

	// Each process sees 1500 units/s of the account: 3000 across the fleet.
	start := now()
	for i := range 1500 {
		at := start.Add(time.Duration(i) * 10 * time.Millisecond)
		p1.hot.observe(account, 15, at)
		p2.hot.observe(account, 15, at)
	}
	advance(15 * time.Second)
	p1.hot.check(ctx, now())
	acc, err := p1.FreshAccount(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	if got := acc.Schedule.At(now()); got != 8 {
		t.Fatalf("after the check the account has %d shards, want 8 (log: %s)", got, log1)
	}
	p2.hot.check(ctx, now()) // finds it raised already
	if strings.Contains(log2.String(), "raised index shards") || strings.Contains(log2.String(), "failed") {
		t.Fatalf("second process:\n%s", log2)
	}
	if acc, _ := p2.FreshAccount(ctx, account); len(acc.Schedule.Epochs) != 1 {
		t.Fatalf("schedule %+v, want one epoch", acc.Schedule)
	}

	advance(time.Second)
	writeSome(25) // under 8 shards
	page, err := p2.List(ctx, ListQuery{Account: account, Start: start.Add(-time.Hour), End: now().Add(time.Second), PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != len(all) {
		t.Fatalf("listed %d messages, wrote %d", len(page.Messages), len(all))
	}
	shards := map[string]bool{}
	for _, m := range all[20:] {
		shards[keydesign.IndexPK(account, keydesign.Shard(m.SID, 8))] = true
	}
	if len(shards) < 4 {
		t.Fatalf("25 messages after the raise landed on %d shards", len(shards))
	}
}

// BenchmarkHotObserve is the write path's cost of detection: one observe per
// message, over a Zipf mix of 100k accounts (windows rotate every 10 s of
// synthetic time, 1 µs per message).
func BenchmarkHotObserve(b *testing.B) {
	accounts := make([]string, 100_000)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("AC%032x", i)
	}
	z := mrand.NewZipf(mrand.New(mrand.NewPCG(1, 2)), 1.1, 1, uint64(len(accounts)-1))
	mix := make([]string, 1<<16)
	for i := range mix {
		mix[i] = accounts[z.Uint64()]
	}
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	b.Run("serial", func(b *testing.B) {
		h := newHotHarness(b, Config{}).h
		i := 0
		for b.Loop() {
			h.observe(mix[i&(len(mix)-1)], 1, t0.Add(time.Duration(i)*time.Microsecond))
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		h := newHotHarness(b, Config{}).h
		b.RunParallel(func(pb *testing.PB) {
			i := mrand.IntN(len(mix))
			for pb.Next() {
				h.observe(mix[i&(len(mix)-1)], 1, t0.Add(time.Duration(i)*time.Microsecond))
				i++
			}
		})
	})
}

// TestHotAccountRaisedByWrites goes the whole way on DynamoDB Local: the
// store's own writes feed the detector (WriteBatch → prepare → observe), the
// check raises the account, and the next writes spread over the new shards.
// The per-shard target is tiny so that a few hundred writes make an account
// hot.
func TestHotAccountRaisedByWrites(t *testing.T) {
	ctx := context.Background()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	var mu sync.Mutex
	clock := time.Now().UTC().Truncate(time.Millisecond)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	buf := &testenv.SyncBuffer{}
	s, err := New(db, Config{Table: testenv.TableName(t), Now: now, HotShardUnits: 5, AttemptTimeout: testenv.AttemptTimeout},
		slog.New(slog.NewTextHandler(buf, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.DropTable(t, db, s.cfg.Table)

	account := "AC" + strings.Repeat("f", 32)
	start := now()
	var written int
	writeBatch := func() {
		batch := make([]*postflight.Message, MaxBatch)
		for i := range batch {
			body := "Your Acme code is 123456."
			batch[i] = &postflight.Message{
				SID: fmt.Sprintf("SM%032x", mrand.Uint64()), AccountSID: account, Status: postflight.StatusDelivered,
				Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI, From: "+15550001111", To: "+15550002222",
				Body: &body, NumSegments: 1, DateCreated: now(), DateUpdated: now(), Sequence: 1,
			}
		}
		res := make([]postflight.WriteResult, len(batch))
		s.WriteBatch(ctx, batch, res)
		for i, r := range res {
			if r.Outcome != postflight.Applied {
				t.Fatalf("write %d: %v %v", i, r.Outcome, r.Err)
			}
		}
		written += len(batch)
	}
	// 200 one-unit writes in 10 s: 20 units/s, 4 shards of ≤ 5.
	for range 8 {
		writeBatch()
		advance(1250 * time.Millisecond)
	}
	s.hot.check(ctx, now())
	if n := s.Account(account).Schedule.At(now()); n != 4 {
		t.Fatalf("%d shards after the check, want 4; log:\n%s", n, buf)
	}
	if !strings.Contains(buf.String(), "to_shards=4") {
		t.Fatalf("no log line for the raise:\n%s", buf)
	}
	advance(time.Millisecond)
	writeBatch()
	page, err := s.List(ctx, ListQuery{Account: account, Start: start, End: now().Add(time.Millisecond), PageSize: 1000})
	if err != nil || len(page.Messages) != written {
		t.Fatalf("listed %d of %d messages: %v", len(page.Messages), written, err)
	}
}
