package loadtest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 1 hour (longer values
// are clamped to an hour), at 3 significant digits overall and 2 per second.
const (
	histLowest       = 1
	histHighest      = int64(time.Hour / time.Microsecond)
	histDigits       = 3
	histSecondDigits = 2
)

// Latency is the summary of a latency distribution in milliseconds: the
// report contract's {p50, p99, p999, max}.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func latencyOf(h interface {
	ValueAtPercentile(float64) int64
	Max() int64
	TotalCount() int64
}) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  usToMs(h.ValueAtPercentile(50)),
		P99:  usToMs(h.ValueAtPercentile(99)),
		P999: usToMs(h.ValueAtPercentile(99.9)),
		Max:  usToMs(h.Max()),
	}
}

func usToMs(us int64) float64 { return float64(us) / 1000 }

// Recorder records one latency metric (write, read, end-to-end, index lag):
// an HDR histogram of the whole run plus one per wall-clock second for the
// time series. All methods are safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	total *hdr.Histogram
	secs  map[int64]*hdr.PackedHistogram // by Unix second; sparse, so long runs stay small
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		total: hdr.New(histLowest, histHighest, histDigits),
		secs:  map[int64]*hdr.PackedHistogram{},
	}
}

// Record adds one latency d, charted in the second of at. For an operation,
// pass its intended start time as at and measure d from it too.
func (r *Recorder) Record(at time.Time, d time.Duration) {
	us := min(max(d.Microseconds(), 0), histHighest)
	sec := at.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.total.RecordValue(us) // in range by construction
	h := r.secs[sec]
	if h == nil {
		h = hdr.NewPacked(histLowest, histHighest, histSecondDigits)
		r.secs[sec] = h
	}
	_ = h.RecordValue(us)
}

// RecordN adds n equal latencies d, charted in the second of at: one per
// item of a batch that completed as a whole.
func (r *Recorder) RecordN(at time.Time, d time.Duration, n int64) {
	if n <= 0 {
		return
	}
	us := min(max(d.Microseconds(), 0), histHighest)
	sec := at.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.total.RecordValues(us, n)
	h := r.secs[sec]
	if h == nil {
		h = hdr.NewPacked(histLowest, histHighest, histSecondDigits)
		r.secs[sec] = h
	}
	_ = h.RecordValues(us, n)
}

// Count returns the number of values recorded.
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total.TotalCount()
}

// Dist returns the recorded distribution in its exact, mergeable report form.
func (r *Recorder) Dist() (Dist, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return encodeDist(r.total, r.secs)
}

// Dist is a recorded distribution as stored in a report: HDR histograms (of
// microseconds) in the standard V2 compressed base64 encoding, so that
// reports from several processes merge exactly. The zero Dist is empty.
type Dist struct {
	Total   string       `json:"total,omitempty"`
	Seconds []SecondDist `json:"seconds,omitempty"` // ascending by T
}

// SecondDist is the distribution of one wall-clock second.
type SecondDist struct {
	T    int64  `json:"t"` // Unix seconds
	Hist string `json:"h"`
}

// decodedDist is a Dist in memory.
type decodedDist struct {
	total *hdr.Histogram
	secs  map[int64]*hdr.PackedHistogram
}

func encodeDist(total *hdr.Histogram, secs map[int64]*hdr.PackedHistogram) (Dist, error) {
	var d Dist
	if total.TotalCount() == 0 {
		return d, nil
	}
	b, err := total.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return Dist{}, fmt.Errorf("encode histogram: %w", err)
	}
	d.Total = string(b)
	for _, t := range slices.Sorted(maps.Keys(secs)) {
		b, err := secs[t].Encode()
		if err != nil {
			return Dist{}, fmt.Errorf("encode histogram of second %d: %w", t, err)
		}
		d.Seconds = append(d.Seconds, SecondDist{T: t, Hist: string(b)})
	}
	return d, nil
}

func (d Dist) decode() (decodedDist, error) {
	out := decodedDist{total: hdr.New(histLowest, histHighest, histDigits), secs: map[int64]*hdr.PackedHistogram{}}
	if d.Total != "" {
		h, err := hdr.Decode([]byte(d.Total))
		if err != nil {
			return out, fmt.Errorf("decode histogram: %w", err)
		}
		if dropped := out.total.Merge(h); dropped > 0 {
			return out, fmt.Errorf("decode histogram: %d values out of range", dropped)
		}
	}
	for _, s := range d.Seconds {
		h, err := hdr.DecodePacked([]byte(s.Hist))
		if err != nil {
			return out, fmt.Errorf("decode histogram of second %d: %w", s.T, err)
		}
		if prev := out.secs[s.T]; prev != nil {
			prev.Merge(h)
		} else {
			out.secs[s.T] = h
		}
	}
	return out, nil
}

// merge adds o into d.
func (d decodedDist) merge(o decodedDist) error {
	if dropped := d.total.Merge(o.total); dropped > 0 {
		return fmt.Errorf("merge histograms: %d values out of range", dropped)
	}
	for t, h := range o.secs {
		if prev := d.secs[t]; prev != nil {
			if dropped := prev.Merge(h); dropped > 0 {
				return fmt.Errorf("merge histograms of second %d: %d values out of range", t, dropped)
			}
		} else {
			d.secs[t] = h.Clone()
		}
	}
	return nil
}

func (d decodedDist) encode() (Dist, error) { return encodeDist(d.total, d.secs) }

// MergeDists returns the exact merge of distributions.
func MergeDists(ds ...Dist) (Dist, error) {
	acc, _ := Dist{}.decode()
	for _, d := range ds {
		dd, err := d.decode()
		if err != nil {
			return Dist{}, err
		}
		if err := acc.merge(dd); err != nil {
			return Dist{}, err
		}
	}
	return acc.encode()
}
