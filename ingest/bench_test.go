package ingest_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
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

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/awsconf"
	"github.com/postflight/postflight/internal/fakeddb"
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

// countingWriter counts messages that reached a final outcome.
type countingWriter struct {
	w       ingest.Writer
	done    atomic.Int64
	batches atomic.Int64
}

func (c *countingWriter) WriteBatch(ctx context.Context, msgs []*postflight.Message, res []postflight.WriteResult) {
	c.batches.Add(1)
	c.w.WriteBatch(ctx, msgs, res)
	for _, r := range res[:len(msgs)] {
		if r.Outcome.Done() {
			c.done.Add(1)
		}
	}
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
// decode, batch, conditional PartiQL batches through the AWS SDK, offset
// commits), one op per record, and reports records/s and this process's
// CPU-µs per record. "fake" points the SDK at an endpoint that answers at
// once, isolating the pipeline's own cost; "dynamodb-local" writes for real.
// Run with a fixed count: go test -run '^$' -bench Ingest -benchtime 100000x ./ingest/
// The GC target is serve's default (--gogc 400) unless GOGC is set.
func BenchmarkIngest(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, target := range []string{"fake", "dynamodb-local"} {
		b.Run(target, func(b *testing.B) { benchIngest(b, target) })
	}
}

func benchIngest(b *testing.B, target string) {
	p := startPeer(b)
	endpoint, table := p.ddb, "bench"
	if target == "dynamodb-local" {
		endpoint, table = testenv.DynamoDBEndpoint(b), testenv.TableName(b)
	}
	// The production client (serve's), not the tests' one.
	db, err := awsconf.DynamoClient(context.Background(), endpoint, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("POSTFLIGHT_BENCH_VIA_SDK") != "" {
		// Any client option the fast path cannot honour (here an empty
		// APIOptions entry) sends the event writes through the SDK's stack.
		db = dynamodb.New(db.Options(), func(o *dynamodb.Options) {
			o.APIOptions = append(o.APIOptions, func(*middleware.Stack) error { return nil })
		})
	}
	st, err := store.New(db, store.Config{Table: table}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if target == "dynamodb-local" {
		if err := st.CreateTable(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.DeleteTable(context.Background()) })
	}
	n := b.N
	produceFinal(b, p.kafka, n)
	cw := &countingWriter{w: st}
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	svc, err := ingest.New(ingest.Config{Brokers: []string{p.kafka}, Group: "bench-" + hexSID("")[:8]}, cw, dec, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	go func() { done <- svc.Run(ctx) }()
	for cw.done.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/record")
	b.ReportMetric(float64(n)/float64(cw.batches.Load()), "records/batch")
}

// produceFinal produces n final events of distinct messages over 100
// accounts, with ~120-byte bodies, as v2 Avro.
func produceFinal(tb testing.TB, broker string, n int) {
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
		cl.Produce(context.Background(), &kgo.Record{Topic: "message-events", Key: []byte(ev.MessageSID), Value: v},
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
