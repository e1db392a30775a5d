package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/localjvm"
	"github.com/postflight/postflight/internal/localjvm/jvmtest"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func startBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = jvmtest.Logger(t)
	}
	b, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return b
}

func createTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %s: error code %d", topic, code)
	}
}

// TestBrokerKillRestart is the harness's smoke test: a broker on free ports
// takes a topic and records, is killed with SIGKILL, and comes back on the
// same ports and log with every acknowledged record.
func TestBrokerKillRestart(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	b := startBroker(t, Config{Dir: dir, DataDir: t.TempDir(), Addr: "127.0.0.1:0"})

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic, n = "smoke", 50
	createTopic(t, cl, topic, 3)
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	b.Kill()
	if err := syscall.Kill(b.Pid(), 0); err == nil {
		t.Errorf("JVM %d still exists after Kill", b.Pid())
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Kill", b.Addr())
	}
	b2 := startBroker(t, b.Config())
	if b2.Addr() != b.Addr() {
		t.Errorf("restarted on %s, want %s", b2.Addr(), b.Addr())
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(b2.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records after restart: %v", len(seen), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if _, err := os.Stat(b2.LogFile()); err != nil {
		t.Errorf("Kafka's log: %v", err)
	}
	log, _ := os.ReadFile(b2.LogFile())
	if !strings.Contains(string(log), "Kafka Server started") {
		t.Errorf("%s lacks Kafka's start message", b2.LogFile())
	}
}

func TestStartFailsOnTakenPort(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(t.Context(), Config{Dir: dir, DataDir: filepath.Join(t.TempDir(), "k"), Addr: ln.Addr().String(),
		Log: jvmtest.Logger(t)})
	if !errors.Is(err, localjvm.ErrAddrInUse) {
		t.Fatalf("Start on a taken port: %v, want %v", err, localjvm.ErrAddrInUse)
	}
	t.Logf("error, as wanted: %v", err)
}

// A cluster id is never read by kafka-storage as an option: it does not
// start with '-' (before, one in 64 did, and that broker failed to format:
// "argument --cluster-id/-t: expected one argument"). 2,000 draws: an id
// starting with '-' would show up with probability 1 − (63/64)^2000.
func TestClusterIDIsNotAnOption(t *testing.T) {
	for range 2000 {
		id, err := clusterID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q", id)
		}
	}
}
