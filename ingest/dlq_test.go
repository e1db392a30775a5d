package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/postflight/postflight/internal/testenv"
)

// TestDeadLetterFloodLogsASummary: a poison flood of 2,000 records written
// to a real dead-letter topic (kfake) logs the first record at once and the
// rest as summary lines, not a line per record, and the summaries account
// for every record.
func TestDeadLetterFloodLogsASummary(t *testing.T) {
	t.Parallel()
	brokers, _ := testenv.Kafka(t, "events.dlq")
	cfg := sarama.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	var out testenv.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	count, _ := noop.NewMeterProvider().Meter("t").Int64Counter("c")
	d := newDLQ("events.dlq", 1_000_000, prod, log, count)
	tr := newTracker(func(int64) {})
	const n = 2000
	ctx, cancel := context.WithCancel(t.Context())
	go d.run(ctx)
	for i := range n {
		tr.add(int64(i))
		rec := &sarama.ConsumerMessage{Topic: "events", Partition: 3, Offset: int64(i), Value: []byte("junk")}
		if !d.send(ctx, ticket{t: tr, offset: int64(i), rec: rec}, fmt.Sprintf("decode: bad kind %d", i%3)) {
			t.Fatal("send refused")
		}
	}
	select {
	case <-tr.drained():
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d records still pending", tr.pending())
	}
	cancel()
	<-d.done // run flushes the last summary as it stops

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) > 5 {
		t.Fatalf("%d log lines for %d dead letters, want a summary (first: %s)", len(lines), n, lines[0])
	}
	total := 0
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if r, ok := m["records"].(float64); ok {
			total += int(r)
			byReason := 0
			for k, v := range m {
				if strings.HasPrefix(k, "reason:") {
					byReason += int(v.(float64))
				}
			}
			if byReason != int(r) {
				t.Errorf("summary counts %d by reason, %v in all: %s", byReason, r, l)
			}
		} else if m["source"] == "events/3/0" {
			total++
		} else {
			t.Errorf("unexpected line %s", l)
		}
	}
	if total != n {
		t.Errorf("log lines account for %d dead letters, want %d:\n%s", total, n, strings.Join(lines, "\n"))
	}
}
