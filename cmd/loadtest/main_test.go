package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight/loadtest"
)

func noEnv(string) string { return "" }

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestHeatAcceptanceJSON runs the acceptance command of the issue and
// checks the JSON contract: both maxima present and within 1,000.
func TestHeatAcceptanceJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heat.json")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"heat", "--rate", "100000", "--accounts", "1000000", "--top-share", "0.10", "--item-bytes", "1000", "--json", path},
		noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("heat: %v\n%s", err, stderr.String())
	}
	m := readJSON(t, path)
	for _, k := range []string{"max_base_key_units_per_sec", "max_index_key_units_per_sec"} {
		v, ok := m[k].(float64)
		if !ok {
			t.Errorf("JSON lacks numeric %q", k)
		} else if v > 1000 || v <= 0 {
			t.Errorf("%s = %v, want in (0, 1000]", k, v)
		}
	}
	for _, k := range []string{"p99_index_key_units_per_sec", "top_account_shards", "headroom_rate", "criteria", "config"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if !strings.Contains(stdout.String(), "max index key units/s") {
		t.Errorf("no summary on stdout:\n%s", stdout.String())
	}
}

func TestHeatUnshardedFailsWithExitCode1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heat.json")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"heat", "--unsharded", "--seconds", "1", "--json", path}, noEnv, &stdout, &stderr)
	if !errors.Is(err, loadtest.ErrCriteriaFailed) {
		t.Fatalf("err = %v, want ErrCriteriaFailed", err)
	}
	if code := exitCode(err, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	m := readJSON(t, path) // written even though it failed
	if v := m["max_index_key_units_per_sec"].(float64); v <= 1000 {
		t.Errorf("unsharded max index key %v, want > 1000", v)
	}
}

func TestHeatSweepAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heat.json")
	var stdout, stderr bytes.Buffer
	args := []string{"heat", "--rate", "20000", "--accounts", "10000", "--sweep-top-share", "0.05, 0.2", "--json", path}
	err := run(t.Context(), args, env(map[string]string{"LOADTEST_SEED": "42", "LOADTEST_SECONDS": "2", "LOADTEST_RATE": "1"}), &stdout, &stderr)
	if err != nil {
		t.Fatalf("heat: %v\n%s", err, stderr.String())
	}
	m := readJSON(t, path)
	cfg := m["config"].(map[string]any)
	if cfg["seed"] != 42.0 || cfg["seconds"] != 2.0 || cfg["rate"] != 20000.0 {
		t.Errorf("config = %v: want seed and seconds from the environment, rate from the command line", cfg)
	}
	sweep, _ := m["sweep"].([]any)
	if len(sweep) != 2 {
		t.Fatalf("sweep = %v, want 2 points", m["sweep"])
	}
	if p := sweep[1].(map[string]any); p["top_share"] != 0.2 {
		t.Errorf("sweep[1] = %v", p)
	}
	if !strings.Contains(stdout.String(), "headroom msgs/s") {
		t.Errorf("no sweep table:\n%s", stdout.String())
	}
}

func writeShardReport(t *testing.T, dir string, shard loadtest.ShardSpec, writes int, lost int64) string {
	t.Helper()
	start := time.Unix(1_700_000_000, 0)
	cfg := loadtest.DefaultRunConfig()
	cfg.Rate, cfg.Duration, cfg.ReadsPerSec, cfg.Shard = float64(writes)/5, 10*time.Second, 0, shard
	c := loadtest.NewCollector()
	for i := range writes {
		at := start.Add(time.Duration(i) * 10 * time.Second / time.Duration(writes))
		c.Write.Record(at, time.Duration(1+i%40)*time.Millisecond)
		c.EndToEnd.Record(at, time.Duration(50+i%100)*time.Millisecond)
		c.IndexLag.Record(at, time.Duration(10+i%300)*time.Millisecond)
	}
	rep, err := c.Report(cfg, loadtest.PacerStats{Start: start, End: start.Add(10 * time.Second)}, loadtest.PacerStats{})
	if err != nil {
		t.Fatal(err)
	}
	rep.ProducedFinal, rep.Lost = int64(writes), lost
	rep.Evaluate(cfg.Criteria)
	path := filepath.Join(dir, shard.String()[:1]+".json")
	if err := loadtest.WriteJSONFile(path, rep); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	a := writeShardReport(t, dir, loadtest.ShardSpec{Index: 0, Count: 2}, 1000, 0)
	b := writeShardReport(t, dir, loadtest.ShardSpec{Index: 1, Count: 2}, 500, 1)
	out, html := filepath.Join(dir, "merged.json"), filepath.Join(dir, "merged.html")
	var stdout, stderr bytes.Buffer

	// Flags after the files; one lost message fails the default criteria.
	err := run(t.Context(), []string{"merge", a, b, "--json", out, "--html", html}, noEnv, &stdout, &stderr)
	if !errors.Is(err, loadtest.ErrCriteriaFailed) {
		t.Fatalf("merge: err = %v, want ErrCriteriaFailed (one message lost)\n%s", err, stderr.String())
	}
	m := readJSON(t, out)
	if m["processes"] != 2.0 || m["produced_final"] != 1500.0 || m["lost"] != 1.0 {
		t.Errorf("merged: processes %v produced_final %v lost %v", m["processes"], m["produced_final"], m["lost"])
	}
	if crit := m["criteria"].(map[string]any); crit["lost"] != "fail" {
		t.Errorf("criteria = %v", crit)
	}
	page, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(page), "<svg") {
		t.Errorf("HTML report: %v", err)
	}

	// A criterion override from the environment lets it pass.
	stdout.Reset()
	if err := run(t.Context(), []string{"merge", "--json", out, a, b}, env(map[string]string{"LOADTEST_MAX_LOST": "1"}), &stdout, &stderr); err != nil {
		t.Fatalf("merge with --max-lost 1: %v", err)
	}
	if th := readJSON(t, out)["thresholds"].(map[string]any); th["max_lost"] != 1.0 || th["max_write_p99_ms"] != 50.0 {
		t.Errorf("thresholds = %v: want max_lost overridden, the rest kept", th)
	}

	if err := run(t.Context(), []string{"merge"}, noEnv, &stdout, &stderr); err == nil {
		t.Error("merge of nothing: nil error")
	}
	if err := run(t.Context(), []string{"merge", filepath.Join(dir, "missing.json")}, noEnv, &stdout, &stderr); err == nil {
		t.Error("merge of a missing file: nil error")
	}
}

// TestRunFlagsAndUnreachableBroker: every flag of the DESIGN.md §4 contract
// (and the extra ones) parses, and a broker that cannot be reached is an
// error (exit status 2), not a report. The full run is tested against the
// real stack in cmd/postflight (loadtest_test.go).
func TestRunFlagsAndUnreachableBroker(t *testing.T) {
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	args := []string{"run", "--brokers", "127.0.0.1:1", "--topic", "t", "--service", "http://127.0.0.1:1", "--token", "tok",
		"--dynamodb-endpoint", "http://127.0.0.1:1", "--table", "tbl", "--rate", "500", "--duration", "30s", "--reads-per-sec", "5",
		"--json", filepath.Join(dir, "r.json"), "--html", filepath.Join(dir, "r.html"), "--mode", "kafka", "--seed", "3", "--shard", "1/2",
		"--ramp", "10s:100,10s:300", "--max-write-p99", "80", "--min-write-ratio", "0.9", "--events-per-message", "4",
		"--non-final-share", "0.1", "--duplicate-share", "0.02", "--reorder-window", "3", "--v1-share", "0.5", "--event-gap", "50ms",
		"--probes-per-sec", "5", "--default-shards", "4", "--log-level", "error", "--verify-timeout", "5s"}
	start := time.Now()
	err := run(t.Context(), args, noEnv, &stdout, &stderr)
	if err == nil || errors.Is(err, loadtest.ErrCriteriaFailed) || !strings.Contains(err.Error(), "kafka producer") {
		t.Fatalf("run against no broker = %v, want a kafka error", err)
	}
	if code := exitCode(err, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s to give up on an unreachable broker", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "r.json")); err == nil {
		t.Error("a report was written for a run that never ran")
	}
	for _, bad := range [][]string{
		{"run", "--mode", "smoke-signals"},
		{"run", "--shard", "2/2"},
		{"run", "--ramp", "fast"},
		{"run", "--rate", "-1"},
		{"run", "--v1-share", "1.5"},
		{"run", "--reorder-window", "-1"},
		{"run", "--log-level", "loud"},
		{"run", "--no-such-flag"},
		{"run", "stray"},
	} {
		if err := run(t.Context(), bad, noEnv, &stdout, &stderr); err == nil || strings.Contains(err.Error(), "kafka producer") {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
}

func TestCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), nil, noEnv, &stdout, &stderr); err == nil {
		t.Error("no command: nil error")
	}
	if err := run(t.Context(), []string{"fly"}, noEnv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "fly") {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(t.Context(), []string{"help"}, noEnv, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "heat") {
		t.Errorf("help: %v %q", err, stdout.String())
	}
	err := run(t.Context(), []string{"heat", "-h"}, noEnv, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err, &stderr) != 0 {
		t.Errorf("heat -h: %v", err)
	}
	if !strings.Contains(stderr.String(), "-top-share") {
		t.Errorf("heat -h printed no flags: %q", stderr.String())
	}
	if err := run(t.Context(), []string{"heat", "--sweep-top-share", "x"}, noEnv, &stdout, &stderr); err == nil {
		t.Error("bad sweep list: nil error")
	}
	if err := run(t.Context(), []string{"heat", "--top-share", "1.5"}, noEnv, &stdout, &stderr); err == nil {
		t.Error("top share 1.5: nil error")
	}
	if err := run(t.Context(), []string{"heat", "--seed", "1"}, env(map[string]string{"LOADTEST_RATE": "fast"}), &stdout, &stderr); err == nil {
		t.Error("bad LOADTEST_RATE: nil error")
	}
}

func TestParseInterleaved(t *testing.T) {
	fs := newFlagSet("x", &bytes.Buffer{})
	j := fs.String("json", "", "")
	pos, err := parse(fs, []string{"a", "--json", "o", "b", "--", "--json", "c"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if *j != "o" || strings.Join(pos, " ") != "a b --json c" {
		t.Errorf("json %q positional %q", *j, pos)
	}
}
