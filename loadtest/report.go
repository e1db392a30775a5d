package loadtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// ReportVersion is the version of the report format; merge refuses others.
const ReportVersion = 1

// Report is the result of `loadtest run` and the --json contract of
// DESIGN.md §4. Latencies are in milliseconds. A shard process writes one;
// Merge joins several exactly, because the histograms travel encoded.
type Report struct {
	Version int       `json:"version"`
	Config  RunConfig `json:"config"`
	// Processes is the number of shard processes whose data this holds.
	Processes   int       `json:"processes"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	DurationSec float64   `json:"duration_sec"`

	// RequestedRate is the scheduled writes/s (mean over ramp and steady
	// state); RequestedReadsPerSec the scheduled reads/s.
	RequestedRate        float64 `json:"requested_rate"`
	RequestedReadsPerSec float64 `json:"requested_reads_per_sec"`

	// Writes are successful write operations (produce acks in kafka mode,
	// item writes in direct mode); Reads successful API reads.
	Writes          int64   `json:"writes"`
	WritesPerSec    float64 `json:"writes_per_sec"`
	WriteLatency    Latency `json:"write_latency_ms"`
	EndToEndLatency Latency `json:"end_to_end_latency_ms"`
	IndexLag        Latency `json:"index_lag_ms"`
	Reads           int64   `json:"reads"`
	ReadsPerSec     float64 `json:"reads_per_sec"`
	ReadLatency     Latency `json:"read_latency_ms"`

	// ProducedFinal counts messages driven to a final status; Verified those
	// read back as expected, Lost those missing, Wrong those read back with
	// the wrong content.
	ProducedFinal int64 `json:"produced_final"`
	Verified      int64 `json:"verified"`
	Lost          int64 `json:"lost"`
	Wrong         int64 `json:"wrong"`

	// ServiceCPUSeconds is the service's process CPU over the run (from its
	// /metrics counter) and ServiceRecords the records it ingested meanwhile.
	ServiceCPUSeconds         float64 `json:"service_cpu_seconds"`
	ServiceRecords            int64   `json:"service_records"`
	ServiceCPUMicrosPerRecord float64 `json:"service_cpu_us_per_record"`
	// ServiceRetries are the service's ingest retries over the run, by
	// cause (throttled, unavailable, breaker_open), from its /metrics.
	ServiceRetries map[string]int64 `json:"service_retries,omitempty"`
	// ServiceWriteUnits are the write units DynamoDB billed the service for
	// event writes over the run, by table (base, index), and
	// ServiceStoredStates the final states its store applied meanwhile;
	// WriteUnitsPerStoredState is their ratio (the floor is 2 for items of
	// at most 1 KB). Absent where the endpoint reports no consumed capacity
	// (DynamoDB Local).
	ServiceWriteUnits        map[string]float64 `json:"service_write_units,omitempty"`
	ServiceStoredStates      int64              `json:"service_stored_states,omitempty"`
	WriteUnitsPerStoredState float64            `json:"write_units_per_stored_state,omitempty"`

	// Errors counts failed operations by kind (e.g. "produce", "read_5xx",
	// "throttled", "unsent").
	Errors      map[string]int64 `json:"errors"`
	ConsumerLag []LagPoint       `json:"consumer_lag"`
	Generator   GeneratorStats   `json:"generator"`
	Bottleneck  string           `json:"bottleneck"`
	Series      []SeriesPoint    `json:"series"`

	Thresholds Criteria          `json:"thresholds"`
	Criteria   map[string]string `json:"criteria"`

	Histograms Histograms `json:"histograms"`
}

// GeneratorStats says what the load generator sent and whether it kept to
// its schedules.
type GeneratorStats struct {
	// Messages counts the messages started; Events the events Kafka
	// acknowledged (kafka mode) or the final states written (direct mode).
	Messages        int64   `json:"messages"`
	Events          int64   `json:"events"`
	EventsPerSec    float64 `json:"events_per_sec"`
	WriteUnsent     int64   `json:"write_unsent"`
	ReadUnsent      int64   `json:"read_unsent"`
	WriteMaxDelayMs float64 `json:"write_max_delay_ms"`
	ReadMaxDelayMs  float64 `json:"read_max_delay_ms"`
}

// LagPoint is the service's consumer-group lag (records) at a Unix second.
type LagPoint struct {
	T   int64 `json:"t"`
	Lag int64 `json:"lag"`
}

// SeriesPoint is one wall-clock second of the run, for charts.
type SeriesPoint struct {
	T           int64   `json:"t"` // Unix seconds
	Writes      int64   `json:"writes"`
	Reads       int64   `json:"reads"`
	Errors      int64   `json:"errors"`
	WriteP50    float64 `json:"write_p50_ms"`
	WriteP99    float64 `json:"write_p99_ms"`
	ReadP50     float64 `json:"read_p50_ms"`
	ReadP99     float64 `json:"read_p99_ms"`
	EndToEndP99 float64 `json:"end_to_end_p99_ms"`
	IndexLagP99 float64 `json:"index_lag_p99_ms"`
}

// Histograms are the exact distributions behind the latency summaries.
type Histograms struct {
	Write    Dist `json:"write"`
	Read     Dist `json:"read"`
	EndToEnd Dist `json:"end_to_end"`
	IndexLag Dist `json:"index_lag"`
}

// Collector gathers a run's measurements and builds its Report. Record
// latencies straight into its Recorders. All methods are safe for
// concurrent use.
type Collector struct {
	Write    *Recorder // write latency, from the intended start (Pacer OpResult.Latency)
	Read     *Recorder // API read latency, from the intended start
	EndToEnd *Recorder // from the write's intended start until the API shows the message
	IndexLag *Recorder // from the base write until the message is listed by the index

	mu      sync.Mutex
	errs    map[string]int64
	errSecs map[int64]int64
	lag     map[int64]int64
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{
		Write:    NewRecorder(),
		Read:     NewRecorder(),
		EndToEnd: NewRecorder(),
		IndexLag: NewRecorder(),
		errs:     map[string]int64{},
		errSecs:  map[int64]int64{},
		lag:      map[int64]int64{},
	}
}

// Error counts one failed operation of a kind, charted in the second of at.
func (c *Collector) Error(at time.Time, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs[kind]++
	c.errSecs[at.Unix()]++
}

// Errors returns the number of errors so far.
func (c *Collector) Errors() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.errs {
		n += v
	}
	return n
}

// Lag records a consumer-lag sample; the largest sample of a second is kept.
func (c *Collector) Lag(at time.Time, lag int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := at.Unix()
	if prev, ok := c.lag[t]; !ok || lag > prev {
		c.lag[t] = lag
	}
}

// Report builds the report of a run from the write and read pacers' stats
// (zero read stats when there were no reads); the window is the write
// pacer's. The runner then sets ProducedFinal, Verified, Lost, Wrong,
// ServiceCPUSeconds and ServiceRecords, and calls Evaluate.
func (c *Collector) Report(cfg RunConfig, writes, reads PacerStats) (*Report, error) {
	r := &Report{
		Version:              ReportVersion,
		Config:               cfg,
		Processes:            1,
		Start:                writes.Start.UTC(),
		End:                  writes.End.UTC(),
		RequestedRate:        cfg.WriteSchedule().MeanRate(),
		RequestedReadsPerSec: cfg.ReadSchedule().MeanRate(),
		Generator: GeneratorStats{
			WriteUnsent:     writes.Unsent,
			ReadUnsent:      reads.Unsent,
			WriteMaxDelayMs: durMs(writes.MaxDelay),
			ReadMaxDelayMs:  durMs(reads.MaxDelay),
		},
	}
	r.DurationSec = r.End.Sub(r.Start).Seconds()
	var err error
	for _, x := range []struct {
		d   *Dist
		rec *Recorder
	}{{&r.Histograms.Write, c.Write}, {&r.Histograms.Read, c.Read}, {&r.Histograms.EndToEnd, c.EndToEnd}, {&r.Histograms.IndexLag, c.IndexLag}} {
		if *x.d, err = x.rec.Dist(); err != nil {
			return nil, err
		}
	}
	r.ConsumerLag = []LagPoint{}
	c.mu.Lock()
	r.Errors = maps.Clone(c.errs)
	errSecs := maps.Clone(c.errSecs)
	for _, t := range slices.Sorted(maps.Keys(c.lag)) {
		r.ConsumerLag = append(r.ConsumerLag, LagPoint{T: t, Lag: c.lag[t]})
	}
	c.mu.Unlock()
	if err := r.derive(errSecs); err != nil {
		return nil, err
	}
	if r.DurationSec > 0 {
		r.WritesPerSec = float64(r.Writes) / r.DurationSec
		r.ReadsPerSec = float64(r.Reads) / r.DurationSec
	}
	return r, nil
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// derive recomputes the fields that follow from the histograms: the counts
// of writes and reads, the latency summaries and the per-second series
// (with errSecs, errors per Unix second).
func (r *Report) derive(errSecs map[int64]int64) error {
	type metric struct {
		dist *Dist
		lat  *Latency
		dd   decodedDist
	}
	ms := []*metric{
		{dist: &r.Histograms.Write, lat: &r.WriteLatency},
		{dist: &r.Histograms.Read, lat: &r.ReadLatency},
		{dist: &r.Histograms.EndToEnd, lat: &r.EndToEndLatency},
		{dist: &r.Histograms.IndexLag, lat: &r.IndexLag},
	}
	secs := map[int64]bool{}
	for t := range errSecs {
		secs[t] = true
	}
	for _, m := range ms {
		var err error
		if m.dd, err = m.dist.decode(); err != nil {
			return err
		}
		*m.lat = latencyOf(m.dd.total)
		for t := range m.dd.secs {
			secs[t] = true
		}
	}
	w, rd, e2e, lag := ms[0].dd, ms[1].dd, ms[2].dd, ms[3].dd
	r.Writes, r.Reads = w.total.TotalCount(), rd.total.TotalCount()

	r.Series = []SeriesPoint{} // [] rather than null in JSON
	for _, t := range slices.Sorted(maps.Keys(secs)) {
		p := SeriesPoint{T: t, Errors: errSecs[t]}
		if h := w.secs[t]; h != nil {
			p.Writes = h.TotalCount()
			p.WriteP50, p.WriteP99 = pct(h, 50), pct(h, 99)
		}
		if h := rd.secs[t]; h != nil {
			p.Reads = h.TotalCount()
			p.ReadP50, p.ReadP99 = pct(h, 50), pct(h, 99)
		}
		if h := e2e.secs[t]; h != nil {
			p.EndToEndP99 = pct(h, 99)
		}
		if h := lag.secs[t]; h != nil {
			p.IndexLagP99 = pct(h, 99)
		}
		r.Series = append(r.Series, p)
	}
	return nil
}

func pct(h *hdr.PackedHistogram, p float64) float64 { return usToMs(h.ValueAtPercentile(p)) }

// errorSeconds returns the errors per Unix second held in r.Series.
func (r *Report) errorSeconds() map[int64]int64 {
	m := map[int64]int64{}
	for _, p := range r.Series {
		if p.Errors != 0 {
			m[p.T] += p.Errors
		}
	}
	return m
}

// WriteJSONFile writes v as indented JSON to path ("-" is not special).
func WriteJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ReadReportFile reads a report written by WriteJSONFile.
func ReadReportFile(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode report %s: %w", path, err)
	}
	if r.Version != ReportVersion {
		return nil, fmt.Errorf("report %s: version %d, want %d", path, r.Version, ReportVersion)
	}
	return &r, nil
}

// setWriteUnits sets the service's write units and stored states over the
// run from the /metrics samples before and after it.
func (r *Report) setWriteUnits(base, final ServiceSample) {
	for k, v := range final.WriteUnits {
		if d := v - base.WriteUnits[k]; d > 0 {
			if r.ServiceWriteUnits == nil {
				r.ServiceWriteUnits = map[string]float64{}
			}
			r.ServiceWriteUnits[k] = d
		}
	}
	if r.ServiceWriteUnits != nil {
		r.ServiceStoredStates = int64(final.Applied - base.Applied)
	}
}
