package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Stage is a period of constant operation rate.
type Stage struct {
	Duration time.Duration
	Rate     float64 // operations per second; 0 pauses
}

// Schedule is an open-loop rate plan: its stages back to back. Operation j
// of a stage with rate r is intended to start j/r after the stage begins, for
// every j with j/r < the stage's duration, whatever happened to earlier
// operations. A ramp-up is a list of stages of rising rate.
type Schedule []Stage

// maxScheduleOps bounds the operations a schedule may plan.
const maxScheduleOps = 1 << 40

// Validate checks that every stage has a positive duration and a finite,
// non-negative rate, and that the plan is not absurdly large.
func (s Schedule) Validate() error {
	if len(s) == 0 {
		return fmt.Errorf("schedule: no stages")
	}
	var ops float64
	for i, st := range s {
		if st.Duration <= 0 {
			return fmt.Errorf("schedule: stage %d: duration %v must be > 0", i, st.Duration)
		}
		if !(st.Rate >= 0) || math.IsInf(st.Rate, 0) {
			return fmt.Errorf("schedule: stage %d: rate %v must be finite and ≥ 0", i, st.Rate)
		}
		ops += float64(st.ops())
	}
	if ops > maxScheduleOps {
		return fmt.Errorf("schedule: %.0f operations, more than %d", ops, int64(maxScheduleOps))
	}
	return nil
}

// Duration returns the total duration.
func (s Schedule) Duration() time.Duration {
	var d time.Duration
	for _, st := range s {
		d += st.Duration
	}
	return d
}

// Ops returns the number of operations the schedule plans.
func (s Schedule) Ops() int64 {
	var n int64
	for _, st := range s {
		n += st.ops()
	}
	return n
}

// MeanRate returns the planned operations per second over the whole schedule.
func (s Schedule) MeanRate() float64 {
	d := s.Duration()
	if d <= 0 {
		return 0
	}
	return float64(s.Ops()) / d.Seconds()
}

// Scale returns the schedule with every rate multiplied by f (a shard
// process's part of the whole).
func (s Schedule) Scale(f float64) Schedule {
	out := make(Schedule, len(s))
	for i, st := range s {
		out[i] = Stage{Duration: st.Duration, Rate: st.Rate * f}
	}
	return out
}

// ops is the number of j ≥ 0 with j/rate < duration.
func (st Stage) ops() int64 {
	if !(st.Rate > 0) || st.Duration <= 0 {
		return 0
	}
	x := st.Duration.Seconds() * st.Rate
	return int64(math.Ceil(x - 1e-9))
}

// Offset returns the intended start of the schedule's operation j (from 0),
// from the schedule's start: what the pacer's ticket j says. ok is false for
// j < 0 or past the last operation.
func (s Schedule) Offset(j int64) (d time.Duration, ok bool) {
	if j < 0 {
		return 0, false
	}
	var base time.Duration
	for _, st := range s {
		n := st.ops()
		if j < n {
			return base + st.offset(j), true
		}
		j -= n
		base += st.Duration
	}
	return 0, false
}

// offset is the intended start of operation j of the stage, from its start.
func (st Stage) offset(j int64) time.Duration {
	return time.Duration(float64(j) * float64(time.Second) / st.Rate)
}

// String returns the form ParseSchedule reads, e.g. "30s:1000,1m0s:5000".
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = st.String()
	}
	return strings.Join(parts, ",")
}

// String returns "DURATION:RATE".
func (st Stage) String() string {
	return st.Duration.String() + ":" + strconv.FormatFloat(st.Rate, 'g', -1, 64)
}

// ParseSchedule parses comma-separated DURATION:RATE stages, e.g.
// "30s:1000,30s:5000,5m:10000". The empty string is an empty schedule.
func ParseSchedule(text string) (Schedule, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	var s Schedule
	for part := range strings.SplitSeq(text, ",") {
		d, r, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("schedule stage %q: want DURATION:RATE", part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("schedule stage %q: %w", part, err)
		}
		rate, err := strconv.ParseFloat(r, 64)
		if err != nil {
			return nil, fmt.Errorf("schedule stage %q: rate: %w", part, err)
		}
		s = append(s, Stage{Duration: dur, Rate: rate})
	}
	return s, s.Validate()
}

type stageJSON struct {
	Duration string  `json:"duration"`
	Rate     float64 `json:"rate"`
}

// MarshalJSON writes {"duration": "30s", "rate": 1000}.
func (st Stage) MarshalJSON() ([]byte, error) {
	return json.Marshal(stageJSON{Duration: st.Duration.String(), Rate: st.Rate})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (st *Stage) UnmarshalJSON(b []byte) error {
	var j stageJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := time.ParseDuration(j.Duration)
	if err != nil {
		return fmt.Errorf("stage duration: %w", err)
	}
	*st = Stage{Duration: d, Rate: j.Rate}
	return nil
}

// cursor walks a schedule's intended start offsets in order.
type cursor struct {
	s     Schedule
	stage int
	base  time.Duration // start of the current stage
	j     int64         // next operation within the stage
}

// next returns the next intended offset from the schedule's start, or false
// when the schedule is done.
func (c *cursor) next() (time.Duration, bool) {
	for c.stage < len(c.s) {
		st := c.s[c.stage]
		if c.j < st.ops() {
			off := c.base + st.offset(c.j)
			c.j++
			return off, true
		}
		c.base += st.Duration
		c.stage++
		c.j = 0
	}
	return 0, false
}
