// Package benchload produces the seeded event backlogs that the ingest
// benchmark (ingest/bench_test.go) and the whole-process harness
// (scripts/bench-serve) measure, so both measure the same records.
//
// Three workloads:
//
//   - new: one final event (delivered) per message, every message new,
//     ~136-byte SMS bodies over 100 accounts: the benchmark's historical load.
//   - status: a status stream. Most messages get 2–4 events (non-final ones
//     first), 5 % never become final, ~30 % receive a second final event
//     (read after delivered), 5 % have one event sent twice. A message's
//     lifecycle up to its first final event is spread over the stream
//     (about 64 messages in flight at a time) and adjacent events are
//     swapped 20 % of the time; a read, and a redelivered copy, come n/3 to
//     2n/3 events later (minutes later at a production rate; those due past
//     the end are not sent). In a drain the batcher reads up to
//     --max-pending-mb ahead (~120,000 events of this stream at the
//     default), merging a message's events that meet there, so only a
//     backlog of several hundred thousand events shows what a live stream
//     does: later events that meet a stored message.
//   - mix: one final event per message with loadtest's realistic channel and
//     body mix (60 % SMS, 25 % WhatsApp with ~1 KB bodies, MMS, RCS).
package benchload

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/loadtest"
)

// Workloads names the workloads, in the order reports list them.
var Workloads = []string{"new", "status", "mix"}

// Stats describes a produced backlog.
type Stats struct {
	Events   int // records produced
	Messages int // distinct messages
	Final    int // messages that reached a final status
	Finals   int // distinct final events (a message's delivered and read count twice)
}

// Produce produces n events of the workload to topic, keyed by message SID,
// as Avro with Confluent framing, and returns when the broker acknowledged
// them all. The same workload, seed and n give the same records (save the
// SIDs' run salt, which keeps runs against one store apart).
func Produce(ctx context.Context, brokers []string, topic, workload string, seed uint64, n int) (Stats, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return Stats{}, err
	}
	defer cl.Close()
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	emit := func(key string, value []byte) {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	st, err := Generate(workload, seed, n, emit)
	if err != nil {
		return st, err
	}
	if err := cl.Flush(ctx); err != nil {
		return st, err
	}
	if failed.Load() > 0 {
		return st, fmt.Errorf("produce: %d records failed, first: %w", failed.Load(), *firstErr.Load())
	}
	return st, nil
}

// Generate calls emit for each of n events of the workload, in producing
// order.
func Generate(workload string, seed uint64, n int, emit func(key string, value []byte)) (Stats, error) {
	r := rand.New(rand.NewPCG(seed, 0x62656e63686c6f61))
	salt := r.Uint64()
	now := time.Now().UTC().Truncate(time.Millisecond)
	switch workload {
	case "new":
		return generateNew(r, salt, now, n, emit)
	case "status":
		return generateStatus(r, salt, now, n, emit)
	case "mix":
		return generateMix(seed, salt, now, n, emit)
	}
	return Stats{}, fmt.Errorf("unknown workload %q (want one of %s)", workload, strings.Join(Workloads, ", "))
}

func accounts(r *rand.Rand) []string {
	a := make([]string, 100)
	for i := range a {
		a[i] = sid(r, "AC")
	}
	return a
}

func sid(r *rand.Rand, prefix string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 34)
	copy(b, prefix)
	x, y := r.Uint64(), r.Uint64()
	for i := range 16 {
		b[2+i] = hex[x>>(4*i)&0xf]
		b[18+i] = hex[y>>(4*i)&0xf]
	}
	return string(b)
}

var smsBody = strings.Repeat("Your verification code is 123456. ", 4)

func baseEvent(acct, msg string, now time.Time) postflight.Event {
	return postflight.Event{
		EventID: "4f1c2f1e-8a3b-4c7e-9d2a-0b1c2d3e4f50", AccountSID: acct, MessageSID: msg,
		Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: "+15550001111", To: "+15550002222", Body: &smsBody, NumSegments: 1,
		DateCreated: now.Add(-time.Minute), EventTime: now,
	}
}

func emitEvent(ev *postflight.Event, schemaID uint32, emit func(string, []byte)) error {
	v, err := ingest.Encode(schemaID, ev)
	if err != nil {
		return err
	}
	emit(ev.MessageSID, v)
	return nil
}

func generateNew(r *rand.Rand, _ uint64, now time.Time, n int, emit func(string, []byte)) (Stats, error) {
	acc := accounts(r)
	for i := range n {
		ev := baseEvent(acc[i%len(acc)], sid(r, "SM"), now)
		ev.Sequence, ev.Status = 5, postflight.StatusDelivered
		if err := emitEvent(&ev, ingest.SchemaIDv2, emit); err != nil {
			return Stats{}, err
		}
	}
	return Stats{Events: n, Messages: n, Final: n, Finals: n}, nil
}

// statusWindow is how many messages have events outstanding at once in the
// status stream.
const statusWindow = 64

func generateStatus(r *rand.Rand, _ uint64, now time.Time, n int, emit func(string, []byte)) (Stats, error) {
	acc := accounts(r)
	var st Stats
	type pending struct{ events []postflight.Event }
	var active []*pending
	var late lateQueue // reads and redeliveries, by when they are due
	newMessage := func() *pending {
		st.Messages++
		base := baseEvent(acc[r.IntN(len(acc))], sid(r, "SM"), now)
		k := 2 + r.IntN(3) // 2–4 events
		var statuses []postflight.Status
		prog := []postflight.Status{postflight.StatusQueued, postflight.StatusSending, postflight.StatusSent}
		switch u := r.Float64(); {
		case u < 0.05: // never final
			statuses = prog[:min(k, len(prog))]
		case u < 0.35: // delivered, then read
			statuses = append(append(statuses, prog[len(prog)-max(0, k-2):]...), postflight.StatusDelivered, postflight.StatusRead)
			st.Final++
			st.Finals += 2
		default:
			statuses = append(append(statuses, prog[len(prog)-(k-1):]...), postflight.StatusDelivered)
			st.Final++
			st.Finals++
		}
		p := &pending{}
		var all []postflight.Event
		for i, s := range statuses {
			ev := base
			ev.Sequence, ev.Status = int64(i+1), s
			ev.EventTime = now.Add(time.Duration(i) * time.Second)
			all = append(all, ev)
			if s == postflight.StatusRead {
				heap.Push(&late, lateEvent{due: st.Events + lateBy(r, n), ev: ev})
			} else {
				p.events = append(p.events, ev)
			}
		}
		for i := 1; i < len(p.events); i++ { // reorder adjacent events
			if r.Float64() < 0.2 {
				p.events[i], p.events[i-1] = p.events[i-1], p.events[i]
			}
		}
		if r.Float64() < 0.05 { // a redelivered event, sent after the others
			heap.Push(&late, lateEvent{due: st.Events + lateBy(r, n), ev: all[r.IntN(len(all))]})
		}
		return p
	}
	for st.Events < n {
		if len(late) > 0 && late[0].due <= st.Events {
			e := heap.Pop(&late).(lateEvent)
			if err := emitEvent(&e.ev, ingest.SchemaIDv2, emit); err != nil {
				return st, err
			}
			st.Events++
			continue
		}
		for len(active) < statusWindow {
			active = append(active, newMessage())
		}
		j := r.IntN(len(active))
		p := active[j]
		if err := emitEvent(&p.events[0], ingest.SchemaIDv2, emit); err != nil {
			return st, err
		}
		st.Events++
		if p.events = p.events[1:]; len(p.events) == 0 {
			active[j] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
	return st, nil
}

// lateBy is how many events after its message's first final event a read
// or a redelivery comes.
func lateBy(r *rand.Rand, n int) int { return n/3 + r.IntN(n/3+1) }

type lateEvent struct {
	due int // the event count at which it is sent
	ev  postflight.Event
}

// lateQueue is a min-heap of events by due.
type lateQueue []lateEvent

func (q lateQueue) Len() int           { return len(q) }
func (q lateQueue) Less(i, j int) bool { return q[i].due < q[j].due }
func (q lateQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *lateQueue) Push(x any)        { *q = append(*q, x.(lateEvent)) }
func (q *lateQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func generateMix(seed, salt uint64, now time.Time, n int, emit func(string, []byte)) (Stats, error) {
	g, err := loadtest.NewGenerator(loadtest.GeneratorConfig{
		Seed: seed, RunID: salt, Accounts: 1000, TopShare: 0.1, EventsPerMessage: 1, ItemBytes: 1000,
	})
	if err != nil {
		return Stats{}, err
	}
	created := now.Add(-time.Minute)
	for i := range n {
		p := g.Message(int64(i), created)
		e := p.Emissions[p.Winner]
		if err := emitEvent(e.Event, e.SchemaID, emit); err != nil {
			return Stats{}, err
		}
	}
	return Stats{Events: n, Messages: n, Final: n, Finals: n}, nil
}

// Sum returns the sum of the /metrics samples whose line starts with
// prefix (a metric name, optionally with the start of its labels).
func Sum(metrics []byte, prefix string) float64 {
	var n float64
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, prefix) {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				v, _ := strconv.ParseFloat(line[i+1:], 64)
				n += v
			}
		}
	}
	return n
}

// WriteUnitsPerStored returns the write units billed per final state the
// store applied, base table and index together, from /metrics text (0 when
// nothing was billed: DynamoDB Local reports no capacity).
func WriteUnitsPerStored(metrics []byte) float64 {
	applied := Sum(metrics, `postflight_store_writes_total{outcome="applied"}`)
	if applied == 0 {
		return 0
	}
	return Sum(metrics, "postflight_store_write_units_total{") / applied
}

// Settled returns the records a serving process has settled, from its
// Prometheus /metrics text: final events with a write outcome plus
// non-final events counted and skipped. (Dead-lettered records are not in
// these workloads.)
func Settled(metrics []byte) int64 {
	var n float64
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "postflight_ingest_outcomes_total{") ||
			strings.HasPrefix(line, `postflight_ingest_records_total{result="non_final"}`) {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				v, _ := strconv.ParseFloat(line[i+1:], 64)
				n += v
			}
		}
	}
	return int64(n)
}
