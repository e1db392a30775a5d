package ingest_test

// Issue 11, item 1: a dead letter the dead-letter topic cannot take (over the
// producer's limit, or over the topic's max.message.bytes) must cost one
// truncated dead letter, not the whole of ingest.
//
// It runs on the real Apache Kafka broker: the topic's max.message.bytes is
// enforced by the broker itself, and sarama's producer limit by sarama.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
)

func TestOversizedDeadLetterDoesNotStopIngest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		dlqLimit int // the dead-letter topic's max.message.bytes (0: the broker's default, ~1 MiB)
		value    int // the poison record's value size
		maxKept  int // most value bytes the truncated dead letter may keep
	}{
		// Over sarama's own limit: refused before it reaches the broker.
		{name: "over the producer limit", value: 2 << 20, maxKept: 1_000_000},
		// Under ours, over the topic's: the broker refuses it.
		{name: "over the topic limit", dlqLimit: 64 << 10, value: 300 << 10, maxKept: 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newApacheRig(t, "")
			setTopicConfig(t, r.brokers, r.topic, "max.message.bytes", strconv.Itoa(8<<20))
			if tc.dlqLimit > 0 {
				setTopicConfig(t, r.brokers, r.dlq, "max.message.bytes", strconv.Itoa(tc.dlqLimit))
			}
			r.startConsumer("c1", consumerOpts{})

			// Partition 0: good records, the poison (framed, schema 2,
			// then garbage), good records.
			msgs, evs := genStream(streamOpts{messages: 40, seed: 11})
			var recs []*sarama.ProducerMessage
			for _, rec := range records(t, evs) {
				rec.Topic, rec.Partition = r.topic, 0
				recs = append(recs, rec)
			}
			value := append([]byte{0, 0, 0, 0, 2}, bytes.Repeat([]byte{0xff}, tc.value-5)...)
			bad := &sarama.ProducerMessage{Topic: r.topic, Partition: 0, Key: sarama.StringEncoder("huge"), Value: sarama.ByteEncoder(value)}
			mid := len(recs) / 2
			recs = append(recs[:mid], append([]*sarama.ProducerMessage{bad}, recs[mid:]...)...)
			bigRecords(t, r.brokers, recs)

			testenv.Eventually(t, 2*time.Minute, "the group to commit past the oversized poison", func() string {
				done, total, err := groupProgress(r.brokers, r.group, r.topic)
				switch {
				case err != nil:
					return "the group's offsets: " + err.Error()
				case done == total:
					return ""
				}
				return fmt.Sprintf("%d of %d records committed", done, total)
			})
			r.verify(msgs)
			dl := r.deadLetters()
			want := fmt.Sprintf("%s/0/%d", r.topic, bad.Offset)
			if len(dl) != 1 || dl[0].source != want {
				t.Fatalf("dead letters %d (%+v), want one from %s", len(dl), dl, want)
			}
			d := dl[0]
			if got := d.headers[ingest.HeaderTruncated]; got != strconv.Itoa(len(value)) {
				t.Errorf("%s header %q, want the original value size %d", ingest.HeaderTruncated, got, len(value))
			}
			if len(d.value) > tc.maxKept || !bytes.HasPrefix(value, d.value) {
				t.Errorf("dead letter keeps %d value bytes (at most %d, a prefix of the original)", len(d.value), tc.maxKept)
			}
			if string(d.key) != "huge" || !strings.Contains(d.reason, "schema id 2") && !strings.Contains(d.reason, "exceeds") {
				t.Errorf("dead letter key %q, reason %q", d.key, d.reason)
			}
			t.Logf("dead letter from %s: %d of %d value bytes, reason %q", d.source, len(d.value), len(value), d.reason)
		})
	}
}

// setTopicConfig sets one topic config through the Kafka admin API.
func setTopicConfig(t *testing.T, brokers []string, topic, name, value string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	adm, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.AlterConfig(sarama.TopicResource, topic, map[string]*string{name: &value}, false); err != nil {
		t.Fatalf("set %s=%s on %s: %v", name, value, topic, err)
	}
}

// bigRecords produces recs (each with its Partition set) with a producer
// that takes records up to 8 MiB, and fills in their offsets.
func bigRecords(t *testing.T, brokers []string, recs []*sarama.ProducerMessage) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.MaxMessageBytes = 8 << 20
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(recs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// groupProgress returns the records group has committed on topic and the
// records in it, summed over partitions, asking the broker (ListOffsets,
// OffsetFetch) as any Kafka client would. An error is the broker's answer
// for now (a coordinator still loading offsets, say): ask again.
func groupProgress(brokers []string, group, topic string) (done, total int64, err error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cl, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return 0, 0, err
	}
	parts, err := cl.Partitions(topic)
	if err != nil {
		return 0, 0, err
	}
	offs, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return 0, 0, err
	}
	if offs.Err != sarama.ErrNoError {
		return 0, 0, offs.Err
	}
	for _, p := range parts {
		hwm, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, 0, err
		}
		total += hwm
		if b := offs.GetBlock(topic, p); b != nil && b.Offset > 0 {
			done += min(b.Offset, hwm)
		}
	}
	return done, total, nil
}
