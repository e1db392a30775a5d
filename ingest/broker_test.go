package ingest_test

// Drills only a real broker allows (issue 13): Apache Kafka killed with
// SIGKILL and restarted on its own log. Each asserts nothing lost or stale
// (verify), no committed offset that moves backwards or passes a record
// that was not written, and the group drained to the log end.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
)

// newOwnApacheRig is newRig on a broker of the test's own, which it may
// kill and restart.
func newOwnApacheRig(t *testing.T) *rig {
	t.Helper()
	k := testenv.OwnApacheKafka(t)
	k.CreateTopic(t, eventsTopic, apachePartitions)
	k.CreateTopic(t, dlqTopic, apachePartitions)
	return newRigOn(t, "", &rig{brokers: k.Addrs(), apache: k, topic: eventsTopic, dlq: dlqTopic})
}

// commitWatch polls the group's committed offsets until stopped and
// records every time one moved backwards.
type commitWatch struct {
	r      *rig
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	last      map[int32]int64
	backwards []string
	polls     int
}

func (r *rig) watchCommits() *commitWatch {
	ctx, cancel := context.WithCancel(r.t.Context())
	w := &commitWatch{r: r, cancel: cancel, done: make(chan struct{}), last: map[int32]int64{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if c, err := r.tryCommits(ctx); err == nil {
				w.observe(c)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	r.t.Cleanup(w.stop)
	return w
}

func (w *commitWatch) observe(c map[int32]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	for p, off := range c {
		if prev, ok := w.last[p]; ok && off < prev {
			w.backwards = append(w.backwards, fmt.Sprintf("partition %d: %d after %d", p, off, prev))
		}
		w.last[p] = max(w.last[p], off)
	}
}

func (w *commitWatch) stop() {
	w.cancel()
	<-w.done
}

// check stops the watch and fails the test if a commit moved backwards.
func (w *commitWatch) check(t *testing.T) {
	t.Helper()
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.backwards) > 0 {
		t.Errorf("the group's committed offset moved backwards %d times: %v", len(w.backwards), w.backwards[:min(len(w.backwards), 10)])
	}
	t.Logf("watched the committed offsets %d times", w.polls)
}

// expectCommitsWritten fails if a final record below the group's committed
// offset of its partition was never settled by any of the writers (at its
// sequence or a higher one): a commit passed an unwritten record.
func (r *rig) expectCommitsWritten(recs []*sarama.ProducerMessage, evs []*postflight.Event, commits map[int32]int64, writers ...*recordingWriter) {
	r.t.Helper()
	highest := map[string]int64{}
	for _, w := range writers {
		for k, seqs := range w.settled() {
			highest[k] = max(highest[k], slices.Max(seqs))
		}
	}
	unwritten := 0
	for i, rec := range recs {
		ev := evs[i]
		if !ev.Status.IsFinal() || rec.Offset >= commits[rec.Partition] {
			continue
		}
		if s, ok := highest[ev.AccountSID+ev.MessageSID]; !ok || s < ev.Sequence {
			if unwritten++; unwritten <= 5 {
				r.t.Errorf("%s/%d/%d (%s seq %d) is below the committed offset %d but was never written",
					r.topic, rec.Partition, rec.Offset, ev.MessageSID, ev.Sequence, commits[rec.Partition])
			}
		}
	}
}

// expectDrainedPerKafka runs Kafka's own consumer-groups tool (from the
// fetched jars) and fails unless it shows every partition of the events
// topic committed at its log end, lag 0: the independent witness.
func (r *rig) expectDrainedPerKafka() {
	r.t.Helper()
	rows := r.apache.DescribeGroup(r.t, r.group)
	hw := r.highWatermarks(r.topic)
	seen := 0
	for _, row := range rows {
		if row.Topic != r.topic {
			continue
		}
		seen++
		if row.Lag != 0 || row.CommittedOffset != hw[row.Partition] {
			r.t.Errorf("kafka-consumer-groups: %s/%d committed %d, log end %d, lag %d; want lag 0 at %d",
				row.Topic, row.Partition, row.CommittedOffset, row.LogEndOffset, row.Lag, hw[row.Partition])
		}
	}
	if seen != len(hw) {
		r.t.Errorf("kafka-consumer-groups shows %d partitions of %s, want %d: %+v", seen, r.topic, len(hw), rows)
	}
}

// deleteStored deletes (tombstones) up to n messages whose winning event is
// already stored, marks them deleted in msgs, and returns their keys.
func (r *rig) deleteStored(msgs []*msgSpec, n int) map[string]bool {
	r.t.Helper()
	deleted := map[string]bool{}
	for _, m := range msgs {
		if len(deleted) == n {
			break
		}
		if m.want == nil {
			continue
		}
		got, err := r.st.Get(r.t.Context(), m.account, m.sid)
		if err != nil || got.Sequence != m.want.Sequence {
			continue
		}
		if err := r.st.Delete(r.t.Context(), m.account, m.sid); err != nil {
			r.t.Fatalf("delete %s: %v", m.sid, err)
		}
		m.want, m.deleted = nil, true
		deleted[m.key()] = true
	}
	if len(deleted) == 0 {
		r.t.Fatal("no message stored yet to delete: the test proves nothing")
	}
	return deleted
}

// TestBrokerKilledAndRestartedOnItsLog (issue 13): Apache Kafka is killed
// with SIGKILL while a consumer has a backlog in flight, stays down 10 s and
// is started again on the same log directory and ports. Ingest resumes by
// itself (the time from the broker's return to the group's next commit is
// logged), the group never commits backwards nor past an unwritten record,
// drains to the log end (Kafka's consumer-groups tool agrees: lag 0), and
// every message is stored exactly as its winning event says: none lost,
// none stale, and none of the 20 deleted before the kill resurrected by the
// records read again after it or by a replay of all their events.
func TestBrokerKilledAndRestartedOnItsLog(t *testing.T) {
	t.Parallel()
	r := newOwnApacheRig(t)
	msgs, evs := genStream(streamOpts{messages: 1500, duplicates: 0.1, seed: 13})
	recs := records(t, evs)
	// DynamoDB answering in 20 ms and a 1 MB pending bound keep a backlog
	// in Kafka and records in flight when the broker dies.
	px := startProxy(t, r.ddb)
	px.SetLatency(20 * time.Millisecond)
	c := r.startConsumer("c1", consumerOpts{endpoint: px.URL(), cfg: ingest.Config{MaxPendingMB: 1, MaxConcurrency: 4}})
	watch := r.watchCommits()
	third, twoThirds := len(recs)/3, len(recs)*2/3
	r.produce(recs[:third], nil)
	waitCommittedAtLeast(t, r, int64(third)/3)
	deleted := r.deleteStored(msgs, 20)
	// A third more just before the kill: a backlog the broker dies with.
	r.produce(recs[third:twoThirds], nil)

	before := r.commits()
	r.apache.Kill(t)
	killed := time.Now()
	t.Logf("killed the broker at %v committed", before)
	// Down 10 s: what the drill is about, not a wait for something.
	select {
	case <-time.After(10 * time.Second):
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	r.apache.Restart(t)
	back := time.Now()
	t.Logf("broker back %s after the kill", back.Sub(killed).Round(time.Millisecond))

	var doneAtReturn int64
	if d, total := r.committed(); d == total {
		t.Fatalf("everything was committed when the broker came back: the test proves nothing")
	} else {
		doneAtReturn = d
	}
	testenv.Eventually(t, 2*time.Minute, "ingest to commit again after the broker's return", func() string {
		if d, _ := r.committed(); d <= doneAtReturn {
			return fmt.Sprintf("%d committed", d)
		}
		return ""
	})
	t.Logf("ingest committed again %s after the broker's return (measured)", time.Since(back).Round(time.Millisecond))

	r.produce(recs[twoThirds:], nil)
	// Replay every event of the deleted messages: none may come back.
	var replay []*sarama.ProducerMessage
	for i, ev := range evs {
		if deleted[ev.AccountSID+ev.MessageSID] {
			replay = append(replay, recs[i])
		}
	}
	r.produce(replay, nil)
	r.waitCommitted(3 * time.Minute)
	if err := c.stop(); err != nil {
		t.Errorf("c1: %v", err)
	}
	watch.check(t)
	commits := r.commits()
	for p, hw := range r.highWatermarks(r.topic) {
		if commits[p] != hw {
			t.Errorf("partition %d: committed %d, log end %d", p, commits[p], hw)
		}
	}
	r.expectCommitsWritten(recs, evs, commits, c.w)
	r.verify(msgs)
	r.expectNoDeadLetters()
	r.expectDrainedPerKafka()
}

// TestConsumerFencedAfterSessionTimeout (issue 13): a consumer process
// holding partitions, with writes in flight to a slow DynamoDB, is frozen
// (SIGSTOP: no heartbeats, as in a long GC pause or a stalled VM) past its
// session timeout. The real coordinator expires it and gives its partitions
// to a second consumer, which makes progress; then the first is thawed
// (SIGCONT) and finishes its late writes and tries its late commits. The
// group's committed offsets never move backwards, the group drains to the
// log end, and every message ends as its winning event says (the late
// writes of older events lose to the store's conditions). The thawed
// consumer's commits are refused (UNKNOWN_MEMBER_ID) while it drains.
func TestConsumerFencedAfterSessionTimeout(t *testing.T) {
	t.Parallel()
	r := newApacheRig(t, "")
	msgs, evs := genStream(streamOpts{messages: 1500, duplicates: 0.1, seed: 14})
	recs := records(t, evs)
	px := startProxy(t, r.ddb)
	px.SetLatency(20 * time.Millisecond)
	slow := childConfig{Endpoint: px.URL(), MaxConcurrency: 4, MaxPendingMB: 1}
	watch := r.watchCommits()
	r.produce(recs, nil)
	first := r.startChildWith("consumer-1", slow)
	waitCommittedAtLeast(t, r, int64(len(recs))/6)

	if err := first.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	atStop, total := r.committed()
	if atStop == total {
		t.Fatalf("everything was committed when consumer-1 froze: the test proves nothing")
	}
	t.Logf("froze consumer-1 at %d of %d records committed", atStop, total)
	second := r.startChildWith("consumer-2", slow)
	testenv.Eventually(t, 2*time.Minute, "consumer-2 to take over and commit", func() string {
		if d, _ := r.committed(); d < atStop+int64(len(recs))/10 {
			return fmt.Sprintf("%d committed", d)
		}
		return ""
	})
	t.Logf("consumer-2 took over and committed %s after consumer-1 froze", time.Since(stopped).Round(time.Millisecond))

	if err := first.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	px.SetLatency(0)
	r.waitCommitted(3 * time.Minute)
	for _, c := range []*child{first, second} {
		if err := c.stop(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// The coordinator fenced it: its late commits were refused with
	// UNKNOWN_MEMBER_ID (sarama's text for it).
	if !strings.Contains(first.stderr.String(), "not known in the current generation") {
		t.Errorf("consumer-1's late commits were not refused as from an unknown member; its stderr:\n%s", first.stderr.String())
	}
	watch.check(t)
	commits := r.commits()
	for p, hw := range r.highWatermarks(r.topic) {
		if commits[p] != hw {
			t.Errorf("partition %d: committed %d, log end %d", p, commits[p], hw)
		}
	}
	r.verify(msgs)
	r.expectNoDeadLetters()
}

// TestPartitionsAddedWhileRunning (issue 13): two consumers share a topic of
// four partitions; partitions are added to the topic (eight in all) while
// they run, and records keyed onto the new ones are consumed too: the group
// notices the new count (sarama checks it at every metadata refresh, each
// minute) and rebalances, and drains every partition to its log end.
func TestPartitionsAddedWhileRunning(t *testing.T) {
	t.Parallel()
	r := newApacheRigWith(t, "", 4)
	msgs, evs := genStream(streamOpts{messages: 1000, seed: 15})
	recs := records(t, evs)
	watch := r.watchCommits()
	a := r.startConsumer("a", consumerOpts{})
	b := r.startConsumer("b", consumerOpts{})
	half := len(recs) / 2
	r.produce(recs[:half], nil)
	r.waitCommitted(2 * time.Minute)

	r.apache.AddPartitions(t, r.topic, 8)
	added := time.Now()
	// A new producer hashes keys over all eight partitions.
	r.produce(recs[half:], nil)
	onNew := 0
	for _, rec := range recs[half:] {
		if rec.Partition >= 4 {
			onNew++
		}
	}
	if onNew == 0 {
		t.Fatal("no record went to a new partition: the test proves nothing")
	}
	r.waitCommitted(4 * time.Minute)
	t.Logf("%d records on the new partitions; all committed %s after the partitions were added",
		onNew, time.Since(added).Round(time.Millisecond))
	for _, c := range []*consumer{a, b} {
		if err := c.stop(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	watch.check(t)
	commits := r.commits()
	hws := r.highWatermarks(r.topic)
	if len(hws) != 8 {
		t.Fatalf("the topic has %d partitions, want 8", len(hws))
	}
	for p, hw := range hws {
		if commits[p] != hw {
			t.Errorf("partition %d: committed %d, log end %d", p, commits[p], hw)
		}
	}
	r.expectCommitsWritten(recs, evs, commits, a.w, b.w)
	r.verify(msgs)
	r.expectNoDeadLetters()
}
