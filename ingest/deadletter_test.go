package ingest_test

// Bad-input tests of issue 4 (test 5): poison events among good ones go to
// the dead-letter topic with their reason and source, and a dead-letter topic
// that cannot be written stops progress rather than dropping an event.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
)

// poison is one bad record and the words its dead-letter reason must hold.
type poison struct {
	name   string
	rec    *sarama.ProducerMessage
	reason string
}

// poisonRecords returns one record of every kind of bad input: unframed
// bytes, an empty value, an unknown schema ID, truncated Avro, invalid SIDs,
// negative counts, a far-future date_created, and an event whose item is
// over DynamoDB's 400 KB limit even compressed (rejected by the store, not
// the decoder).
func poisonRecords(t *testing.T) []poison {
	t.Helper()
	account := randomSID("AC")
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	ev := func(mod func(*postflight.Event)) *postflight.Event {
		e := newEvent(account, randomSID("SM"), 3, postflight.StatusDelivered, created)
		mod(e)
		return e
	}
	raw := func(key string, value []byte) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: eventsTopic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}
	}
	good := record(t, ev(func(*postflight.Event) {}), ingest.SchemaIDv2)
	goodValue, _ := good.Value.Encode()
	unknownSchema := bytes.Clone(goodValue)
	unknownSchema[4] = 99
	big := incompressible(600 << 10)
	return []poison{
		{"unframed", raw("junk", []byte(`{"not":"avro"}`)), "not Confluent wire framing"},
		{"empty", raw("empty", nil), "not Confluent wire framing"},
		{"unknown schema", raw(string(good.Key.(sarama.StringEncoder)), unknownSchema), "unknown schema id 99"},
		{"truncated", raw(string(good.Key.(sarama.StringEncoder)), goodValue[:len(goodValue)-12]), "truncated"},
		{"bad message sid", record(t, ev(func(e *postflight.Event) { e.MessageSID = "SMnot-a-sid" }), ingest.SchemaIDv2), "message_sid"},
		{"bad account sid", record(t, ev(func(e *postflight.Event) { e.AccountSID = "AC" + strings.Repeat("Z", 32) }), ingest.SchemaIDv2), "account_sid"},
		{"negative segments", record(t, ev(func(e *postflight.Event) { e.NumSegments = -1 }), ingest.SchemaIDv2), "num_segments"},
		{"negative media", record(t, ev(func(e *postflight.Event) { e.NumMedia = -4 }), ingest.SchemaIDv2), "num_media"},
		{"future date_created", record(t, ev(func(e *postflight.Event) {
			e.DateCreated = time.Now().UTC().Add(48 * time.Hour).Truncate(time.Millisecond)
			e.EventTime = e.DateCreated
		}), ingest.SchemaIDv2), "date_created"},
		{"item over 400 KB", record(t, ev(func(e *postflight.Event) { e.Body = &big }), ingest.SchemaIDv2), "exceeds"},
	}
}

// TestPoisonEventsAreDeadLettered (issue 4, test 5): poison records spread
// through a good stream each reach the dead-letter topic once, with the
// original key and value, the reason (naming what is wrong) and the source
// topic/partition/offset; every good event is stored, and the group commits
// past all of them. On Apache Kafka.
func TestPoisonEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	r := newApacheRig(t, "")
	msgs, evs := genStream(streamOpts{messages: 800, duplicates: 0.1, seed: 5})
	good := records(t, evs)
	bad := poisonRecords(t)
	// Spread the poison through the stream.
	var all []*sarama.ProducerMessage
	step := len(good) / (len(bad) + 1)
	for i, rec := range good {
		all = append(all, rec)
		if k := i / step; i%step == step-1 && k < len(bad) {
			all = append(all, bad[k].rec)
		}
	}
	r.startConsumer("c1", consumerOpts{})
	r.produce(all, nil)
	r.waitCommitted(2 * time.Minute)
	r.verify(msgs)

	dl := r.deadLetters()
	bySource := map[string]deadLetter{}
	for _, d := range dl {
		if _, dup := bySource[d.source]; dup {
			t.Errorf("%s dead-lettered twice", d.source)
		}
		bySource[d.source] = d
	}
	for _, p := range bad {
		src := fmt.Sprintf("%s/%d/%d", r.topic, p.rec.Partition, p.rec.Offset)
		d, ok := bySource[src]
		if !ok {
			t.Errorf("%s (%s): not in the dead-letter topic", p.name, src)
			continue
		}
		delete(bySource, src)
		key, _ := p.rec.Key.Encode()
		var value []byte
		if p.rec.Value != nil {
			value, _ = p.rec.Value.Encode()
		}
		switch {
		case !bytes.Equal(d.key, key):
			t.Errorf("%s: dead letter key %q, want %q", p.name, d.key, key)
		case !bytes.Equal(d.value, value):
			t.Errorf("%s: dead letter value of %d bytes differs from the original's %d", p.name, len(d.value), len(value))
		case !strings.Contains(d.reason, p.reason):
			t.Errorf("%s: reason %q, want it to mention %q", p.name, d.reason, p.reason)
		default:
			t.Logf("%-20s %s: %.110s", p.name, src, d.reason)
		}
	}
	for src, d := range bySource {
		t.Errorf("a good event was dead-lettered: %s: %s", src, d.reason)
	}
}

// TestDeadLetterTopicDownStopsProgress (issue 4, test 5): while the broker
// refuses every write to the dead-letter topic, a poison record's offset is
// never committed, nor any after it on its partition, even once the good
// records after it are stored; the poison is not dropped. When the topic
// accepts writes again, the poison is dead-lettered and the group commits
// everything.
func TestDeadLetterTopicDownStopsProgress(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	refuse := r.kafka.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: dlqTopic,
		Err:   kerr.TopicAuthorizationFailed,
		Count: -1,
	})
	defer refuse.Remove()
	r.startConsumer("c1", consumerOpts{})
	r.waitMembers(1)

	// On partition 0: good records, a poison record, good records.
	msgs, evs := genStream(streamOpts{messages: 60, seed: 7})
	var recs []*sarama.ProducerMessage
	for _, rec := range records(t, evs) {
		rec.Partition = 0
		recs = append(recs, rec)
	}
	bad := &sarama.ProducerMessage{Topic: eventsTopic, Partition: 0, Key: sarama.StringEncoder("junk"), Value: sarama.ByteEncoder("not avro")}
	mid := len(recs) / 2
	recs = append(recs[:mid], append([]*sarama.ProducerMessage{bad}, recs[mid:]...)...)
	r.produce(recs, sarama.NewManualPartitioner)

	// Every good record is stored, those after the poison included, and
	// the dead-letter write has been refused.
	testenv.Eventually(t, time.Minute, "the good records to be stored", func() string {
		missing := 0
		for _, m := range msgs {
			if m.want == nil {
				continue
			}
			if _, err := r.st.Get(t.Context(), m.account, m.sid); err != nil {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Sprintf("%d messages missing", missing)
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := refuse.Wait(ctx, 1); err != nil {
		t.Fatalf("the dead-letter write was never attempted: %v", err)
	}
	// A commit after all that: a good record on partition 1 is committed
	// only by an auto-commit that also carries whatever partition 0 had
	// marked by then.
	canary := record(t, newEvent(randomSID("AC"), randomSID("SM"), 1, postflight.StatusDelivered, time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)), ingest.SchemaIDv2)
	canary.Partition = 1
	r.produce([]*sarama.ProducerMessage{canary}, sarama.NewManualPartitioner)
	testenv.Eventually(t, time.Minute, "the canary on partition 1 to be committed", func() string {
		if c := r.commitOf(1); c <= canary.Offset {
			return fmt.Sprintf("partition 1 committed at %d, canary at %d", c, canary.Offset)
		}
		return ""
	})
	if c := r.commitOf(0); c != bad.Offset {
		t.Errorf("partition 0 committed at %d while its poison record at %d could not be dead-lettered; want exactly %d", c, bad.Offset, bad.Offset)
	}
	if dl := r.deadLetters(); len(dl) > 0 {
		t.Fatalf("the dead-letter topic holds %d records while writes to it are refused", len(dl))
	}
	t.Logf("poison at 0/%d, partition 0 committed at %d, dead-letter writes refused %d times", bad.Offset, r.commitOf(0), refuse.Hits())

	// The topic accepts writes again: the poison goes there, the group
	// commits everything.
	refuse.Remove()
	r.waitCommitted(time.Minute)
	dl := r.deadLetters()
	want := fmt.Sprintf("%s/0/%d", eventsTopic, bad.Offset)
	if len(dl) != 1 || dl[0].source != want || !strings.Contains(dl[0].reason, "framing") || string(dl[0].value) != "not avro" {
		t.Fatalf("dead letters %+v, want the poison from %s", dl, want)
	}
}

// incompressible returns n bytes of random printable ASCII: DEFLATE saves
// less than a fifth of it.
func incompressible(n int) string {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('!' + r.IntN(94))
	}
	return string(b)
}
