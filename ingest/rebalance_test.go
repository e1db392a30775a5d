package ingest_test

// Ordering and group-membership tests of issue 4: the highest sequence wins
// whatever the order, duplication, producer or partition of a message's
// events, and consumers joining and leaving a group lose nothing and regress
// nothing.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
)

// TestShuffledDuplicatedCrossProducerEvents (issue 4, test 4): events are
// shuffled, a quarter of them duplicated, and split between two producers,
// one keying by message SID and one spreading records round-robin, so one
// message's events land on several partitions and two consumers of the group
// write them concurrently. Every message must end at its highest final
// sequence, and the store must never report an older event Applied after a
// newer one.
func TestShuffledDuplicatedCrossProducerEvents(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	msgs, evs := genStream(streamOpts{messages: 1500, shuffle: true, duplicates: 0.25, seed: 4})
	var byKey, roundRobin []*sarama.ProducerMessage
	for i, rec := range records(t, evs) {
		if i%2 == 0 {
			byKey = append(byKey, rec)
		} else {
			roundRobin = append(roundRobin, rec)
		}
	}
	r.startConsumer("c1", consumerOpts{})
	r.startConsumer("c2", consumerOpts{})
	r.waitMembers(2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.produce(roundRobin, sarama.NewRoundRobinPartitioner)
	}()
	r.produce(byKey, nil)
	<-done

	// The round-robin producer really did split messages across partitions.
	parts := map[string]map[int32]bool{}
	for _, rec := range append(byKey, roundRobin...) {
		k := string(rec.Key.(sarama.StringEncoder))
		if parts[k] == nil {
			parts[k] = map[int32]bool{}
		}
		parts[k][rec.Partition] = true
	}
	split := 0
	for _, ps := range parts {
		if len(ps) > 1 {
			split++
		}
	}
	if split < len(msgs)/2 {
		t.Fatalf("only %d of %d messages have events on more than one partition", split, len(msgs))
	}

	r.waitCommitted(2 * time.Minute)
	r.verify(msgs)
	r.expectNoDeadLetters()
	if n := r.ledger.outcome(postflight.Superseded); n == 0 {
		t.Errorf("no write was superseded: the stream did not exercise the conditional writes")
	}
	t.Logf("%d messages (%d split across partitions), %d records; outcomes applied %d, superseded %d",
		len(msgs), split, len(evs), r.ledger.outcome(postflight.Applied), r.ledger.outcome(postflight.Superseded))
}

// TestConsumersLeaveAndJoinMidStream (issue 4, test 3): three consumers share
// a group; mid-stream one leaves (a clean shutdown: it drains and commits
// before its partitions move) and later a fourth joins. Nothing may be lost,
// no message may end below its highest final sequence, and no write may
// regress one. On Apache Kafka: the real coordinator runs the rebalances.
func TestConsumersLeaveAndJoinMidStream(t *testing.T) {
	t.Parallel()
	r := newApacheRig(t, "")
	msgs, evs := genStream(streamOpts{messages: 2000, duplicates: 0.1, seed: 3})
	recs := records(t, evs)
	// A DynamoDB that takes 20ms per request, and a 1 MB pending bound,
	// keep the backlog in Kafka: every member has work at each rebalance.
	px := startProxy(t, r.ddb)
	px.SetLatency(20 * time.Millisecond)
	o := consumerOpts{endpoint: px.URL(), cfg: ingest.Config{MaxPendingMB: 1, MaxConcurrency: 4}}
	cs := []*consumer{r.startConsumer("c1", o), r.startConsumer("c2", o), r.startConsumer("c3", o)}
	r.waitMembers(3)
	half, quarter := len(recs)/2, len(recs)/4
	r.produce(recs[:half], nil)
	waitWrites(t, cs[1], 5)

	// c2 leaves while records are in flight, and more keep coming.
	done, total := r.committed()
	if done == total {
		t.Fatalf("everything was committed before c2 left: the test proves nothing")
	}
	t.Logf("c2 leaves at %d of %d records committed", done, total)
	left := make(chan error, 1)
	go func() { left <- cs[1].stop() }()
	r.produce(recs[half:half+quarter], nil)
	if err := <-left; err != nil {
		t.Fatalf("c2 left with %v", err)
	}

	// c4 joins while records are in flight, and more keep coming.
	done, total = r.committed()
	t.Logf("c4 joins at %d of %d records committed", done, total)
	c4 := r.startConsumer("c4", o)
	r.produce(recs[half+quarter:], nil)
	waitWrites(t, c4, 1)
	done, total = r.committed()
	t.Logf("c4 wrote its first batch at %d of %d records committed", done, total)
	r.waitCommitted(2 * time.Minute)
	r.verify(msgs)
	r.expectNoDeadLetters()
	for _, c := range append(cs, c4) {
		t.Logf("%s settled %d messages in %d batches", c.name, len(c.w.settled()), c.w.batches.Load())
	}
}

// waitCommittedAtLeast waits until the group has committed n records.
func waitCommittedAtLeast(t *testing.T, r *rig, n int64) {
	t.Helper()
	testenv.Eventually(t, time.Minute, fmt.Sprintf("%d records committed", n), func() string {
		if done, total := r.committed(); done < n {
			return fmt.Sprintf("%d of %d committed", done, total)
		}
		return ""
	})
}

// waitWrites waits until consumer c has written n batches.
func waitWrites(t *testing.T, c *consumer, n int64) {
	t.Helper()
	testenv.Eventually(t, time.Minute, fmt.Sprintf("%s to write %d batches", c.name, n), func() string {
		if got := c.w.batches.Load(); got < n {
			return fmt.Sprintf("%d batches", got)
		}
		return ""
	})
}

// startProxy starts a fault proxy in front of endpoint for the test.
func startProxy(t *testing.T, endpoint string) *faultproxy.Proxy {
	t.Helper()
	px, err := faultproxy.Start(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	return px
}

// TestRebalanceAndShutdownCommitOnlyWhatIsWritten: offsets are committed only
// after the writes they cover, and a rebalance or a clean shutdown drains
// in-flight writes and commits before partitions move. DynamoDB answers
// slowly (a proxy adds 250ms per request, one request at a time) so that
// consumer a has records read and not yet written when b joins (a gives up
// partitions) and when a shuts down (b takes over the rest); 3 KB bodies
// keep what is pending (MaxPendingMB 1) small: about 3s of writes on an idle
// machine. DrainTimeout (45s here) is far above that, because what is tested
// is what gets committed, not how fast DynamoDB Local answers: with 8s, a
// fresh-clone CI run at load average 30 ran out of drain time and wrote 59
// records twice. A drain ends as soon as its writes do. Then:
//   - at any moment, every final record below a committed offset has been
//     written (checked after a's shutdown, while b is still writing);
//   - b re-reads nothing a wrote: no (message, sequence) is written by both,
//     so a committed exactly what it had written when it let go;
//   - nothing is lost;
//   - no drain runs out of time.
func TestRebalanceAndShutdownCommitOnlyWhatIsWritten(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	px := startProxy(t, r.ddb)
	px.SetLatency(250 * time.Millisecond)
	msgs, evs := genStream(streamOpts{messages: 1200, seed: 8, bodyBytes: 3000})
	recs := records(t, evs)
	o := consumerOpts{endpoint: px.URL(), cfg: ingest.Config{MaxConcurrency: 1, MaxPendingMB: 1, DrainTimeout: 45 * time.Second}}
	a := r.startConsumer("a", o)
	t0 := time.Now()
	r.produce(recs, nil)
	waitWrites(t, a, 10)
	t.Logf("%s: a wrote 10 batches", time.Since(t0))

	b := r.startConsumer("b", o)
	r.waitMembers(2)
	t.Logf("%s: b joined", time.Since(t0))
	waitWrites(t, b, 2)
	t.Logf("%s: b wrote 2 batches", time.Since(t0))
	if err := a.stop(); err != nil {
		t.Fatalf("a shut down with %v", err)
	}
	done, total := r.committed()
	if done == total {
		t.Fatalf("everything was committed when a shut down: the test proves nothing")
	}
	t.Logf("%s: a shut down at %d of %d records committed", time.Since(t0), done, total)

	// Every final record below the committed offsets is written (by a or
	// by b): a record counts as written once some writer settled its
	// message at its sequence or a higher one.
	commits := r.commits()
	highest := map[string]int64{}
	for _, w := range []*recordingWriter{a.w, b.w} {
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
				t.Errorf("%s/%d/%d (%s seq %d) is below the committed offset %d but was never written",
					r.topic, rec.Partition, rec.Offset, ev.MessageSID, ev.Sequence, commits[rec.Partition])
			}
		}
	}

	px.SetLatency(0)
	r.waitCommitted(2 * time.Minute)
	r.verify(msgs)
	aw, bw := a.w.settled(), b.w.settled()
	var both []string
	for k, seqs := range bw {
		for _, s := range seqs {
			if slices.Contains(aw[k], s) {
				both = append(both, fmt.Sprintf("%s seq %d", k[len(k)-34:], s))
			}
		}
	}
	if len(both) > 0 {
		t.Errorf("%d records were written by a and again by b (offsets committed late, or not drained before the partitions moved): %v",
			len(both), both[:min(len(both), 10)])
	}
	t.Logf("a wrote %d messages, b %d", len(aw), len(bw))
	// A drain that runs out of time leaves records to be read again: with
	// this little pending, it never should.
	if late := r.logs.find("drain deadline passed; unfinished records will be read again by the next owner", ""); len(late) > 0 {
		t.Errorf("%d claims ran out of drain time (DrainTimeout %s), e.g. %v", len(late), o.cfg.DrainTimeout, late[0].attrs)
	}
}
