package loadtest

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

var genCreated = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// within fails unless got is within 5 standard errors of the share p over n
// trials.
func within(t *testing.T, what string, got, p float64, n int) {
	t.Helper()
	if tol := 5 * math.Sqrt(p*(1-p)/float64(n)); math.Abs(got-p) > tol {
		t.Errorf("%s = %.4f, want %.4f ± %.4f", what, got, p, tol)
	}
}

func TestGeneratorDistributions(t *testing.T) {
	g := testGenerator(t, nil)
	cfg := g.Config()
	const n = 40_000
	var (
		top, nonFinal, dup, twoFinals, reordered int
		events, v1                               int
		eventCounts                              = map[int]int{}
		channels                                 = map[postflight.Channel]int{}
		longBytes, longN                         int
	)
	now := genCreated.Add(time.Hour)
	for m := range int64(n) {
		p := g.Message(m, genCreated)
		if p.Rank == 0 {
			top++
		}
		channels[p.Channel]++
		evs := len(p.Emissions)
		if duplicated(p) {
			dup++
			evs--
		}
		eventCounts[evs]++
		maxFinal := int64(-1)
		for pos, e := range p.Emissions {
			events++
			if e.SchemaID == ingest.SchemaIDv1 {
				v1++
			}
			if !e.Duplicate {
				if d := pos - e.Rank; d < -cfg.ReorderWindow || d > cfg.ReorderWindow {
					t.Fatalf("message %d: event of rank %d sent at %d, beyond the window %d", m, e.Rank, pos, cfg.ReorderWindow)
				}
				if pos != e.Rank {
					reordered++
				}
			}
			ev := e.Event
			if ev.Sequence != int64(e.Rank+1) || ev.MessageSID != p.SID || ev.AccountSID != p.Account {
				t.Fatalf("message %d: event %+v does not belong to it", m, ev)
			}
			if err := ev.Validate(now, 15*time.Minute); err != nil {
				t.Fatalf("message %d: invalid event: %v", m, err)
			}
			if ev.Status.IsFinal() {
				maxFinal = max(maxFinal, ev.Sequence)
			}
		}
		// Every non-final status comes before every final one.
		finals := 0
		for _, e := range p.Emissions {
			if !e.Duplicate && e.Event.Status.IsFinal() {
				finals++
				if e.Rank < evs-p.Finals {
					t.Fatalf("message %d: final status %v at rank %d of %d with %d finals", m, e.Event.Status, e.Rank, evs, p.Finals)
				}
			}
		}
		if finals != p.Finals {
			t.Fatalf("message %d: %d final events, plan says %d", m, finals, p.Finals)
		}
		switch {
		case p.Final == nil:
			nonFinal++
			if maxFinal >= 0 || p.Winner != -1 {
				t.Fatalf("message %d: no final state but a final event (seq %d) or winner %d", m, maxFinal, p.Winner)
			}
		default:
			w := p.Emissions[p.Winner]
			if w.Duplicate || w.Event.Sequence != maxFinal || p.Final.Sequence != maxFinal || !p.Final.Status.IsFinal() {
				t.Fatalf("message %d: winner %+v, final %+v, highest final sequence %d", m, w, p.Final, maxFinal)
			}
			if p.Finals == 2 {
				twoFinals++
			}
		}
		switch p.Channel {
		case postflight.ChannelSMS:
			if l := len(*p.Emissions[0].Event.Body); l > 459 {
				t.Fatalf("SMS body of %d bytes", l)
			}
		case postflight.ChannelWhatsApp, postflight.ChannelRCS:
			longBytes += len(*p.Emissions[0].Event.Body)
			longN++
		}
	}
	within(t, "top account share", float64(top)/n, cfg.TopShare, n)
	within(t, "non-final share", float64(nonFinal)/n, cfg.NonFinalShare, n)
	within(t, "duplicate share", float64(dup)/n, cfg.DuplicateShare, n)
	within(t, "v1 share of events", float64(v1)/float64(events), cfg.V1Share, events)
	within(t, "SMS share", float64(channels[postflight.ChannelSMS])/n, 0.60, n)
	for k := cfg.EventsPerMessage - 1; k <= cfg.EventsPerMessage+1; k++ {
		within(t, "messages with "+string(rune('0'+k))+" events", float64(eventCounts[k])/n, 1.0/3, n)
	}
	if len(eventCounts) != 3 {
		t.Errorf("event counts %v, want only %d–%d", eventCounts, cfg.EventsPerMessage-1, cfg.EventsPerMessage+1)
	}
	if twoFinals < n/50 {
		t.Errorf("%d messages with two final events (delivered, read), want some", twoFinals)
	}
	if reordered < n/4 {
		t.Errorf("%d events sent out of order, want many with window %d", reordered, cfg.ReorderWindow)
	}
	if mean := float64(longBytes) / float64(longN); math.Abs(mean-float64(cfg.ItemBytes)) > 0.05*float64(cfg.ItemBytes) {
		t.Errorf("mean WhatsApp/RCS body %.0f bytes, want about %d", mean, cfg.ItemBytes)
	}
}

func TestGeneratorInOrderWithoutWindow(t *testing.T) {
	g := testGenerator(t, func(c *GeneratorConfig) { c.ReorderWindow, c.DuplicateShare, c.NonFinalShare = 0, 0, 0 })
	for m := range int64(2000) {
		p := g.Message(m, genCreated)
		for pos, e := range p.Emissions {
			if e.Rank != pos || e.Duplicate {
				t.Fatalf("message %d: rank %d sent at %d (duplicate %v) with no window", m, e.Rank, pos, e.Duplicate)
			}
		}
		if p.Final == nil {
			t.Fatalf("message %d never final with a non-final share of 0", m)
		}
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, b := testGenerator(t, nil), testGenerator(t, nil)
	other := testGenerator(t, func(c *GeneratorConfig) { c.Seed = 2 })
	rerun := testGenerator(t, func(c *GeneratorConfig) { c.RunID = 99 })
	same := 0
	for m := range int64(500) {
		pa, pb := a.Message(m, genCreated), b.Message(m, genCreated)
		if !reflect.DeepEqual(pa, pb) {
			t.Fatalf("message %d differs between generators with the same seed", m)
		}
		if reflect.DeepEqual(pa.Emissions, other.Message(m, genCreated).Emissions) {
			same++
		}
		pr := rerun.Message(m, genCreated)
		if pr.SID == pa.SID || pr.Account != pa.Account || len(pr.Emissions) != len(pa.Emissions) || (pr.Final == nil) != (pa.Final == nil) {
			t.Fatalf("message %d: another run ID must change the SID only", m)
		}
	}
	if same > 0 {
		t.Errorf("%d of 500 messages identical under another seed", same)
	}
}

func TestGeneratorShardsAreDisjoint(t *testing.T) {
	seen := map[string]string{}
	for i := range 3 {
		g := testGenerator(t, func(c *GeneratorConfig) { c.Shard = ShardSpec{Index: i, Count: 3}; c.RunID = uint64(i) })
		for m := range int64(20_000) {
			p := g.Message(m, genCreated)
			if !postflight.ValidMessageSID(p.SID) {
				t.Fatalf("invalid SID %q", p.SID)
			}
			if prev, dup := seen[p.SID]; dup {
				t.Fatalf("SID %s of shard %d message %d already made by %s", p.SID, i, m, prev)
			}
			seen[p.SID] = ShardSpec{Index: i, Count: 3}.String()
		}
	}
}

// TestGeneratorRoundTrip: every event, framed and Avro-encoded with its
// schema and decoded by ingest's decoder, is the event generated; the
// winning event decodes to exactly the expected final state (schema v1
// dropping content_sid and tags).
func TestGeneratorRoundTrip(t *testing.T) {
	g := testGenerator(t, func(c *GeneratorConfig) { c.V1Share = 0.5 })
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, func() time.Time { return genCreated.Add(time.Hour) })
	v1Winners := 0
	for m := range int64(3000) {
		p := g.Message(m, genCreated)
		for i, e := range p.Emissions {
			raw, err := ingest.Encode(e.SchemaID, e.Event)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := dec.Decode(context.Background(), raw)
			if err != nil {
				t.Fatalf("message %d emission %d: %v", m, i, err)
			}
			if ev.Sequence != e.Event.Sequence || ev.Status != e.Event.Status || ev.EventID != e.Event.EventID {
				t.Fatalf("message %d emission %d decodes to another event", m, i)
			}
			if i == p.Winner {
				got := ev.Message()
				if d := MessageDiff(p.Final, &got); d != "" {
					t.Fatalf("message %d (schema %d): decoded winner differs from the expected state: %s", m, e.SchemaID, d)
				}
				if e.SchemaID == ingest.SchemaIDv1 && (e.Event.ContentSID != nil || len(e.Event.Tags) > 0) {
					v1Winners++
				}
			}
		}
	}
	if v1Winners == 0 {
		t.Error("no v1 winner whose v2-only fields had to be dropped: the case is untested")
	}
}

func TestGeneratorConfigErrors(t *testing.T) {
	for _, bad := range []func(*GeneratorConfig){
		func(c *GeneratorConfig) { c.EventsPerMessage = 0 },
		func(c *GeneratorConfig) { c.EventsPerMessage = maxEventsPerMessage + 1 },
		func(c *GeneratorConfig) { c.NonFinalShare = 1.5 },
		func(c *GeneratorConfig) { c.ReorderWindow = -1 },
		func(c *GeneratorConfig) { c.TopShare = 0 },
		func(c *GeneratorConfig) { c.Shard = ShardSpec{Index: 3, Count: 3} },
		func(c *GeneratorConfig) { c.ItemBytes = 0 },
	} {
		cfg := DefaultRunConfig().GeneratorConfig()
		bad(&cfg)
		if _, err := NewGenerator(cfg); err == nil {
			t.Errorf("NewGenerator(%+v) = nil error", cfg)
		}
	}
	direct := DefaultRunConfig()
	direct.Mode = ModeDirect
	if direct.GeneratorConfig().NonFinalShare != 0 {
		t.Error("direct mode generates non-final messages")
	}
}

// duplicated reports whether one of the message's events is sent twice.
func duplicated(p *MessagePlan) bool {
	return len(p.Emissions) > 0 && p.Emissions[len(p.Emissions)-1].Duplicate
}
