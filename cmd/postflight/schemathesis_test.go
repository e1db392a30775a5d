package main

// The API fuzzed from its own contract: schemathesis (PyPI) reads the served
// openapi.json and sends positive and negative data to every operation of
// the real stack (DynamoDB Local, kfake, ingest), with a token that has every
// scope, checking that nothing answers 5xx and every response conforms to
// the description. The Makefile installs it (make tools) into
// .cache/schemathesis; POSTFLIGHT_SCHEMATHESIS may name another binary.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// schemathesisExamples bounds the examples per operation (and mode), so the
// run stays within the suite's budget; POSTFLIGHT_SCHEMATHESIS_EXAMPLES
// raises it for a longer local run.
const schemathesisExamples = 30

func schemathesisBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("POSTFLIGHT_SCHEMATHESIS"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", ".cache", "schemathesis", "bin", "schemathesis"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("schemathesis is not installed at %s (make tools installs it): %v", p, err)
		}
		t.Skipf("schemathesis is not installed at %s: run make tools (CI never skips this test)", p)
	}
	return p
}

func TestSchemathesis(t *testing.T) {
	bin := schemathesisBinary(t)
	account, other := randomSID("AC"), randomSID("AC")
	s := startStack(t, account, func(f *serveFlags) {
		f.authFile = writeAPIAuthFile(t, account, other)
		f.ratePerToken, f.ratePerAccount = -1, -1 // the fuzzer is not a noisy neighbour under test
	})
	// A few stored messages, so that some generated requests find one.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []*sarama.ProducerMessage
	for i := range 3 {
		recs = append(recs, record(t, newEvent(account, randomSID("SM"), 3, postflight.StatusDelivered, now.Add(-time.Duration(i)*time.Minute)), ingest.SchemaIDv2))
	}
	produce(t, s.brokers, recs...)

	examples := schemathesisExamples
	if n, err := strconv.Atoi(os.Getenv("POSTFLIGHT_SCHEMATHESIS_EXAMPLES")); err == nil && n > 0 {
		examples = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	config, err := filepath.Abs(filepath.Join("testdata", "schemathesis.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--config-file", config, "run", s.api+"/openapi.json",
		"--url", s.api,
		"--header", "Authorization: Bearer "+adminTok,
		"--checks", "all",
		"--mode", "all",
		"--max-examples", strconv.Itoa(examples),
		"--seed", "1",
		"--workers", "1",
		"--request-timeout", "15",
		"--generation-database", "none",
		"--max-time", "300",
		"--no-color",
	)
	cmd.Dir = t.TempDir()
	hooks, err := filepath.Abs(filepath.Join("testdata", "schemathesis_hooks.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "SCHEMATHESIS_HOOKS="+hooks) // the NDJSON serializer of POST /v1/events
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis found problems (%v):\n%s", err, out)
	}
	t.Logf("schemathesis:\n%s", out)
}
