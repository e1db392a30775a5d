package main

import (
	"flag"
	"fmt"
	"github.com/postflight/postflight/internal/envflag"
	"io"
	"strings"
	"time"
)

// parseFlags parses args, then fills every flag not given on the command
// line from POSTFLIGHT_<FLAG> (upper case, dashes as underscores). Command
// line beats environment beats default.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return envflag.Fill(fs, "POSTFLIGHT", getenv)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// serveFlags are the flags of serve (and dev, which takes the same).
type serveFlags struct {
	brokers          string
	topic            string
	dlqTopic         string
	group            string
	table            string
	listen           string
	authFile         string
	schemaRegistry   string
	dynamodbEndpoint string
	logLevel         string
	pageTokenKey     string
	drainTimeout     time.Duration
	configRefresh    time.Duration
	maxConcurrency   int
	maxPendingMB     int
	linger           time.Duration
	defaultShards    int
	retentionDays    int
	gogc             int
	pprofListen      string
	recentPerPart    int
	role             string

	// Reliability bounds.
	dynamodbAttemptTimeout time.Duration
	dlqMaxBytes            int

	// API noisy-neighbour limits and the retention re-stamp job.
	requestTimeout   time.Duration
	ratePerToken     float64
	burstPerToken    int
	ratePerAccount   float64
	burstPerAccount  int
	maxListInflight  int
	listQueueTimeout time.Duration
	restampRate      float64
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&f.topic, "topic", "message-events", "topic of message events")
	fs.StringVar(&f.dlqTopic, "dlq-topic", "message-events.dlq", "dead-letter topic")
	fs.StringVar(&f.group, "group", "postflight", "Kafka consumer group")
	f.registerTable(fs)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "API listen address")
	fs.StringVar(&f.authFile, "auth-file", "", "JSON file of API tokens (hashes); reloaded on SIGHUP")
	fs.StringVar(&f.schemaRegistry, "schema-registry", "", "Confluent Schema Registry URL (empty: built-in schema IDs 1 and 2)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.pageTokenKey, "page-token-key", "", "secret that signs page tokens; the same on every API process (empty: random per process)")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "how long a rebalance or shutdown waits for in-flight writes")
	fs.DurationVar(&f.configRefresh, "config-refresh", 10*time.Second, "how often account configuration (retention, shards) is reloaded")
	fs.IntVar(&f.maxConcurrency, "max-concurrency", 64, "most concurrent DynamoDB write requests")
	fs.IntVar(&f.maxPendingMB, "max-pending-mb", 64, "memory bound of records pending or in flight")
	fs.DurationVar(&f.linger, "linger", 5*time.Millisecond, "how long a partial batch waits for more records")
	fs.IntVar(&f.defaultShards, "default-shards", 1, "index shards of accounts without a schedule")
	fs.IntVar(&f.retentionDays, "retention-days", 400, "retention of accounts without a policy")
	fs.DurationVar(&f.requestTimeout, "request-timeout", 10*time.Second, "API per-request deadline")
	fs.Float64Var(&f.ratePerToken, "rate-per-token", 500, "API requests per second per bearer token, 429 beyond (negative: no limit)")
	fs.IntVar(&f.burstPerToken, "burst-per-token", 0, "API burst per bearer token (0: one second of --rate-per-token)")
	fs.Float64Var(&f.ratePerAccount, "rate-per-account", 200, "API requests per second per account, whichever token, 429 beyond (negative: no limit)")
	fs.IntVar(&f.burstPerAccount, "burst-per-account", 0, "API burst per account (0: one second of --rate-per-account)")
	fs.IntVar(&f.maxListInflight, "max-list-inflight", 32, "most list reads of DynamoDB in flight in this process; identical concurrent lists share one")
	fs.DurationVar(&f.listQueueTimeout, "list-queue-timeout", time.Second, "how long a list waits for a --max-list-inflight slot before a 503")
	fs.Float64Var(&f.restampRate, "restamp-rate", 500, "records per second the retention re-stamp job rewrites after a retention change (negative: no limit)")
	fs.IntVar(&f.dlqMaxBytes, "dlq-max-bytes", 1_000_000, "largest dead letter written; a larger one keeps a prefix of its value and the x-postflight-truncated header (keep at or below the dead-letter topic's max.message.bytes)")
	fs.IntVar(&f.recentPerPart, "recent-per-partition", 32768, "messages per partition remembered as stored, so their later events skip the INSERT that would fail (~110 bytes each; negative: none)")
	fs.StringVar(&f.pprofListen, "pprof-listen", "", "admin address serving runtime profiles at /debug/pprof/ (empty: none); keep it private")
	fs.StringVar(&f.role, "role", "all", "ingest, api or all: what this process runs (separate fleets in production)")
	fs.IntVar(&f.gogc, "gogc", 400, "Go GC target percentage (GOGC); the pending buffer bounds the live heap, so a higher target trades memory for CPU")
}

func (f *serveFlags) registerTable(fs *flag.FlagSet) {
	fs.StringVar(&f.table, "table", "postflight-messages", "DynamoDB table")
	fs.StringVar(&f.dynamodbEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL (empty: the AWS SDK's resolution, which honours AWS_ENDPOINT_URL_DYNAMODB)")
	fs.DurationVar(&f.dynamodbAttemptTimeout, "dynamodb-attempt-timeout", 5*time.Second, "deadline of each DynamoDB request attempt; one that gets no answer by then is retried")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
