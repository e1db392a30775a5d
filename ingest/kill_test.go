package ingest_test

// Crash test of issue 4 (test 2): the consumer runs in a child process (this
// test binary again, dispatched by TestMain on childEnv), is killed with
// SIGKILL mid-stream, and another child takes over the group.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// childEnv holds a childConfig as JSON: the test binary then runs one ingest
// consumer until its stdin closes, instead of the tests.
const childEnv = "POSTFLIGHT_TEST_CONSUMER"

type childConfig struct {
	Brokers  []string
	Endpoint string
	Table    string
	Group    string
	Topic    string
	DLQTopic string
	// ingest's bounds; zero: its defaults
	MaxConcurrency, MaxPendingMB int
}

// runChild is the child process: an ingest.Service writing through a store
// to DynamoDB Local. It prints "RUNNING" once connected, logs warnings to
// stderr, and exits 0 after a clean shutdown when stdin is closed.
func runChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		log.Error("bad child config", "err", err)
		return 2
	}
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(cfg.Endpoint),
	})
	st, err := store.New(db, store.Config{Table: cfg.Table, AttemptTimeout: 30 * time.Second}, log, nil)
	if err != nil {
		log.Error("store", "err", err)
		return 2
	}
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	svc, err := ingest.New(ingest.Config{
		Brokers: cfg.Brokers, Group: cfg.Group, Topic: cfg.Topic, DLQTopic: cfg.DLQTopic,
		MaxConcurrency: cfg.MaxConcurrency, MaxPendingMB: cfg.MaxPendingMB,
		DrainTimeout: 20 * time.Second, RetryInitial: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond, BreakerOpen: time.Second,
	}, st, dec, log, nil, nil)
	if err != nil {
		log.Error("ingest", "err", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Println("RUNNING")
	if err := svc.Run(ctx); err != nil {
		log.Error("ingest run", "err", err)
		return 1
	}
	return 0
}

// child is a consumer process started by the test.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *testenv.SyncBuffer
	exited chan struct{}
	err    error // cmd.Wait's; read after exited
}

// startChild runs a consumer process of the rig's group and waits until it
// is connected.
func (r *rig) startChild(name string) *child {
	r.t.Helper()
	return r.startChildWith(name, childConfig{Endpoint: r.ddb})
}

// startChildWith is startChild with cfg's DynamoDB endpoint and bounds.
func (r *rig) startChildWith(name string, cc childConfig) *child {
	r.t.Helper()
	cc.Brokers, cc.Table, cc.Group, cc.Topic, cc.DLQTopic = r.brokers, r.table, r.group, r.topic, r.dlq
	cfg, _ := json.Marshal(cc)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	c := &child{name: name, cmd: cmd, stderr: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		r.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	running := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && sc.Text() == "RUNNING" {
				ok = true
				running <- true
			}
		}
		if !ok {
			running <- false
		}
		c.err = cmd.Wait()
		close(c.exited)
	}()
	r.t.Cleanup(func() {
		c.kill()
		if r.t.Failed() {
			r.t.Logf("%s stderr:\n%s", name, c.stderr.String())
		}
	})
	select {
	case ok := <-running:
		if !ok {
			<-c.exited
			r.t.Fatalf("%s exited before running: %v\n%s", name, c.err, c.stderr.String())
		}
	case <-time.After(time.Minute):
		r.t.Fatalf("%s did not start within a minute", name)
	}
	return c
}

// kill sends SIGKILL and waits until the process is reaped.
func (c *child) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// stop closes the child's stdin (a clean shutdown) and waits for it to exit.
func (c *child) stop() error {
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(90 * time.Second):
		c.kill()
		return errors.New("did not exit within 90s of a clean shutdown")
	}
	if c.err != nil {
		return fmt.Errorf("%w; stderr:\n%s", c.err, c.stderr.String())
	}
	return nil
}

// TestConsumerKilledMidStream (issue 4, test 2): a consumer process is killed
// with SIGKILL while it has records read and not yet committed, and more
// keep arriving; a new process in the same group resumes from the last
// commit. Nothing is lost (every final message is stored and correct), and
// nothing is dead-lettered. On Apache Kafka: the dead member's partitions
// move when the real group coordinator expires its session.
func TestConsumerKilledMidStream(t *testing.T) {
	t.Parallel()
	r := newApacheRig(t, "")
	msgs, evs := genStream(streamOpts{messages: 1500, duplicates: 0.1, seed: 2})
	recs := records(t, evs)
	half := len(recs) / 2
	r.produce(recs[:half], nil)
	first := r.startChild("consumer-1")
	waitCommittedAtLeast(t, r, int64(half)/4)
	r.produce(recs[half:], nil)
	first.kill()
	done, total := r.committed()
	if done == total {
		t.Fatalf("everything was committed before the kill: the test proves nothing")
	}
	if !strings.Contains(first.err.Error(), "killed") {
		t.Fatalf("consumer-1 ended with %v, not by SIGKILL", first.err)
	}
	t.Logf("killed consumer-1 at %d of %d records committed", done, total)

	// The dead member keeps its partitions until its session times out.
	second := r.startChild("consumer-2")
	r.waitCommitted(2 * time.Minute)
	if err := second.stop(); err != nil {
		t.Errorf("consumer-2: %v", err)
	}
	r.verify(msgs)
	r.expectNoDeadLetters()
}
