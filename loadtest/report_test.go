package loadtest

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecorderLatency(t *testing.T) {
	rec := NewRecorder()
	at := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for g := range 4 { // concurrent recording: 1…1000 ms, once each
		wg.Go(func() {
			for i := g + 1; i <= 1000; i += 4 {
				rec.Record(at.Add(time.Duration(i)*time.Millisecond), time.Duration(i)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	if rec.Count() != 1000 {
		t.Fatalf("count %d, want 1000", rec.Count())
	}
	got := rec.Latency()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", got.P50, 500}, {"p99", got.P99, 990}, {"p999", got.P999, 999}, {"max", got.Max, 1000}} {
		if math.Abs(c.got-c.want) > c.want*0.001 { // 3 significant digits
			t.Errorf("%s = %v ms, want %v", c.name, c.got, c.want)
		}
	}
	// Negative and huge durations are clamped, not dropped.
	rec.Record(at, -time.Second)
	rec.Record(at, 2*time.Hour)
	if l := rec.Latency(); rec.Count() != 1002 || l.Max < 3_599_000 {
		t.Errorf("after clamping: count %d max %v", rec.Count(), l.Max)
	}
}

// TestRecorderRecordN: a batch's latency counts once per item, in the
// total and in its second.
func TestRecorderRecordN(t *testing.T) {
	rec := NewRecorder()
	at := time.Unix(1_700_000_000, 0)
	rec.RecordN(at, 10*time.Millisecond, 25)
	rec.RecordN(at.Add(time.Second), 30*time.Millisecond, 5)
	rec.RecordN(at, time.Hour, 0) // nothing
	if rec.Count() != 30 {
		t.Fatalf("count %d, want 30", rec.Count())
	}
	if l := rec.Latency(); math.Abs(l.P50-10) > 0.01 || math.Abs(l.Max-30) > 0.03 {
		t.Errorf("latency %+v", l)
	}
	d, err := rec.Dist()
	if err != nil || len(d.Seconds) != 2 {
		t.Fatalf("dist: %v, %d seconds", err, len(d.Seconds))
	}
}

func TestDistMerge(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	a, b, both := NewRecorder(), NewRecorder(), NewRecorder()
	for i := range 500 {
		d := time.Duration(i*i) * time.Microsecond
		rec := a
		if i%3 == 0 {
			rec = b
		}
		when := at.Add(time.Duration(i) * 10 * time.Millisecond)
		rec.Record(when, d)
		both.Record(when, d)
	}
	da, _ := a.Dist()
	db, _ := b.Dist()
	dboth, _ := both.Dist()
	merged, err := MergeDists(da, db)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(merged, dboth) {
		t.Error("merge of the parts differs from the distribution of the whole")
	}
	if n, _ := merged.Count(); n != 500 {
		t.Errorf("merged count %d", n)
	}
	if _, err := (Dist{Total: "not base64!"}).Latency(); err == nil {
		t.Error("a corrupt histogram decoded")
	}
	if l, err := (Dist{}).Latency(); err != nil || l != (Latency{}) {
		t.Errorf("empty dist: %v %v", l, err)
	}
}

// sample is one synthetic measurement for building reports.
type sample struct {
	off     time.Duration
	write   time.Duration
	read    time.Duration
	e2e     time.Duration
	lag     time.Duration
	errKind string
}

func testSamples(seed, n int) []sample {
	var out []sample
	for i := range n {
		x := (i*7919 + seed*104729) % 1000
		s := sample{
			off:   time.Duration(i) * 10 * time.Second / time.Duration(n),
			write: time.Duration(1+x) * 37 * time.Microsecond,
			e2e:   time.Duration(50+x) * time.Millisecond / 10,
			lag:   time.Duration(x) * time.Millisecond,
		}
		if i%4 == 0 {
			s.read = time.Duration(2+x%300) * 100 * time.Microsecond
		}
		if i%97 == 0 {
			s.errKind = []string{"produce", "read_5xx"}[seed%2]
		}
		out = append(out, s)
	}
	return out
}

// buildReport records samples into a collector and builds a report over
// the 10 s window from start.
func buildReport(t *testing.T, start time.Time, cfg RunConfig, sets ...[]sample) *Report {
	t.Helper()
	c := NewCollector()
	for _, set := range sets {
		for _, s := range set {
			at := start.Add(s.off)
			if s.errKind != "" {
				c.Error(at, s.errKind)
				continue
			}
			c.Write.Record(at, s.write)
			c.EndToEnd.Record(at, s.e2e)
			c.IndexLag.Record(at, s.lag)
			if s.read > 0 {
				c.Read.Record(at, s.read)
			}
		}
	}
	for i := range 10 {
		c.Lag(start.Add(time.Duration(i)*time.Second), int64(100*i))
	}
	st := PacerStats{Start: start, End: start.Add(10 * time.Second)}
	r, err := c.Report(cfg, st, PacerStats{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testRunConfig(shard ShardSpec) RunConfig {
	cfg := DefaultRunConfig()
	cfg.Rate = 200
	cfg.Duration = 10 * time.Second
	cfg.ReadsPerSec = 50
	cfg.Shard = shard
	cfg.Token = "secret"
	return cfg
}

func TestReportJSONRoundTrip(t *testing.T) {
	start := time.Unix(1_700_000_000, 0).UTC()
	r := buildReport(t, start, testRunConfig(ShardSpec{0, 1}), testSamples(1, 2000))
	r.ProducedFinal, r.Verified, r.Lost, r.Wrong = 1980, 1979, 1, 0
	r.ServiceCPUSeconds, r.ServiceRecords = 3, 5940
	r.Evaluate(DefaultCriteria())

	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSONFile(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReportFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r.Config.Token = "" // a secret: never written
	if !reflect.DeepEqual(back, r) {
		a, _ := json.Marshal(r)
		b, _ := json.Marshal(back)
		t.Errorf("round trip differs:\n%s\n%s", a, b)
	}

	// The contract's field names (DESIGN.md §4).
	var m map[string]any
	raw, _ := json.Marshal(r)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"writes_per_sec", "write_latency_ms", "end_to_end_latency_ms", "index_lag_ms", "reads_per_sec",
		"read_latency_ms", "produced_final", "lost", "wrong", "service_cpu_us_per_record", "criteria", "errors",
		"consumer_lag", "bottleneck", "config", "series"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report JSON lacks %q", k)
		}
	}
	for _, k := range []string{"write_latency_ms", "end_to_end_latency_ms", "index_lag_ms", "read_latency_ms"} {
		lat, _ := m[k].(map[string]any)
		for _, p := range []string{"p50", "p99", "p999", "max"} {
			if _, ok := lat[p].(float64); !ok {
				t.Errorf("%s.%s missing or not a number", k, p)
			}
		}
	}
	if strings.Contains(string(raw), "secret") {
		t.Error("the token leaked into the report")
	}
	if r.ServiceCPUMicrosPerRecord != 3e6/5940 {
		t.Errorf("cpu per record = %v", r.ServiceCPUMicrosPerRecord)
	}
	if r.Criteria[CriterionLost] != Fail || r.Passed() {
		t.Errorf("one lost message: criteria %v passed %v, want lost=fail, not passed", r.Criteria, r.Passed())
	}
}

// TestMergeEqualsCombined: merging the reports of two shard processes gives
// the report of all their data recorded by one.
func TestMergeEqualsCombined(t *testing.T) {
	start := time.Unix(1_700_000_000, 0).UTC()
	setA, setB := testSamples(1, 2000), testSamples(2, 1000)
	a := buildReport(t, start, testRunConfig(ShardSpec{0, 2}), setA)
	b := buildReport(t, start, testRunConfig(ShardSpec{1, 2}), setB)
	whole := buildReport(t, start, testRunConfig(ShardSpec{0, 1}), setA, setB)
	for _, r := range []*Report{a, b, whole} {
		// They all scraped the same service.
		r.ServiceCPUSeconds, r.ServiceRecords = 2, 9000
		r.ServiceRetries = map[string]int64{"throttled": 3}
	}
	b.ServiceRecords = 8990 // its last scrape came a little earlier
	a.ProducedFinal, b.ProducedFinal, whole.ProducedFinal = 1979, 989, 1979+989
	a.Generator.Messages, b.Generator.Messages, whole.Generator.Messages = 2000, 1000, 3000
	a.Generator.Events, b.Generator.Events, whole.Generator.Events = 8000, 4000, 12000
	a.Lost, whole.Lost = 2, 2
	for _, r := range []*Report{a, b, whole} {
		r.Evaluate(DefaultCriteria())
	}

	// Through JSON, as `loadtest merge` reads them.
	var parts []*Report
	for _, r := range []*Report{a, b} {
		raw, _ := json.Marshal(r)
		var back Report
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, &back)
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	whole.Processes = 2
	whole.Config.Token = ""
	if !reflect.DeepEqual(merged, whole) {
		x, _ := json.MarshalIndent(merged, "", " ")
		y, _ := json.MarshalIndent(whole, "", " ")
		t.Errorf("merged report differs from the combined one:\nmerged:   %.3000s\ncombined: %.3000s", x, y)
	}
	if merged.Writes != a.Writes+b.Writes || merged.Errors["produce"] == 0 || merged.Errors["read_5xx"] == 0 {
		t.Errorf("writes %d errors %v", merged.Writes, merged.Errors)
	}
	// Percentiles are merged, not averaged: the merged p99 is the whole's.
	if merged.WriteLatency.P99 == (a.WriteLatency.P99+b.WriteLatency.P99)/2 {
		t.Log("merged p99 equals the average by coincidence")
	}

	if _, err := Merge(); err == nil {
		t.Error("Merge() of nothing: nil error")
	}
	bad := *a
	bad.Version = 99
	if _, err := Merge(a, &bad); err == nil {
		t.Error("merged a report of another version")
	}
}

func TestEvaluate(t *testing.T) {
	good := func() *Report {
		return &Report{
			RequestedRate: 1000, WritesPerSec: 960,
			WriteLatency: Latency{P99: 49}, ReadLatency: Latency{P99: 99}, IndexLag: Latency{P99: 999},
		}
	}
	tests := []struct {
		name string
		edit func(*Report)
		fail string
	}{
		{"all pass", func(*Report) {}, ""},
		{"slow writes", func(r *Report) { r.WritesPerSec = 940 }, CriterionWriteRate},
		{"write p99", func(r *Report) { r.WriteLatency.P99 = 51 }, CriterionWriteP99},
		{"read p99", func(r *Report) { r.ReadLatency.P99 = 101 }, CriterionReadP99},
		{"index lag", func(r *Report) { r.IndexLag.P99 = 1001 }, CriterionIndexLagP99},
		{"lost", func(r *Report) { r.Lost = 1 }, CriterionLost},
		{"wrong", func(r *Report) { r.Wrong = 1 }, CriterionWrong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.edit(r)
			r.Evaluate(DefaultCriteria())
			if len(r.Criteria) != 6 {
				t.Fatalf("criteria = %v, want 6", r.Criteria)
			}
			for name, v := range r.Criteria {
				if want := passFail(name != tt.fail); v != want {
					t.Errorf("%s = %s, want %s", name, v, want)
				}
			}
			if tt.fail != "" {
				if r.Bottleneck == "none" {
					t.Errorf("bottleneck = none for a failing run")
				}
			} else if r.Bottleneck != "none" {
				t.Errorf("bottleneck = %q, want none", r.Bottleneck)
			}
			if got := r.Passed(); got != (tt.fail == "") {
				t.Errorf("Passed = %v, want %v", got, tt.fail == "")
			}
		})
	}
	// Overrides loosen a threshold.
	r := good()
	r.Lost = 3
	c := DefaultCriteria()
	c.MaxLost = 5
	r.Evaluate(c)
	if !r.Passed() {
		t.Errorf("with max lost 5: %v", r.Criteria)
	}
	if (&Report{}).Passed() {
		t.Error("an unevaluated report must not pass")
	}
}

func TestDiagnose(t *testing.T) {
	base := func() *Report {
		return &Report{Thresholds: DefaultCriteria(), RequestedRate: 1000, WritesPerSec: 1000, Writes: 10000}
	}
	tests := []struct {
		name string
		edit func(*Report)
		want string
	}{
		{"none", func(*Report) {}, "none"},
		{"generator", func(r *Report) { r.Generator.WriteUnsent = 10 }, "load generator"},
		{"write path blocks generator", func(r *Report) { r.Generator.WriteUnsent = 10; r.WriteLatency.P99 = 500 }, "write path"},
		{"a few unsent at the very end", func(r *Report) { r.Generator.WriteUnsent = 1 }, "none"},
		{"throttling", func(r *Report) { r.Errors = map[string]int64{"throttled": 50} }, "DynamoDB throttling"},
		{"throttling seen by ingest", func(r *Report) { r.ServiceRecords = 10000; r.ServiceRetries = map[string]int64{"throttled": 20} }, "the service retried 20 throttled"},
		{"produce latency", func(r *Report) { r.WriteLatency.P99 = 80 }, "Kafka produce"},
		{"direct write latency", func(r *Report) { r.Config.Mode = ModeDirect; r.WriteLatency.P99 = 80 }, "DynamoDB batch writes"},
		{"lag", func(r *Report) { r.ConsumerLag = []LagPoint{{1, 10}, {2, 5000}} }, "ingest"},
		{"ingest pipeline", func(r *Report) { r.EndToEndLatency.P50 = 9000; r.WriteLatency.P99 = 200 }, "events wait inside the service"},
		{"index", func(r *Report) { r.IndexLag.P99 = 5000 }, "index"},
		{"reads", func(r *Report) { r.ReadLatency.P99 = 500 }, "API reads"},
		{"rate", func(r *Report) { r.WritesPerSec = 500 }, "write rate"},
		{"lost", func(r *Report) { r.Lost = 1 }, "correctness"},
		{"errors", func(r *Report) { r.Errors = map[string]int64{"produce": 3, "read_5xx": 1} }, `"produce"`},
	}
	for _, tt := range tests {
		r := base()
		tt.edit(r)
		if got := Diagnose(r); !strings.Contains(got, tt.want) {
			t.Errorf("%s: Diagnose = %q, want it to mention %q", tt.name, got, tt.want)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	start := time.Unix(1_700_000_000, 0).UTC()
	r := buildReport(t, start, testRunConfig(ShardSpec{0, 1}), testSamples(1, 2000))
	r.Evaluate(DefaultCriteria())
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if n := strings.Count(out, "<svg"); n != 5 {
		t.Errorf("%d SVG charts, want 5", n)
	}
	for _, want := range []string{"<!DOCTYPE html>", "Throughput", "<polyline", "Write latency", "Consumer lag", "write latency", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// Self-contained: no scripts, no external resources.
	for _, bad := range []string{"<script", "src=", "href=", "<link", "@import", "secret"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}

	// Text from the report is escaped.
	r.Bottleneck = `<img onerror="x">`
	buf.Reset()
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<img") {
		t.Error("the bottleneck text was not escaped")
	}

	// An empty report renders too.
	empty := &Report{}
	buf.Reset()
	if err := WriteHTML(&buf, empty); err != nil || !strings.Contains(buf.String(), "no data") {
		t.Errorf("empty report: %v", err)
	}
}

func TestWriteSummary(t *testing.T) {
	start := time.Unix(1_700_000_000, 0).UTC()
	r := buildReport(t, start, testRunConfig(ShardSpec{0, 1}), testSamples(1, 2000))
	r.Lost = 1
	r.Evaluate(DefaultCriteria())
	var buf bytes.Buffer
	if err := WriteSummary(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"METRIC", "writes/s", "write latency", "index lag", "lost", "FAIL", "bottleneck", "errors: read_5xx"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestRunConfig(t *testing.T) {
	cfg := DefaultRunConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	cfg.Ramp = Schedule{{Duration: 10 * time.Second, Rate: 100}}
	cfg.Rate, cfg.Duration = 1000, 50*time.Second
	cfg.Shard = ShardSpec{Index: 1, Count: 4}
	ws := cfg.WriteSchedule()
	if want := (Schedule{{10 * time.Second, 25}, {50 * time.Second, 250}}); !reflect.DeepEqual(ws, want) {
		t.Errorf("write schedule = %v, want %v", ws, want)
	}
	if got := ws.MeanRate(); got != (250+12500)/60.0 {
		t.Errorf("mean rate = %v", got)
	}
	if rs := cfg.ReadSchedule(); rs.Duration() != time.Minute || rs[0].Rate != 2.5 {
		t.Errorf("read schedule = %v", rs)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"duration":"50s"`) {
		t.Errorf("config JSON: %s", raw)
	}
	var back RunConfig
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	cfg.Token = ""
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("config round trip:\n%+v\n%+v", back, cfg)
	}
	for _, bad := range []func(*RunConfig){
		func(c *RunConfig) { c.Mode = "carrier-pigeon" },
		func(c *RunConfig) { c.Rate = 0 },
		func(c *RunConfig) { c.Duration = 0 },
		func(c *RunConfig) { c.TopShare = 2 },
		func(c *RunConfig) { c.Shard = ShardSpec{Index: 4, Count: 4} },
		func(c *RunConfig) { c.Criteria.MaxWriteP99Ms = -1 },
		func(c *RunConfig) { c.Table = "" },
	} {
		c := DefaultRunConfig()
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
	if sp, err := ParseShardSpec("2/3"); err != nil || sp != (ShardSpec{2, 3}) {
		t.Errorf("ParseShardSpec = %v, %v", sp, err)
	}
	for _, bad := range []string{"3/3", "1", "a/b", "-1/2"} {
		if _, err := ParseShardSpec(bad); err == nil {
			t.Errorf("ParseShardSpec(%q) = nil error", bad)
		}
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	if p.Enabled() {
		t.Fatal("progress enabled on a buffer")
	}
	p.Update(ProgressStatus{Elapsed: time.Second})
	p.Done()
	p.Run(t.Context(), time.Millisecond, func() ProgressStatus { return ProgressStatus{} }) // returns at once
	if buf.Len() != 0 {
		t.Errorf("disabled progress wrote %q", buf.String())
	}
	if IsTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}

	line := FormatProgress(
		ProgressStatus{Elapsed: 10 * time.Second, Writes: 1000, Reads: 100},
		ProgressStatus{Elapsed: 12 * time.Second, Total: time.Minute, Writes: 3000, Reads: 120, Errors: 3, Lag: 42},
	)
	for _, want := range []string{"12s/1m0s", "writes 1000/s", "reads 10/s", "lag 42", "errors 3", "left 48s"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	if line := FormatProgress(ProgressStatus{}, ProgressStatus{Lag: -1}); !strings.Contains(line, "lag ?") {
		t.Errorf("unknown lag: %q", line)
	}

	// Enabled (as on a terminal), the line rewrites itself in place.
	p = &Progress{w: &buf, enabled: true}
	p.Update(ProgressStatus{Elapsed: time.Second, Total: 2 * time.Second})
	p.Done()
	if out := buf.String(); !strings.HasPrefix(out, "\r") || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal output %q", out)
	}
}
