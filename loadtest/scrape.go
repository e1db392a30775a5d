package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The service's /metrics series the run reads (Prometheus text; the
// service's OpenTelemetry instruments as its exporter names them).
const (
	metricCPU     = "process_cpu_seconds_total"          // the process's CPU seconds
	metricRecords = "postflight_ingest_records_total"    // Kafka records read, by result
	metricLag     = "postflight_ingest_lag"              // records behind the high-water mark, by partition
	metricRetries = "postflight_ingest_retries_total"    // messages retried, by cause
	metricUnits   = "postflight_store_write_units_total" // write units billed for event writes, by table and op
	metricWrites  = "postflight_store_writes_total"      // messages handed to the store, by outcome
)

// ServiceSample is one scrape of the service's /metrics: sums over each
// series' labels.
type ServiceSample struct {
	At         time.Time
	CPUSeconds float64
	Records    float64            // records consumed, every result
	Lag        float64            // consumer lag over all partitions
	Retries    map[string]float64 // by cause
	WriteUnits map[string]float64 // billed for event writes, by table (base, index)
	Applied    float64            // final states the store applied
	HasCPU     bool
	HasRecords bool
	HasLag     bool
}

// ParseMetrics reads the Prometheus text exposition format and sums the
// series the run needs. Other lines are ignored.
func ParseMetrics(r io.Reader) (ServiceSample, error) {
	s := ServiceSample{Retries: map[string]float64{}, WriteUnits: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := splitSample(line)
		switch name {
		case metricCPU, metricRecords, metricLag, metricRetries, metricUnits, metricWrites:
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return s, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return s, fmt.Errorf("metrics: value of %q: %w", line, err)
		}
		switch name {
		case metricCPU:
			s.CPUSeconds, s.HasCPU = s.CPUSeconds+v, true
		case metricRecords:
			s.Records, s.HasRecords = s.Records+v, true
		case metricLag:
			s.Lag, s.HasLag = s.Lag+v, true
		case metricRetries:
			s.Retries[labelValue(labels, "cause")] += v
		case metricUnits:
			s.WriteUnits[labelValue(labels, "table")] += v
		case metricWrites:
			if labelValue(labels, "outcome") == "applied" {
				s.Applied += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	return s, nil
}

// splitSample splits `name{labels} value [timestamp]` (labels optional),
// minding quoted label values.
func splitSample(line string) (name, labels, rest string) {
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return line, "", ""
	}
	name = line[:i]
	if line[i] != '{' {
		return name, "", line[i:]
	}
	quoted, esc := false, false
	for j := i + 1; j < len(line); j++ {
		c := line[j]
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			quoted = !quoted
		case c == '}' && !quoted:
			return name, line[i+1 : j], line[j+1:]
		}
	}
	return name, line[i+1:], ""
}

// labelValue returns the value of label key in `a="x",b="y"`. Values
// holding commas or escaped quotes are not split correctly; the service's
// labels (cause, result, topic, partition) have none.
func labelValue(labels, key string) string {
	for part := range strings.SplitSeq(labels, ",") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// scraper reads the service's /metrics: once before and once after the
// load (CPU and records consumed), and every interval meanwhile (consumer
// lag over time).
type scraper struct {
	hc  *http.Client
	url string
	lag atomic.Int64 // latest total lag; -1 unknown
}

func newScraper(hc *http.Client, service string) *scraper {
	s := &scraper{hc: hc, url: strings.TrimRight(service, "/") + "/metrics"}
	s.lag.Store(-1)
	return s
}

// scrape reads /metrics once.
func (s *scraper) scrape(ctx context.Context) (ServiceSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return ServiceSample{}, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return ServiceSample{}, fmt.Errorf("scrape %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return ServiceSample{}, fmt.Errorf("scrape %s: HTTP %d", s.url, resp.StatusCode)
	}
	sample, err := ParseMetrics(resp.Body)
	sample.At = time.Now()
	if err == nil && sample.HasLag {
		s.lag.Store(int64(sample.Lag))
	}
	return sample, err
}

// run scrapes every interval until ctx ends, recording the consumer lag in
// coll (and failed scrapes as metrics_scrape errors).
func (s *scraper) run(ctx context.Context, interval time.Duration, coll *Collector) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sample, err := s.scrape(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			coll.Error(time.Now(), "metrics_scrape")
		case err == nil && sample.HasLag:
			coll.Lag(sample.At, int64(sample.Lag))
		}
	}
}

// currentLag is the latest lag seen, or -1.
func (s *scraper) currentLag() int64 { return s.lag.Load() }

// waitDrained scrapes until the service has consumed at least events
// records since base and its lag is 0, or until deadline. It returns the
// last good sample (base if none) and whether the service drained.
func (s *scraper) waitDrained(ctx context.Context, base ServiceSample, events int64, deadline time.Time, coll *Collector) (ServiceSample, bool) {
	last := base
	for {
		sample, err := s.scrape(ctx)
		if err == nil {
			last = sample
			if sample.HasLag {
				coll.Lag(sample.At, int64(sample.Lag))
			}
			if sample.HasRecords && sample.Records-base.Records >= float64(events) && sample.Lag == 0 {
				return last, true
			}
		}
		if !time.Now().Before(deadline) || !sleepCtx(ctx, 200*time.Millisecond) {
			return last, false
		}
	}
}

// sleepCtx sleeps d or until ctx ends; it reports whether it slept fully.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
