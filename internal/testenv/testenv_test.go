package testenv_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/postflight/postflight/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var validTableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

func TestTableName(t *testing.T) {
	tests := []struct {
		name       string // subtest name, so part of t.Name()
		wantPrefix string
	}{
		{name: "plain", wantPrefix: "TestTableName/plain-"},
		{name: "spaces and #hash", wantPrefix: "TestTableName/spaces_and__hash-"},
		{name: "ünïcode", wantPrefix: "TestTableName/_n_code-"},
		{name: strings.Repeat("x", 300), wantPrefix: "TestTableName/xxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testenv.TableName(t)
			want := strings.ReplaceAll(tt.wantPrefix, "/", "_")
			if !strings.HasPrefix(got, want) {
				t.Errorf("TableName = %q, want prefix %q", got, want)
			}
			if !validTableName.MatchString(got) {
				t.Errorf("TableName = %q (%d chars), not a valid DynamoDB table name", got, len(got))
			}
			if again := testenv.TableName(t); again == got {
				t.Errorf("two calls gave the same name %q", got)
			}
		})
	}
}

func createTable(t *testing.T, db *dynamodb.Client, name string) {
	t.Helper()
	_, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
}

func hasTable(t *testing.T, db *dynamodb.Client, name string) bool {
	t.Helper()
	_, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err == nil {
		return true
	}
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("describe %s: %v", name, err)
	}
	return false
}

func TestDynamoDBEndpointShared(t *testing.T) {
	t.Setenv(testenv.EndpointEnv, "") // use (or start) the binary's own
	t.Run("group", func(t *testing.T) {
		var endpoints [2]string
		for i := range endpoints {
			t.Run("parallel", func(t *testing.T) {
				t.Parallel()
				endpoints[i] = testenv.DynamoDBEndpoint(t)
				db := testenv.DynamoDBClient(t, endpoints[i])
				name := testenv.TableName(t)
				createTable(t, db, name)
				if !hasTable(t, db, name) {
					t.Errorf("table %s missing after create", name)
				}
			})
		}
		t.Cleanup(func() {
			if endpoints[0] != endpoints[1] {
				t.Errorf("endpoints %q and %q, want one shared", endpoints[0], endpoints[1])
			}
		})
	})
}

// TestDynamoDBEndpointFailsWithoutJava runs this test binary again with an
// empty PATH: DynamoDBEndpoint must fail the test (saying what to install),
// never skip it.
func TestDynamoDBEndpointFailsWithoutJava(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		testenv.DynamoDBEndpoint(t)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDynamoDBEndpointFailsWithoutJava$", "-test.v")
	cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "PATH="+t.TempDir(), testenv.EndpointEnv+"=")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("child exited with %v, want status 1; output:\n%s", err, out)
	}
	for _, want := range []string{"--- FAIL: TestDynamoDBEndpointFailsWithoutJava", "install"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Errorf("child skipped:\n%s", out)
	}
}

func TestDynamoDBEndpointFromEnv(t *testing.T) {
	t.Setenv(testenv.EndpointEnv, "http://dynamodb.example:4566")
	if got := testenv.DynamoDBEndpoint(t); got != "http://dynamodb.example:4566" {
		t.Errorf("DynamoDBEndpoint = %q, want the env value", got)
	}
}

func TestStartDynamoDBRestart(t *testing.T) {
	t.Parallel()
	p := testenv.StartDynamoDB(t, t.TempDir())
	db := testenv.DynamoDBClient(t, p.Endpoint())
	name := testenv.TableName(t)
	createTable(t, db, name)

	p2 := testenv.RestartDynamoDB(t, p)
	if p2.Endpoint() != p.Endpoint() {
		t.Errorf("restarted on %s, want %s", p2.Endpoint(), p.Endpoint())
	}
	if !hasTable(t, db, name) {
		t.Errorf("table %s lost across restart", name)
	}

	// Stopped, it fails fast: the client's retries are short.
	if err := p2.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := db.ListTables(ctx, &dynamodb.ListTablesInput{}); err == nil {
		t.Fatal("ListTables against a stopped DynamoDB Local succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing against a stopped DynamoDB took %s, want about a second", d)
	}
}

func TestKafka(t *testing.T) {
	t.Parallel()
	seeds, _ := testenv.Kafka(t, "events", "events.dlq")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range []string{"events", "events.dlq"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range resp.Topics {
		if topic.ErrorCode != 0 || len(topic.Partitions) != testenv.KafkaPartitions {
			t.Errorf("topic %s: error code %d, %d partitions, want %d", *topic.Topic, topic.ErrorCode,
				len(topic.Partitions), testenv.KafkaPartitions)
		}
	}

	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "events", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Value) != "v" {
		t.Errorf("consumed %d records, want the one produced", len(recs))
	}
}

// TestApacheKafka: the shared broker takes a topic with N partitions, a
// group consumes and commits, and Kafka's own consumer-groups tool sees the
// group at lag 0.
func TestApacheKafka(t *testing.T) {
	t.Parallel()
	k := testenv.ApacheKafka(t)
	if again := testenv.ApacheKafka(t); again != k {
		t.Error("two calls gave two brokers, want one shared")
	}
	topic, group := testenv.TopicName(t, "events"), testenv.TopicName(t, "group")
	k.CreateTopic(t, topic, 3)
	prod := k.Client(t)
	const n = 30
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte("v")}
		if err := prod.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", got, n, ctx.Err())
		}
		got += len(fs.Records())
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	rows := k.DescribeGroup(t, group)
	if len(rows) != 3 {
		t.Fatalf("consumer-groups tool shows %d partitions, want 3: %+v", len(rows), rows)
	}
	var total int64
	for _, r := range rows {
		if r.Topic != topic || r.Lag != 0 || r.CommittedOffset != r.LogEndOffset {
			t.Errorf("row %+v, want lag 0 on %s", r, topic)
		}
		total += r.LogEndOffset
	}
	if total != n {
		t.Errorf("log end offsets sum to %d, want %d", total, n)
	}

	k.AddPartitions(t, topic, 5)
}
