package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/postflight/postflight/store/ddblocal"
)

// DynamoDBEndpoint returns the endpoint of a DynamoDB every test of the
// binary shares: $POSTFLIGHT_TEST_DYNAMODB_ENDPOINT if set, else an in-memory
// DynamoDB Local on a free port, fetched and started on first use (the first
// caller waits; later ones get the same endpoint). Give each test its own
// table (TableName). If it cannot start, the test fails, now and in every
// later call. It is safe for parallel tests, and requires TestMain to call
// Main.
func DynamoDBEndpoint(t testing.TB) string {
	t.Helper()
	// Checked even when the env var is set, so a package that works in CI
	// also works on a laptop.
	if !mainCalled.Load() {
		t.Fatal("testenv.DynamoDBEndpoint needs the package's TestMain to call testenv.Main(m), " +
			"which stops the shared DynamoDB Local after the tests")
	}
	if ep := os.Getenv(EndpointEnv); ep != "" {
		return ep
	}
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
		defer cancel()
		dir, err := fetch(ctx, t)
		if err != nil {
			shared.err = err
			return
		}
		p, err := ddblocal.Start(ctx, ddblocal.Config{
			Dir:          dir,
			Addr:         "127.0.0.1:0",
			StartTimeout: jvmStartTimeout,
			// It outlives this test, so it may not log to it.
			Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		shared.mu.Lock()
		shared.proc, shared.err = p, err
		shared.mu.Unlock()
	})
	if shared.err != nil {
		t.Fatalf("testenv: shared DynamoDB Local: %v", shared.err)
	}
	return shared.proc.Endpoint()
}

// StartDynamoDB starts a DynamoDB Local of the test's own, on a free port, for
// tests that stop or restart it (RestartDynamoDB). An empty dbPath runs it in
// memory; otherwise tables persist there across restarts. It is stopped when
// the test ends; the test may Stop it earlier.
func StartDynamoDB(t testing.TB, dbPath string) *ddblocal.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	dir, err := fetch(ctx, t)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return startOwn(ctx, t, ddblocal.Config{Dir: dir, Addr: "127.0.0.1:0", DBPath: dbPath})
}

// RestartDynamoDB stops p (if it still runs) and starts it again on the same
// endpoint and dbPath, as a crash-and-recover fault. The new process is
// stopped when the test ends.
func RestartDynamoDB(t testing.TB, p *ddblocal.Process) *ddblocal.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("testenv: stop DynamoDB Local: %v", err)
	}
	return startOwn(ctx, t, p.Config())
}

func startOwn(ctx context.Context, t testing.TB, cfg ddblocal.Config) *ddblocal.Process {
	t.Helper()
	// Its output is logged at debug level, below this logger's: nothing
	// is written to t after it ends.
	cfg.Log = testLogger(t)
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = jvmStartTimeout
	}
	p, err := ddblocal.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return p
}

// DynamoDBClient returns a client for endpoint with static credentials
// (local/local) in us-east-1. Its retryer makes up to 5 attempts with at most
// 200ms between them and has no client-side retry quota (the SDK's default
// bucket runs dry in fault tests and then fails calls without trying), so
// a stopped DynamoDB shows up as an error within about a second. Idle
// connections are closed when the test ends.
func DynamoDBClient(t testing.TB, endpoint string) *dynamodb.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Parallel writers would otherwise reconnect for most requests.
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = 200 * time.Millisecond
			o.RateLimiter = ratelimit.None
		}),
	})
}

// AttemptTimeout is the per-attempt DynamoDB deadline tests give stores
// (store.Config.AttemptTimeout, --dynamodb-attempt-timeout) instead of the
// production 5s: on this shared machine DynamoDB Local can take seconds to
// answer under load, and a test must not depend on the machine being idle.
// It is DynamoDBClient's overall HTTP timeout, the bound tests had before.
const AttemptTimeout = 30 * time.Second

// maxTableName is DynamoDB's limit on table name length.
const maxTableName = 255

// TableName returns a table name unique to this test and call: t.Name() with
// every character DynamoDB does not allow replaced by '_', then '-' and 8
// random hex digits, cut to 255 characters.
func TableName(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := "-" + hex.EncodeToString(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > maxTableName-len(suffix) {
		name = name[:maxTableName-len(suffix)]
	}
	return name + suffix
}

// DropTable deletes table through db when the test ends (a cleanup
// registered now, so it runs after the cleanups registered later, such as
// the consumers writing to the table). Errors are ignored: DynamoDB Local
// may already be gone, and a table left behind only costs a shared
// instance some memory.
func DropTable(t testing.TB, db *dynamodb.Client, table string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), AttemptTimeout)
		defer cancel()
		_, _ = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
	})
}
