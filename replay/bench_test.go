package replay_test

import (
	"context"
	"flag"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/replay"
	"github.com/postflight/postflight/store"
)

var benchMessages = flag.Int("reconcile.messages", 10_000, "messages BenchmarkReconcile seeds")

// BenchmarkReconcile measures reconcile's throughput against DynamoDB
// Local: messages checked per second (one final event each in kfake, each
// stored), with no rate limits.
//
//	go test -run '^$' -bench Reconcile -benchtime 3x ./replay/
func BenchmarkReconcile(b *testing.B) {
	addrs := kafka(b)
	st := newStore(b)
	client, err := sarama.NewClient(addrs, replay.SaramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	acc := randomSID("AC")
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	n := *benchMessages
	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*postflight.Message, n)
	go func() {
		for range prod.Successes() {
		}
	}()
	for i := range n {
		ev := event(acc, randomSID("SM"), 3, postflight.StatusDelivered, created)
		v, err := ingest.Encode(ingest.SchemaIDv2, ev)
		if err != nil {
			b.Fatal(err)
		}
		prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(ev.MessageSID), Value: sarama.ByteEncoder(v)}
		m := ev.Message()
		msgs[i] = &m
	}
	prod.Close()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			res := make([]postflight.WriteResult, store.MaxBatch)
			for i := w * store.MaxBatch; i < n; i += 8 * store.MaxBatch {
				batch := msgs[i:min(i+store.MaxBatch, n)]
				for {
					st.WriteBatch(ctx, batch, res)
					ok := true
					for _, r := range res[:len(batch)] {
						ok = ok && r.Outcome == postflight.Applied
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	b.ResetTimer()
	cpu0 := cpuTime()
	var checked int64
	for b.Loop() {
		var rep replay.Report
		if err := replay.Reconcile(ctx, client, st, dec, replay.ReconcileConfig{Range: replay.Range{Topic: topic}}, &rep, nil, nil); err != nil {
			b.Fatal(err)
		}
		if rep.Matched.Load() != int64(n) || rep.Differences() != 0 {
			b.Fatalf("matched %d of %d, %d differences", rep.Matched.Load(), n, rep.Differences())
		}
		checked += rep.Messages.Load()
	}
	b.ReportMetric(float64(checked)/b.Elapsed().Seconds(), "msgs/s")
	// This process only (reader, decode, compare, the SDK); DynamoDB
	// Local's JVM is another process.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(checked), "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
