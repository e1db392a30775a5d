package ingest_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/awsconf"
	"github.com/postflight/postflight/internal/benchload"
	"github.com/postflight/postflight/internal/fakeddb"
	"github.com/postflight/postflight/internal/telemetry"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// peerEnv makes the test binary run as the benchmark's peer process: the
// Kafka broker (kfake) and, for the "fake" target, an endpoint that answers
// every DynamoDB request at once. Running them in another process keeps
// their CPU out of the measurement of the pipeline's own.
const peerEnv = "POSTFLIGHT_BENCH_PEER"

// TestMain runs the tests, or, when the test binary was started as a helper
// process, that helper: the benchmark's peer (peerEnv) or the kill test's
// consumer (childEnv, kill_test.go).
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(peerEnv) == "1":
		runPeer()
		return
	case os.Getenv(childEnv) != "":
		os.Exit(runChild())
	}
	testenv.Main(m)
}

func runPeer() {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(8, "message-events", "message-events.dlq"))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, &fakeddb.Handler{}) }()
	fmt.Printf("KAFKA %s\nDDB http://%s\n", c.ListenAddrs()[0], ln.Addr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	c.Close()
}

type peer struct {
	kafka, ddb string
	cmd        *exec.Cmd
}

func startPeer(tb testing.TB) *peer {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	p := &peer{cmd: cmd}
	sc := bufio.NewScanner(out)
	for p.kafka == "" || p.ddb == "" {
		if !sc.Scan() {
			tb.Fatal("benchmark peer died")
		}
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "KAFKA":
			p.kafka = f[1]
		case len(f) == 2 && f[0] == "DDB":
			p.ddb = f[1]
		default:
			tb.Fatalf("peer: %s", sc.Text())
		}
	}
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hexSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// BenchmarkIngest measures the whole ingest path (sarama consumer group,
// decode, batch, conditional PartiQL batches, offset commits) wired as serve
// wires it: serve's DynamoDB client, the OpenTelemetry meter provider with
// its Prometheus exporter (metrics on), serve's tracer provider (none), the
// dead-letter producer, the store's background loop, and serve's GC target
// (--gogc 400) unless GOGC is set. One op per record; it reports records/s
// and this process's CPU-µs per record, for three workloads of
// internal/benchload: new (one final event per message), status (a status
// stream) and mix (the realistic body mix). "fake" points the client at an
// endpoint that answers at once (and fails INSERTs and UPDATEs as DynamoDB
// would, billing write units), isolating the pipeline's own cost;
// "dynamodb-local" writes for real. wcu/stored is the write units billed
// per final state stored (the floor is 2: one base and one index write;
// DynamoDB Local bills nothing). "fake-traced" is "fake" on the new
// workload with every record carrying a sampled traceparent and the
// OpenTelemetry SDK recording every span (consume, write, batch, DynamoDB
// request, commit) into a batch processor that discards them: the worst case
// of tracing, everything sampled; "fake-unsampled" the same with traceparents
// whose producer did not sample (flag 00), the usual case in production under
// a ratio sampler. Run with a fixed count:
//
//	go test -run '^$' -bench Ingest/fake -benchtime 100000x ./ingest/
func BenchmarkIngest(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, target := range []string{"fake", "dynamodb-local"} {
		for _, w := range benchload.Workloads {
			b.Run(target+"/"+w, func(b *testing.B) { benchIngest(b, target, w) })
		}
	}
	for _, target := range []string{"fake-traced", "fake-unsampled"} {
		b.Run(target+"/new", func(b *testing.B) { benchIngest(b, target, "new") })
	}
}

func benchIngest(b *testing.B, target, workload string) {
	p := startPeer(b)
	endpoint, table := p.ddb, "bench"
	if target == "dynamodb-local" {
		endpoint, table = testenv.DynamoDBEndpoint(b), testenv.TableName(b)
	}
	tel, err := telemetry.NewMetrics()
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Provider.Shutdown(context.Background())
	// The production client (serve's), not the tests' one.
	db, err := awsconf.DynamoClient(context.Background(), endpoint, func(string) string { return "" }, 0)
	if err != nil {
		b.Fatal(err)
	}
	// Tracing variants: serve's providers plus a recording tracer.
	flags := map[string]string{"fake-traced": "01", "fake-unsampled": "00"}[target]
	var tp trace.TracerProvider
	if flags != "" {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		tp, db = sdk, awsconf.WithTracing(db, sdk)
	}
	if os.Getenv("POSTFLIGHT_BENCH_VIA_SDK") != "" {
		// Any client option the fast path cannot honour (here an empty
		// APIOptions entry) sends the event writes through the SDK's stack.
		db = dynamodb.New(db.Options(), func(o *dynamodb.Options) {
			o.APIOptions = append(o.APIOptions, func(*middleware.Stack) error { return nil })
		})
	}
	st, err := store.New(db, store.Config{Table: table}, nil, tel.Provider)
	if err != nil {
		b.Fatal(err)
	}
	if target == "dynamodb-local" {
		if err := st.CreateTable(context.Background()); err != nil {
			b.Fatal(err)
		}
		testenv.DropTable(b, db, table)
	}
	n := b.N
	if flags != "" {
		produceFinal(b, p.kafka, n, flags)
	} else if _, err := benchload.Produce(context.Background(), []string{p.kafka}, "message-events", workload, 1, n); err != nil {
		b.Fatal(err)
	}
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	svc, err := ingest.New(ingest.Config{Brokers: []string{p.kafka}, Group: "bench-" + hexSID("")[:8]}, st, dec, nil, tel.Provider, tp)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	go func() { done <- svc.Run(ctx) }()
	go func() { done <- st.Run(ctx) }()
	// Settled records, read from /metrics as scripts/bench-serve reads
	// them from serve, at the same pace.
	var metrics []byte
	for {
		rec := httptest.NewRecorder()
		tel.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if metrics = rec.Body.Bytes(); benchload.Settled(metrics) >= int64(n) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	cancel()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/record")
	b.ReportMetric(benchload.WriteUnitsPerStored(metrics), "wcu/stored")
}

// produceFinal produces n final events of distinct messages over 100
// accounts, with ~120-byte bodies, as v2 Avro; with traceFlags ("01"
// sampled, "00" not) each carries a traceparent of its own.
func produceFinal(tb testing.TB, broker string, n int, traceFlags string) {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	accounts := make([]string, 100)
	for i := range accounts {
		accounts[i] = hexSID("AC")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	body := strings.Repeat("Your verification code is 123456. ", 4)
	var failed atomic.Int64
	for i := range n {
		ev := postflight.Event{
			EventID: "4f1c2f1e-8a3b-4c7e-9d2a-0b1c2d3e4f50", AccountSID: accounts[i%len(accounts)], MessageSID: hexSID("SM"),
			Sequence: 5, Status: postflight.StatusDelivered, Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
			From: "+15550001111", To: "+15550002222", Body: &body, NumSegments: 1, DateCreated: now.Add(-time.Minute), EventTime: now,
		}
		v, err := ingest.Encode(ingest.SchemaIDv2, &ev)
		if err != nil {
			tb.Fatal(err)
		}
		rec := &kgo.Record{Topic: "message-events", Key: []byte(ev.MessageSID), Value: v}
		if traceFlags != "" {
			rec.Headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + hexSID("") + "-" + hexSID("")[:16] + "-" + traceFlags)}}
		}
		cl.Produce(context.Background(), rec,
			func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		tb.Fatalf("produce: %v, %d failed", err, failed.Load())
	}
}
