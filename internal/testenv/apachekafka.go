package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/postflight/postflight/internal/kafkalocal"
)

// testJVMFlags run test brokers on C1 alone: 4.3-5.3 CPU-s to start
// instead of 7.1 on this 2-core machine; tests never push a broker to
// where C2's code would pay off.
var testJVMFlags = []string{"-XX:TieredStopAtLevel=1"}

// kafkaStartTimeout bounds a broker's start: formatting plus a JVM that,
// on a loaded 2-core machine, can take a minute to serve metadata.
const kafkaStartTimeout = 5 * time.Minute

// ApacheBroker is a real Apache Kafka (single-node KRaft, from the jars
// kafkalocal fetched) a test talks to: the binary's shared one
// (ApacheKafka) or a test's own (OwnApacheKafka), which it may also Kill and
// Restart. Its methods are safe for concurrent use.
type ApacheBroker struct {
	dir    string // the fetched jars
	shared bool

	mu sync.Mutex
	b  *kafkalocal.Broker
}

// The broker shared by all tests of one test binary, like DynamoDB Local
// (see the shared var in testenv.go).
var sharedKafka struct {
	once    sync.Once
	mu      sync.Mutex // guards broker against Main
	broker  *ApacheBroker
	dataDir string
	err     error
}

// ApacheKafka returns the Apache Kafka broker every test of the binary
// shares, started on first use (the first caller waits, ~10 s of JVM start
// on an idle machine). Tests share it, so each uses its own topics and
// groups (TopicName) and never stops it. Kafka's own log is removed when
// the binary's tests pass and kept (its path printed) when one fails. It is
// safe for parallel tests, and requires TestMain to call Main.
func ApacheKafka(t testing.TB) *ApacheBroker {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("testenv.ApacheKafka needs the package's TestMain to call testenv.Main(m), " +
			"which stops the shared broker after the tests")
	}
	sharedKafka.once.Do(func() {
		ctx, cancel := context.WithTimeout(t.Context(), setupTimeout+kafkaStartTimeout)
		defer cancel()
		dir, err := fetchKafka(ctx, t)
		if err != nil {
			sharedKafka.err = err
			return
		}
		dataDir, err := os.MkdirTemp("", "postflight-kafka-")
		if err != nil {
			sharedKafka.err = err
			return
		}
		b, err := kafkalocal.Start(ctx, kafkalocal.Config{
			Dir: dir, DataDir: dataDir, Addr: "127.0.0.1:0",
			// It outlives this test, so it may not log to it.
			Log:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			StartTimeout: kafkaStartTimeout,
			JVMFlags:     testJVMFlags,
		})
		sharedKafka.mu.Lock()
		defer sharedKafka.mu.Unlock()
		sharedKafka.dataDir, sharedKafka.err = dataDir, err
		if err == nil {
			sharedKafka.broker = &ApacheBroker{dir: dir, shared: true, b: b}
		}
	})
	if sharedKafka.err != nil {
		t.Fatalf("testenv: shared Apache Kafka: %v", sharedKafka.err)
	}
	return sharedKafka.broker
}

// stopSharedKafka stops the shared broker and removes its data, unless
// keep (a test failed): then it says where Kafka's log is.
func stopSharedKafka(keep bool) error {
	sharedKafka.mu.Lock()
	defer sharedKafka.mu.Unlock()
	if sharedKafka.dataDir == "" {
		return nil
	}
	var err error
	if sharedKafka.broker != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		err = sharedKafka.broker.broker().Stop(ctx)
		sharedKafka.broker = nil
	}
	if keep || err != nil {
		fmt.Fprintf(os.Stderr, "testenv: shared Apache Kafka's data and log kept in %s (log: logs/server.log)\n",
			sharedKafka.dataDir)
	} else {
		os.RemoveAll(sharedKafka.dataDir)
	}
	sharedKafka.dataDir = ""
	return err
}

// OwnApacheKafka starts an Apache Kafka broker of the test's own, for tests
// that Kill, Restart or Stop it. It is stopped when the test ends; its data
// and log are removed then, or kept (the test logs where) if the test
// failed.
func OwnApacheKafka(t testing.TB) *ApacheBroker {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout+kafkaStartTimeout)
	defer cancel()
	dir, err := fetchKafka(ctx, t)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dataDir, err := os.MkdirTemp("", "postflight-kafka-")
	if err != nil {
		t.Fatal(err)
	}
	k := &ApacheBroker{dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if b := k.broker(); b != nil {
			if err := b.Stop(ctx); err != nil {
				t.Errorf("testenv: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("testenv: Apache Kafka's data and log kept in %s (log: logs/server.log)", dataDir)
			return
		}
		os.RemoveAll(dataDir)
	})
	k.start(ctx, t, kafkalocal.Config{Dir: dir, DataDir: dataDir, Addr: "127.0.0.1:0"})
	return k
}

func (k *ApacheBroker) start(ctx context.Context, t testing.TB, cfg kafkalocal.Config) {
	t.Helper()
	// Lifecycle only (the JVM's output is at debug level): nothing is
	// written to t after it ends.
	cfg.Log = testLogger(t)
	cfg.StartTimeout = kafkaStartTimeout
	cfg.JVMFlags = testJVMFlags
	b, err := kafkalocal.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	k.mu.Lock()
	k.b = b
	k.mu.Unlock()
}

func (k *ApacheBroker) broker() *kafkalocal.Broker {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.b
}

func (k *ApacheBroker) mustOwn(t testing.TB, what string) {
	t.Helper()
	if k.shared {
		t.Fatalf("testenv: %s on the shared Apache Kafka; use OwnApacheKafka", what)
	}
}

// Addrs are the bootstrap addresses for clients (one broker).
func (k *ApacheBroker) Addrs() []string { return []string{k.broker().Addr()} }

// Pid is the broker JVM's process id.
func (k *ApacheBroker) Pid() int { return k.broker().Pid() }

// LogFile is Kafka's own log.
func (k *ApacheBroker) LogFile() string { return k.broker().LogFile() }

// Kill SIGKILLs the broker (kill -9: no shutdown) and returns once it is
// gone. Own brokers only.
func (k *ApacheBroker) Kill(t testing.TB) {
	t.Helper()
	k.mustOwn(t, "Kill")
	k.broker().Kill()
}

// Stop shuts the broker down cleanly. Own brokers only.
func (k *ApacheBroker) Stop(t testing.TB) {
	t.Helper()
	k.mustOwn(t, "Stop")
	ctx, cancel := context.WithTimeout(t.Context(), stopTimeout)
	defer cancel()
	if err := k.broker().Stop(ctx); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Restart starts a killed or stopped broker again on the same ports and
// log directory (stopping it first if it still runs) and returns once it
// serves metadata. Own brokers only.
func (k *ApacheBroker) Restart(t testing.TB) {
	t.Helper()
	k.mustOwn(t, "Restart")
	ctx, cancel := context.WithTimeout(t.Context(), kafkaStartTimeout)
	defer cancel()
	old := k.broker()
	if err := old.Stop(ctx); err != nil {
		t.Logf("testenv: %v", err) // it died or was killed: what a restart is for
	}
	k.start(ctx, t, old.Config())
}

// Client returns a franz-go client for the broker, closed when the test
// ends.
func (k *ApacheBroker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with the given partition count (one replica)
// and waits until the broker serves a leader for every partition.
func (k *ApacheBroker) CreateTopic(t testing.TB, topic string, partitions int) {
	t.Helper()
	cl := k.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(partitions), 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("testenv: create topic %s: %v", topic, err)
	}
	if r := resp.Topics[0]; r.ErrorCode != 0 {
		t.Fatalf("testenv: create topic %s: error code %d %v", topic, r.ErrorCode, strPtr(r.ErrorMessage))
	}
	k.waitPartitions(ctx, t, cl, topic, partitions)
}

// AddPartitions raises topic's partition count to total, while clients
// run, and waits until every partition has a leader.
func (k *ApacheBroker) AddPartitions(t testing.TB, topic string, total int) {
	t.Helper()
	cl := k.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, int32(total)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("testenv: add partitions to %s: %v", topic, err)
	}
	if r := resp.Topics[0]; r.ErrorCode != 0 {
		t.Fatalf("testenv: add partitions to %s: error code %d %v", topic, r.ErrorCode, strPtr(r.ErrorMessage))
	}
	k.waitPartitions(ctx, t, cl, topic, total)
}

func (k *ApacheBroker) waitPartitions(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, n int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 &&
			len(resp.Topics[0].Partitions) == n && allLed(resp.Topics[0].Partitions) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testenv: topic %s has no leader for all %d partitions: %v", topic, n, ctx.Err())
		case <-tick.C:
		}
	}
}

func allLed(ps []kmsg.MetadataResponseTopicPartition) bool {
	for _, p := range ps {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return false
		}
	}
	return true
}

func strPtr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// GroupLag is one row of `kafka-consumer-groups --describe`.
type GroupLag struct {
	Topic           string
	Partition       int32
	CommittedOffset int64 // -1 when the tool prints "-"
	LogEndOffset    int64
	Lag             int64 // -1 when the tool prints "-"
}

// DescribeGroup runs Kafka's own consumer-groups tool (the class
// kafka-consumer-groups.sh runs, from the fetched jars, in its own JVM)
// with --describe for group, and returns its rows: an outside view of the
// group's committed offsets, independent of our client libraries.
func (k *ApacheBroker) DescribeGroup(t testing.TB, group string) []GroupLag {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := kafkalocal.RunTool(ctx, k.dir, kafkalocal.GroupsMain,
		"--bootstrap-server", k.broker().Addr(), "--describe", "--group", group)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	rows, err := parseGroupDescribe(out)
	if err != nil {
		t.Fatalf("testenv: consumer-groups output: %v:\n%s", err, out)
	}
	return rows
}

// parseGroupDescribe reads the table `--describe` prints: a header line
// naming the columns (GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET
// LAG ...), then one line per partition.
func parseGroupDescribe(out []byte) ([]GroupLag, error) {
	var cols map[string]int
	var rows []GroupLag
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "GROUP" {
			cols = make(map[string]int)
			for i, c := range f {
				cols[c] = i
			}
			for _, c := range []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"} {
				if _, ok := cols[c]; !ok {
					return nil, fmt.Errorf("header lacks %s", c)
				}
			}
			continue
		}
		if cols == nil || len(f) < len(cols)-2 { // CONSUMER-ID, HOST, CLIENT-ID may be "-"
			continue
		}
		p, err := strconv.ParseInt(f[cols["PARTITION"]], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("partition %q: %w", f[cols["PARTITION"]], err)
		}
		row := GroupLag{Topic: f[cols["TOPIC"]], Partition: int32(p)}
		for _, c := range []struct {
			name string
			dst  *int64
		}{{"CURRENT-OFFSET", &row.CommittedOffset}, {"LOG-END-OFFSET", &row.LogEndOffset}, {"LAG", &row.Lag}} {
			s := f[cols[c.name]]
			if s == "-" {
				*c.dst = -1
				continue
			}
			if *c.dst, err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, fmt.Errorf("%s %q: %w", c.name, s, err)
			}
		}
		rows = append(rows, row)
	}
	if cols == nil {
		return nil, fmt.Errorf("no header line")
	}
	return rows, sc.Err()
}

// TopicName returns a topic (or group) name unique to this test and call,
// built like TableName: prefix, the test's name with characters Kafka does
// not allow replaced by '_', and 8 random hex digits, within Kafka's 249
// characters.
func TopicName(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := "-" + hex.EncodeToString(b[:])
	name := prefix + "-" + strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, t.Name())
	const maxTopic = 249
	if len(name) > maxTopic-len(suffix) {
		name = name[:maxTopic-len(suffix)]
	}
	return name + suffix
}

// fetchKafka makes sure Kafka's jars are in the cache and returns their
// directory.
func fetchKafka(ctx context.Context, t testing.TB) (string, error) {
	cacheDir, err := kafkalocal.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return kafkalocal.Fetch(ctx, cacheDir, testLogger(t))
}
