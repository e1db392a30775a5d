package loadtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
)

func testGenerator(tb testing.TB, edit func(*GeneratorConfig)) *Generator {
	tb.Helper()
	cfg := DefaultRunConfig().GeneratorConfig()
	if edit != nil {
		edit(&cfg)
	}
	g, err := NewGenerator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// BenchmarkGenerateProduce measures kafka mode's write side — the
// generator, Avro encoding with Confluent framing, sarama's AsyncProducer
// (acks=all, hash partitioner) — into kfake started in the benchmark's own
// process (so the broker's CPU counts against the same 2 cores), one op per
// slot (about 4 events), and reports events/s:
//
//   - flat-out: 256 workers (the default --workers) take slots as fast as
//     acknowledgements come back: the most one process generates;
//   - paced-100k: the Pacer schedules slots for 100k events/s, as `loadtest
//     run` does; it also reports the writes never sent and the write p99.
//
// Run: go test -run '^$' -bench GenerateProduce -benchtime 200000x ./loadtest/
func BenchmarkGenerateProduce(b *testing.B) {
	b.Run("flat-out", func(b *testing.B) { benchProduce(b, 0) })
	b.Run("paced-100k", func(b *testing.B) { benchProduce(b, 100_000) })
}

// benchWorkers is the default --workers.
const benchWorkers = 256

func benchProduce(b *testing.B, eventsPerSec float64) {
	brokers, _ := testenv.Kafka(b, "message-events")
	g := testGenerator(b, nil)
	t0 := time.Now()
	// Slots at the paced rate carry EventsPerMessage + DuplicateShare
	// events on average.
	cfg := g.Config()
	slotRate := eventsPerSec / (float64(cfg.EventsPerMessage) + cfg.DuplicateShare)
	// A 10 ms event gap keeps the slots at the start (before the first
	// messages' later events are due) and at the end (only later events
	// left) to a fraction of a percent of the run.
	slots := newSlotPlan(int64(b.N), g.MaxEmissions(), gapSlots(10*time.Millisecond, max(slotRate, 25_000)))
	plans := newPlanCache(int(slots.gap)*slots.span+4096, func(m int64) *MessagePlan { return g.Message(m, t0) })
	k, err := newKafkaWriter(brokers, "message-events", slots, plans)
	if err != nil {
		b.Fatal(err)
	}
	defer k.close()
	var failed atomic.Int64
	fail := func(err error) {
		if err != nil && !errors.Is(err, errEmptySlot) {
			failed.Add(1)
		}
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var stats PacerStats
	lat := NewRecorder()
	if eventsPerSec == 0 {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range benchWorkers {
			wg.Go(func() {
				for s := next.Add(1) - 1; s < int64(b.N); s = next.Add(1) - 1 {
					fail(k.op(context.Background(), s))
				}
			})
		}
		wg.Wait()
	} else {
		d := time.Duration(float64(b.N) / slotRate * float64(time.Second))
		p, err := NewPacer(PacerConfig{Schedule: Schedule{{Duration: d, Rate: slotRate}}, Workers: benchWorkers})
		if err != nil {
			b.Fatal(err)
		}
		stats, err = p.Run(context.Background(), k.op, func(r OpResult) {
			fail(r.Err)
			if r.Err == nil {
				lat.Record(r.Intended, r.Latency())
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d slots failed", failed.Load())
	}
	events := float64(k.events.Load())
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/events, "cpu-µs/event")
	if eventsPerSec > 0 {
		b.ReportMetric(float64(stats.Unsent), "unsent")
		b.ReportMetric(lat.Latency().P99, "write-p99-ms")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestKafkaWriter produces a short paced schedule into kfake and reads it
// back: every emission of every message arrives exactly once, keyed by its
// SID, each message's events in its sending order, decodable; the writer's
// count of acknowledged events agrees.
func TestKafkaWriter(t *testing.T) {
	brokers, _ := testenv.Kafka(t, "message-events")
	g := testGenerator(t, nil)
	t0 := time.Now()
	sched := Schedule{{Duration: time.Second, Rate: 400}}
	slots := newSlotPlan(sched.Ops(), g.MaxEmissions(), gapSlots(50*time.Millisecond, 400))
	plan := func(m int64) *MessagePlan { off, _ := sched.Offset(m); return g.Message(m, t0.Add(off)) }
	k, err := newKafkaWriter(brokers, "message-events", slots, newPlanCache(64, plan))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPacer(PacerConfig{Schedule: sched, Workers: 32})
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	var mu sync.Mutex
	var issued []int64               // slots whose op ran
	span := map[int64][2]time.Time{} // slot → its op's start and end
	st, err := p.Run(t.Context(), k.op, func(r OpResult) {
		if r.Err != nil && !errors.Is(r.Err, errEmptySlot) {
			failed.Add(1)
		}
		mu.Lock()
		issued = append(issued, r.Seq)
		span[r.Seq] = [2]time.Time{r.Start, r.End}
		mu.Unlock()
	})
	k.close()
	// On a loaded machine the pacer may leave the last slots unsent (every
	// worker still waiting for acks when the schedule ends): what is checked
	// is that every emission of every slot sent arrives exactly once.
	if err != nil || failed.Load() > 0 || st.Issued == 0 || int64(len(issued)) != st.Issued {
		t.Fatalf("run: %v, %d failed, %d results, %+v", err, failed.Load(), len(issued), st)
	}
	if st.Unsent > 0 {
		t.Logf("%d of %d slots unsent (the machine is slow); checking the %d sent", st.Unsent, st.Scheduled, st.Issued)
	}
	slices.Sort(issued)
	var want int
	sent := map[string][]string{} // SID → event IDs in emission order
	// A message's events are in Kafka in emission order when each one's op
	// ended (acknowledged) before the next one's began. On a stalled machine
	// the pacer can hand two slots of one message to two workers at once;
	// those may arrive in either order (Postflight orders by sequence, not
	// arrival), so for such a message only exactly-once is checked.
	ordered := map[string]bool{}
	lastEnd := map[string]time.Time{}
	for _, slot := range issued {
		slots.each(slot, func(m int64, e int) {
			pl := plan(m)
			if e < len(pl.Emissions) {
				if _, seen := ordered[pl.SID]; !seen {
					ordered[pl.SID] = true
				}
				if end, ok := lastEnd[pl.SID]; ok && span[slot][0].Before(end) {
					ordered[pl.SID] = false
				}
				lastEnd[pl.SID] = span[slot][1]
				sent[pl.SID] = append(sent[pl.SID], pl.Emissions[e].Event.EventID)
				want++
			}
		})
	}
	if got := k.events.Load(); got != int64(want) {
		t.Fatalf("%d events acknowledged, want %d", got, want)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("message-events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := map[string][]string{}
	for n := 0; n < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d events", n, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, err := dec.Decode(ctx, r.Value)
			if err != nil {
				t.Fatalf("undecodable record: %v", err)
			}
			if string(r.Key) != ev.MessageSID {
				t.Fatalf("key %q for an event of %s", r.Key, ev.MessageSID)
			}
			got[ev.MessageSID] = append(got[ev.MessageSID], ev.EventID)
			n++
		})
	}
	var diff []string
	overlapped := 0
	for sid, w := range sent {
		g := got[sid]
		if !ordered[sid] {
			overlapped++
			w, g = slices.Sorted(slices.Values(w)), slices.Sorted(slices.Values(g))
		}
		if !slices.Equal(g, w) {
			diff = append(diff, fmt.Sprintf("%s: sent %v, read %v", sid, w, g))
		}
	}
	if len(diff) > 0 || len(got) != len(sent) {
		t.Fatalf("events read back differ from those sent (%d vs %d messages; %d differ): %s", len(got), len(sent), len(diff), strings.Join(diff[:min(len(diff), 5)], "; "))
	}
	if overlapped > 0 {
		t.Logf("%d of %d messages had overlapping sends (a stalled machine): checked exactly once, not order", overlapped, len(sent))
	}
}
