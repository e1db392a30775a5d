// Package testenv gives integration tests the real parts they run against:
// DynamoDB Local (shared per test binary, or dedicated for fault tests), a
// DynamoDB client tuned for tests, unique table names, a real Apache Kafka
// (single-node KRaft from Maven Central; shared per test binary, or
// dedicated for tests that kill and restart it) and an in-process Kafka
// (kfake) on an ephemeral port.
//
// A package whose tests call DynamoDBEndpoint needs
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so the shared DynamoDB Local and Apache Kafka are stopped when its tests
// end.
//
// Nothing here skips: when a part cannot start, the test fails (a skipped
// integration test is a failure in this project), with the error saying what
// to install.
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflight/postflight/store/ddblocal"
)

// EndpointEnv, if set, names a DynamoDB endpoint DynamoDBEndpoint returns
// instead of starting DynamoDB Local (e.g. one started by the developer or CI).
const EndpointEnv = "POSTFLIGHT_TEST_DYNAMODB_ENDPOINT"

const (
	// setupTimeout bounds fetching (a download on first use) plus starting.
	setupTimeout = 5 * time.Minute
	// jvmStartTimeout bounds a JVM's start-up (DynamoDB Local): seconds on
	// an idle machine, over a minute at load average 30 on 2 cores; the
	// wait ends as soon as it answers, or at once if the JVM dies.
	jvmStartTimeout = 3 * time.Minute
	stopTimeout     = 30 * time.Second
)

// The DynamoDB Local shared by all tests of one test binary. This is the
// package-level state the style guide otherwise forbids: tests of a binary
// can only share something through it, and Main, which owns the binary's
// lifetime, stops it.
var (
	mainCalled atomic.Bool
	shared     struct {
		once sync.Once
		mu   sync.Mutex // guards proc against Main
		proc *ddblocal.Process
		err  error
	}
)

// Main runs the tests, then stops what testenv started for the whole binary
// and exits with the tests' code (1 if the shared DynamoDB Local or Apache
// Kafka had died on its own). Call it from TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	for _, err := range []error{stopShared(), stopSharedKafka(code != 0)} {
		if err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.proc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := shared.proc.Stop(ctx)
	shared.proc = nil
	return err
}

// fetch makes sure DynamoDB Local is in the cache and returns its directory.
func fetch(ctx context.Context, t testing.TB) (string, error) {
	cacheDir, err := ddblocal.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return ddblocal.Fetch(ctx, cacheDir, testLogger(t))
}

// testLogger logs to t's output at info level. Only use it for work that
// ends before t does: writing to a finished test's output panics.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// Eventually polls cond every 20ms until it returns "" (done) or timeout
// passes, then fails the test with cond's last word.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		state := cond()
		if state == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, state)
		}
		<-tick.C
	}
}
