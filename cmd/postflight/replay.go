package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/awsconf"
	"github.com/postflight/postflight/loadtest"
	"github.com/postflight/postflight/replay"
	"github.com/postflight/postflight/store"
)

// rangeFlags are the flags replay and reconcile share: where the topic and
// the table are, the range, and the store settings that shape writes (which
// must equal serve's).
type rangeFlags struct {
	brokers, topic, dlqTopic, table, dynamodbEndpoint, schemaRegistry, logLevel string
	from, to, partitions                                                        string
	rate                                                                        float64
	concurrency, defaultShards, retentionDays                                   int
}

func (f *rangeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&f.topic, "topic", "message-events", "topic of message events")
	fs.StringVar(&f.dlqTopic, "dlq-topic", "message-events.dlq", "dead-letter topic")
	fs.StringVar(&f.table, "table", "postflight-messages", "DynamoDB table")
	fs.StringVar(&f.dynamodbEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL (empty: the AWS SDK's resolution)")
	fs.StringVar(&f.schemaRegistry, "schema-registry", "", "Confluent Schema Registry URL (empty: built-in schema IDs 1 and 2)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.StringVar(&f.from, "from", "", "start: RFC 3339 time, offset (every partition) or partition:offset,… (empty: the oldest retained record)")
	fs.StringVar(&f.to, "to", "", "end, exclusive: RFC 3339 time, offset or partition:offset,… (empty: the end of the log when the run starts)")
	fs.StringVar(&f.partitions, "partitions", "", "comma-separated partitions (empty: all)")
	fs.Float64Var(&f.rate, "rate", 0, "records read per second, all partitions (0: no limit)")
	fs.IntVar(&f.concurrency, "concurrency", 8, "partitions read at once")
	fs.IntVar(&f.defaultShards, "default-shards", 1, "index shards of accounts without a schedule (the same as serve's)")
	fs.IntVar(&f.retentionDays, "retention-days", 400, "retention of accounts without a policy (the same as serve's)")
}

func (f *rangeFlags) rangeOf(topic string) (replay.Range, error) {
	r := replay.Range{Topic: topic}
	var err error
	if r.From, err = replay.ParseBound(f.from); err != nil {
		return r, fmt.Errorf("--from: %w", err)
	}
	if r.To, err = replay.ParseBound(f.to); err != nil {
		return r, fmt.Errorf("--to: %w", err)
	}
	for _, p := range splitList(f.partitions) {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return r, fmt.Errorf("--partitions: %q is not a partition", p)
		}
		r.Partitions = append(r.Partitions, int32(n))
	}
	return r, nil
}

// parts opens what replay and reconcile need: a Kafka client, the store
// (account configuration loaded) and ingest's decoder.
func (f *rangeFlags) open(ctx context.Context, getenv func(string) string) (sarama.Client, *store.Store, *ingest.Decoder, error) {
	db, err := awsconf.DynamoClient(ctx, f.dynamodbEndpoint, getenv, 0) // 0: the default per-attempt deadline
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := store.New(db, store.Config{Table: f.table, DefaultShards: f.defaultShards, DefaultRetentionDays: f.retentionDays, HotShardUnits: -1}, nil, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := st.RefreshAccounts(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("account config (does table %s exist?): %w", f.table, err)
	}
	var schemas ingest.SchemaSource = ingest.StaticSchemas{}
	if f.schemaRegistry != "" {
		if schemas, err = ingest.NewRegistrySchemas(f.schemaRegistry, &http.Client{Timeout: 10 * time.Second}); err != nil {
			return nil, nil, nil, err
		}
	}
	dec := ingest.NewDecoder(schemas, st.Config().MaxClockSkew, nil)
	client, err := sarama.NewClient(splitList(f.brokers), replay.SaramaConfig())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	return client, st, dec, nil
}

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("postflight replay", stderr)
	var f rangeFlags
	f.register(fs)
	fromDLQ := fs.Bool("from-dlq", false, "replay the dead-letter topic (after a fix); records that fail again keep their original source")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	topic := f.topic
	if *fromDLQ {
		topic = f.dlqTopic
	}
	r, err := f.rangeOf(topic)
	if err != nil {
		return err
	}
	client, st, dec, err := f.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer client.Close()
	var sum replay.Summary
	stop := progress(stderr, func() (int64, int64, string) {
		return sum.Read.Load(), sum.Total, fmt.Sprintf("written %d", sum.Written.Load())
	})
	err = replay.Replay(ctx, client, st, dec, replay.Config{
		Range: r, DLQTopic: f.dlqTopic, FromDLQ: *fromDLQ, Rate: f.rate, Concurrency: f.concurrency,
	}, &sum, log)
	stop()
	printReplaySummary(stdout, topic, &sum)
	return err
}

func printReplaySummary(w io.Writer, topic string, s *replay.Summary) {
	fmt.Fprintf(w, "replay of %s: %d records in range\n", topic, s.Total)
	for _, row := range []struct {
		name string
		n    int64
	}{
		{"read", s.Read.Load()}, {"written", s.Written.Load()}, {"superseded", s.Superseded.Load()},
		{"tombstoned", s.Tombstoned.Load()}, {"dead-lettered", s.DeadLettered.Load()},
		{"not final", s.NonFinal.Load()}, {"expired", s.Expired.Load()}, {"not selected", s.Skipped.Load()},
	} {
		fmt.Fprintf(w, "  %-14s %d\n", row.name, row.n)
	}
}

// progress draws a progress bar on w every half second while w is a
// terminal, until the returned stop is called (which waits for it).
func progress(w io.Writer, status func() (done, total int64, extra string)) (stop func()) {
	if !loadtest.IsTerminal(w) {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-ctx.Done():
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
			}
			done, total, extra := status()
			frac := 0.0
			if total > 0 {
				frac = min(1, float64(done)/float64(total))
			}
			const width = 30
			bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
			rate := float64(done) / max(time.Since(start).Seconds(), 0.001)
			fmt.Fprintf(w, "\r[%s] %5.1f%% %d/%d records, %.0f/s, %s\x1b[K", bar, 100*frac, done, total, rate, extra)
		}
	})
	return func() { cancel(); wg.Wait() }
}
