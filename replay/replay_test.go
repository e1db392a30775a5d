package replay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/hamba/avro/v2"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/replay"
	"github.com/postflight/postflight/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	topic = "message-events"
	dlq   = "message-events.dlq"
)

// kafka returns the broker the tests run on: kfake from internal/testenv.
// Only its address is used, so a real broker can stand in.
var kafka = func(t testing.TB) []string {
	addrs, _ := testenv.Kafka(t, topic, dlq)
	return addrs
}

func newStore(t testing.TB) *store.Store {
	t.Helper()
	ep := testenv.DynamoDBEndpoint(t)
	st, err := store.New(testenv.DynamoDBClient(t, ep), store.Config{Table: testenv.TableName(t)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func newClient(t *testing.T, addrs []string) sarama.Client {
	t.Helper()
	c, err := sarama.NewClient(addrs, replay.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func event(account, sid string, seq int64, st postflight.Status, created time.Time) *postflight.Event {
	body := fmt.Sprintf("body %d", seq)
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return &postflight.Event{
		EventID: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], AccountSID: account, MessageSID: sid,
		Sequence: seq, Status: st, Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: "+15550000001", To: "+15550000002", Body: &body, NumSegments: 1,
		DateCreated: created, EventTime: created.Add(time.Duration(seq) * time.Second),
	}
}

// rec is a record of ev framed with schemaID (which need not exist).
func rec(t *testing.T, ev *postflight.Event, schemaID uint32, ts time.Time) *sarama.ProducerMessage {
	t.Helper()
	enc := schemaID
	if enc != ingest.SchemaIDv1 {
		enc = ingest.SchemaIDv2
	}
	v, err := ingest.Encode(enc, ev)
	if err != nil {
		t.Fatal(err)
	}
	v[4] = byte(schemaID)
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(ev.MessageSID), Value: sarama.ByteEncoder(v), Timestamp: ts}
}

func produce(t *testing.T, client sarama.Client, recs ...*sarama.ProducerMessage) {
	t.Helper()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(recs); err != nil {
		t.Fatal(err)
	}
}

func seqOf(t *testing.T, st *store.Store, account, sid string) int64 {
	t.Helper()
	m, err := st.Get(context.Background(), account, sid)
	if err != nil {
		return -1
	}
	return m.Sequence
}

// v2As3 is the fix of the DLQ test: schema ID 3 turns out to be v2.
type v2As3 struct{}

func (v2As3) WriterSchema(ctx context.Context, id uint32) (avro.Schema, error) {
	if id == 3 {
		id = ingest.SchemaIDv2
	}
	return ingest.StaticSchemas{}.WriterSchema(ctx, id)
}

func TestReplay(t *testing.T) {
	addrs := kafka(t)
	client := newClient(t, addrs)
	st := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acc := randomSID("AC")
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	early, late := created, created.Add(30*time.Minute)
	a, b, c, d, e := randomSID("SM"), randomSID("SM"), randomSID("SM"), randomSID("SM"), randomSID("SM")
	produce(t, client,
		rec(t, event(acc, a, 1, postflight.StatusSent, created), 2, early),
		rec(t, event(acc, a, 3, postflight.StatusDelivered, created), 2, early),
		rec(t, event(acc, b, 1, postflight.StatusQueued, created), 2, early),
		rec(t, event(acc, c, 2, postflight.StatusRead, created), 3, early), // unknown schema: dead-lettered
		rec(t, event(acc, d, 4, postflight.StatusRead, created), 1, late),
		rec(t, event(acc, d, 2, postflight.StatusDelivered, created), 2, late),
		rec(t, event(acc, e, 5, postflight.StatusFailed, created), 2, late),
	)
	if err := st.Delete(ctx, acc, e); err != nil { // tombstone: replay must not bring it back
		t.Fatal(err)
	}
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)

	// By time: only the late records.
	var sum replay.Summary
	cfg := replay.Config{Range: replay.Range{Topic: topic, From: replay.Bound{Time: late.Add(-time.Minute)}}}
	if err := replay.Replay(ctx, client, st, dec, cfg, &sum, nil); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(t, st, acc, a); got != -1 {
		t.Fatalf("a is stored (sequence %d), but its records precede --from", got)
	}
	if sum.Read.Load() != 3 || sum.Written.Load() != 1 || sum.Superseded.Load() != 1 || sum.Tombstoned.Load() != 1 {
		t.Fatalf("time range summary %s", summary(&sum))
	}

	// Everything, twice: the second pass writes nothing (idempotent).
	for pass := range 2 {
		var sum replay.Summary
		if err := replay.Replay(ctx, client, st, dec, replay.Config{Range: replay.Range{Topic: topic}}, &sum, nil); err != nil {
			t.Fatal(err)
		}
		written, superseded := int64(1), int64(2) // a; d (4 and 2) was written by the time-range pass
		if pass == 1 {
			written, superseded = 0, 3
		}
		if sum.Read.Load() != 7 || sum.NonFinal.Load() != 2 || sum.DeadLettered.Load() != 1 || sum.Tombstoned.Load() != 1 ||
			sum.Written.Load() != written || sum.Superseded.Load() != superseded || sum.Total != 7 {
			t.Fatalf("pass %d summary %s", pass, summary(&sum))
		}
	}
	for sid, want := range map[string]int64{a: 3, b: -1, c: -1, d: 4, e: -1} {
		if got := seqOf(t, st, acc, sid); got != want {
			t.Errorf("%s: stored sequence %d, want %d", sid, got, want)
		}
	}
	groups, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if gs, err := groups.ListConsumerGroups(); err != nil || len(gs) != 0 {
		t.Fatalf("consumer groups %v (%v): replay must use its own reader, no group", gs, err)
	}

	// The fix: schema 3 is readable now. Replaying the dead-letter topic
	// writes c; one record that still fails keeps its original source.
	produce(t, client, &sarama.ProducerMessage{Topic: dlq, Key: sarama.StringEncoder("x"), Value: sarama.ByteEncoder("garbage"),
		Headers: []sarama.RecordHeader{{Key: []byte(ingest.HeaderSource), Value: []byte("message-events/5/77")}}})
	var dsum replay.Summary
	dcfg := replay.Config{FromDLQ: true, Range: replay.Range{To: replay.Bound{Offsets: map[int32]int64{replay.AllPartitions: 1 << 40}}}}
	fixed := ingest.NewDecoder(v2As3{}, 15*time.Minute, nil)
	if err := replay.Replay(ctx, client, st, fixed, dcfg, &dsum, nil); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(t, st, acc, c); got != 2 {
		t.Fatalf("c after the DLQ replay: sequence %d, want 2 (summary %s)", got, summary(&dsum))
	}
	if dsum.Read.Load() != 3 || dsum.Written.Load() != 1 || dsum.DeadLettered.Load() != 1 {
		t.Fatalf("dlq summary %s", summary(&dsum))
	}
	sources := map[string]int{}
	for _, m := range readAll(t, client, dlq) {
		for _, h := range m.Headers {
			if string(h.Key) == ingest.HeaderSource {
				sources[string(h.Value)]++
			}
		}
	}
	if sources["message-events/5/77"] != 2 {
		t.Errorf("dead-letter sources %v: the re-dead-lettered record must keep message-events/5/77", sources)
	}
}

func readAll(t *testing.T, client sarama.Client, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, _ := client.Partitions(topic)
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || hw == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset == hw-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}

func summary(s *replay.Summary) string {
	return fmt.Sprintf("total %d read %d nonfinal %d skipped %d written %d superseded %d tombstoned %d expired %d dead %d",
		s.Total, s.Read.Load(), s.NonFinal.Load(), s.Skipped.Load(), s.Written.Load(), s.Superseded.Load(), s.Tombstoned.Load(), s.Expired.Load(), s.DeadLettered.Load())
}
