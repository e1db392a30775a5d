package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// collect gathers a run's results in sequence order.
type collect struct {
	mu  sync.Mutex
	res []OpResult
}

func (c *collect) observe(r OpResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res = append(c.res, r)
}

func (c *collect) sorted() []OpResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.res)
	slices.SortFunc(out, func(a, b OpResult) int { return int(a.Seq - b.Seq) })
	return out
}

func noop(context.Context, int64) error { return nil }

func TestPacerRateAccuracy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := NewPacer(PacerConfig{Schedule: Schedule{{Duration: time.Second, Rate: 1000}}, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		var c collect
		start := time.Now()
		st, err := p.Run(t.Context(), noop, c.observe)
		if err != nil {
			t.Fatal(err)
		}
		if st.Issued != 1000 || st.Scheduled != 1000 || st.Unsent != 0 || st.Failed != 0 {
			t.Errorf("stats = %+v, want 1000 issued and scheduled, none unsent", st)
		}
		if !st.Start.Equal(start) || st.End.Sub(st.Start) != time.Second {
			t.Errorf("window %v..%v, want 1s from %v", st.Start, st.End, start)
		}
		for i, r := range c.sorted() {
			want := start.Add(time.Duration(i) * time.Millisecond)
			if r.Seq != int64(i) || !r.Intended.Equal(want) {
				t.Fatalf("op %d: seq %d intended %v, want %v", i, r.Seq, r.Intended.Sub(start), want.Sub(start))
			}
			if r.Delay() != 0 || r.Latency() != 0 {
				t.Fatalf("op %d: delay %v latency %v, want 0 (nothing stalls)", i, r.Delay(), r.Latency())
			}
		}
	})
}

func TestPacerRampStages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := Schedule{{Duration: time.Second, Rate: 100}, {Duration: 2 * time.Second, Rate: 300}, {Duration: time.Second, Rate: 0}, {Duration: 500 * time.Millisecond, Rate: 10}}
		p, err := NewPacer(PacerConfig{Schedule: sched, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		var c collect
		start := time.Now()
		st, err := p.Run(t.Context(), noop, c.observe)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(100 + 600 + 0 + 5); st.Issued != want || sched.Ops() != want {
			t.Fatalf("issued %d, planned %d, want %d", st.Issued, sched.Ops(), want)
		}
		perSecond := map[int]int{}
		for _, r := range c.sorted() {
			perSecond[int(r.Intended.Sub(start)/time.Second)]++
		}
		if want := map[int]int{0: 100, 1: 300, 2: 300, 4: 5}; !mapsEqual(perSecond, want) {
			t.Errorf("ops per second = %v, want %v", perSecond, want)
		}
		// The last op is intended at 4.4 s and takes no time.
		if d := time.Since(start); d != 4400*time.Millisecond {
			t.Errorf("run took %v, want 4.4s", d)
		}
	})
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPacerNoCoordinatedOmission: with one worker at 100 ops/s, op 10
// stalls for 200 ms. A closed-loop tester would record one slow op; here
// every op queued behind the stall records its wait, measured from when it
// was meant to start, and the pacer then catches up to the schedule.
func TestPacerNoCoordinatedOmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := NewPacer(PacerConfig{Schedule: Schedule{{Duration: time.Second, Rate: 100}}, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		op := func(_ context.Context, seq int64) error {
			if seq == 10 {
				time.Sleep(200 * time.Millisecond) // synctest's fake clock: deterministic
			}
			return nil
		}
		rec := NewRecorder()
		var c collect
		st, err := p.Run(t.Context(), op, func(r OpResult) {
			rec.Record(r.Intended, r.Latency())
			c.observe(r)
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Issued != 100 || st.Unsent != 0 {
			t.Fatalf("stats = %+v, want all 100 issued", st)
		}
		res := c.sorted()
		// Op 10 starts at 100 ms and ends at 300 ms; ops 11…29, intended at
		// 110…290 ms, all start at 300 ms.
		for _, r := range res {
			var want time.Duration
			switch {
			case r.Seq == 10:
				want = 200 * time.Millisecond
			case r.Seq > 10 && r.Seq < 30:
				want = 300*time.Millisecond - time.Duration(r.Seq)*10*time.Millisecond
			}
			if r.Latency() != want {
				t.Errorf("op %d: latency %v, want %v", r.Seq, r.Latency(), want)
			}
			if st := r.End.Sub(r.Start); r.Seq > 10 && st != 0 {
				t.Errorf("op %d: service time %v, want 0 (only the queueing is slow)", r.Seq, st)
			}
		}
		if st.MaxDelay != 190*time.Millisecond {
			t.Errorf("max delay %v, want 190ms", st.MaxDelay)
		}
		// 20 of 100 latencies are ≥ 10 ms: the p99 shows the stall's
		// queue (190 ms for op 11), not just the one slow op.
		lat := rec.Latency()
		if lat.P99 < 180 || lat.Max < 199 || lat.Max > 201 {
			t.Errorf("recorded latency %+v: want p99 ≥ 180 ms and max 200 ms", lat)
		}
		if lat.P50 != 0 {
			t.Errorf("p50 = %v ms, want 0", lat.P50)
		}
	})
}

func TestPacerBoundedInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := NewPacer(PacerConfig{Schedule: Schedule{{Duration: time.Second, Rate: 100}}, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		op := func(context.Context, int64) error {
			time.Sleep(2 * time.Second)
			return errors.New("slow")
		}
		start := time.Now()
		st, err := p.Run(t.Context(), op, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Four ops start at 0–30 ms, hold every worker past the end of the
		// schedule, and the other 96 are never sent.
		if st.Issued != 4 || st.MaxInFlight != 4 || st.Unsent != 96 || st.Scheduled != 100 || st.Failed != 4 {
			t.Errorf("stats = %+v, want 4 issued, 4 in flight, 4 failed, 96 unsent", st)
		}
		if st.End.Sub(start) != time.Second {
			t.Errorf("issuing stopped at %v, want 1s", st.End.Sub(start))
		}
		// Run waits for the ops in flight.
		if d := time.Since(start); d != 2030*time.Millisecond {
			t.Errorf("Run returned after %v, want 2.03s", d)
		}
	})
}

func TestPacerContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := NewPacer(PacerConfig{Schedule: Schedule{{Duration: 10 * time.Second, Rate: 100}}, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(505*time.Millisecond, cancel)
		var sawCancel bool
		var mu sync.Mutex
		op := func(ctx context.Context, seq int64) error {
			if seq == 50 { // intended at 500 ms; outlives the cancel
				<-ctx.Done()
				mu.Lock()
				sawCancel = true
				mu.Unlock()
				return ctx.Err()
			}
			return nil
		}
		start := time.Now()
		st, err := p.Run(ctx, op, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run error = %v, want context.Canceled", err)
		}
		if st.Issued != 51 || st.Scheduled != 51 || st.Unsent != 0 || st.Failed != 1 {
			t.Errorf("stats = %+v, want ops 0…50 issued, op 50 failed", st)
		}
		if d := st.End.Sub(start); d != 505*time.Millisecond {
			t.Errorf("stopped at %v, want 505ms", d)
		}
		if !sawCancel {
			t.Error("the op in flight did not see the cancellation")
		}
	})
}

// TestPacerRealClock runs briefly on the real clock: every op is issued
// and none starts before its time.
func TestPacerRealClock(t *testing.T) {
	p, err := NewPacer(PacerConfig{Schedule: Schedule{{Duration: 100 * time.Millisecond, Rate: 2000}}})
	if err != nil {
		t.Fatal(err)
	}
	var c collect
	st, err := p.Run(t.Context(), noop, c.observe)
	if err != nil {
		t.Fatal(err)
	}
	if st.Issued+st.Unsent != 200 || st.Scheduled != 200 {
		t.Errorf("stats = %+v, want 200 scheduled", st)
	}
	for _, r := range c.sorted() {
		if r.Start.Before(r.Intended) {
			t.Fatalf("op %d started %v early", r.Seq, r.Intended.Sub(r.Start))
		}
	}
}

func TestNewPacerErrors(t *testing.T) {
	for _, cfg := range []PacerConfig{
		{},
		{Schedule: Schedule{{Duration: 0, Rate: 1}}},
		{Schedule: Schedule{{Duration: time.Second, Rate: -1}}},
		{Schedule: Schedule{{Duration: time.Second, Rate: 1}}, Workers: -1},
	} {
		if _, err := NewPacer(cfg); err == nil {
			t.Errorf("NewPacer(%+v) = nil error", cfg)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("30s:1000, 1m:5000,500ms:2.5")
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{{30 * time.Second, 1000}, {time.Minute, 5000}, {500 * time.Millisecond, 2.5}}
	if !slices.Equal(s, want) {
		t.Fatalf("ParseSchedule = %v, want %v", s, want)
	}
	if s.Duration() != 90500*time.Millisecond || s.Ops() != 30_000+300_000+2 {
		t.Errorf("duration %v ops %d", s.Duration(), s.Ops())
	}
	again, err := ParseSchedule(s.String())
	if err != nil || !slices.Equal(again, s) {
		t.Errorf("round trip via %q = %v, %v", s.String(), again, err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Schedule
	if err := json.Unmarshal(b, &fromJSON); err != nil || !slices.Equal(fromJSON, s) {
		t.Errorf("JSON round trip via %s = %v, %v", b, fromJSON, err)
	}
	if empty, err := ParseSchedule(""); err != nil || empty != nil {
		t.Errorf("empty = %v, %v", empty, err)
	}
	for _, bad := range []string{"30s", "x:1", "1s:y", "0s:5", "1s:-1"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) = nil error", bad)
		}
	}
}

func TestScheduledBefore(t *testing.T) {
	s := Schedule{{Duration: time.Second, Rate: 10}, {Duration: time.Second, Rate: 100}}
	for _, tt := range []struct {
		at   time.Duration
		want int64
	}{{0, 0}, {1, 1}, {100 * time.Millisecond, 1}, {101 * time.Millisecond, 2}, {time.Second, 10}, {1500 * time.Millisecond, 60}, {5 * time.Second, 110}} {
		if got := scheduledBefore(s, tt.at); got != tt.want {
			t.Errorf("scheduledBefore(%v) = %d, want %d", tt.at, got, tt.want)
		}
	}
}
