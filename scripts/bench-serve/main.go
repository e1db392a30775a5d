// Command bench-serve measures `postflight serve` from outside, as a user's
// harness would: it starts an embedded Kafka-protocol broker (kfake) and a
// DynamoDB endpoint that answers at once (internal/fakeddb: DuplicateItem for
// an INSERT of a key it saw, as DynamoDB), produces a seeded backlog of one
// of internal/benchload's workloads, starts the serve binary on it with its
// shipped defaults, and reads the process's CPU time from /proc/PID/stat
// and its settled records from /metrics until the backlog is drained. It
// reports records/s, CPU-µs per record, and the write units the endpoint
// billed per final state stored, with start-up excluded: start-up
// is measured by a second serve process on an empty topic, from exec until
// its consumer group holds its partitions, and subtracted.
//
//	go build -o bin/ ./cmd/postflight && go run ./scripts/bench-serve --bin bin/postflight
//
// (make bench-serve). The broker and the endpoint run in this process, so
// their CPU is not charged to serve.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/postflight/postflight/internal/benchload"
	"github.com/postflight/postflight/internal/fakeddb"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench-serve:", err)
		os.Exit(1)
	}
}

type config struct {
	bin       string
	workloads []string
	events    int
	seed      uint64
	runs      int
	extra     []string
	pprof     string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var workloads, extra string
	fs.StringVar(&c.bin, "bin", "bin/postflight", "the postflight binary")
	fs.StringVar(&workloads, "workloads", strings.Join(benchload.Workloads, ","), "workloads to run, comma-separated")
	fs.IntVar(&c.events, "events", 200_000, "events in each backlog")
	fs.Uint64Var(&c.seed, "seed", 1, "workload seed")
	fs.IntVar(&c.runs, "runs", 1, "runs per workload (the median is reported)")
	fs.StringVar(&extra, "serve-flags", "", "extra flags for serve, space-separated")
	fs.StringVar(&c.pprof, "cpuprofile", "", "write a CPU profile of serve's drain to this file (serve with --pprof-listen)")
	var d drainConfig
	drainMode := fs.Bool("drain", false, "run the latency-bound drain (drain.go) instead: the first workload, through a latency-adding fault proxy")
	fs.DurationVar(&d.median, "latency-median", 4*time.Millisecond, "drain: median DynamoDB latency")
	fs.DurationVar(&d.p99, "latency-p99", 25*time.Millisecond, "drain: 99th percentile DynamoDB latency")
	fs.Float64Var(&d.share, "throttle-share", 0.05, "drain: share of write batches throttled mid-drain (0: none)")
	fs.DurationVar(&d.at, "throttle-at", 20*time.Second, "drain: when the throttle starts, after the first record settled")
	fs.DurationVar(&d.dur, "throttle-for", 15*time.Second, "drain: how long the throttle lasts")
	fs.StringVar(&d.html, "html", "", "drain: write the series as an HTML page with SVG charts")
	fs.IntVar(&d.partitions, "partitions", 8, "drain: partitions of the topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.workloads = strings.Split(workloads, ",")
	c.extra = strings.Fields(extra)
	if _, err := os.Stat(c.bin); err != nil {
		return fmt.Errorf("%w (build it: go build -o bin/ ./cmd/postflight)", err)
	}
	dir, err := os.MkdirTemp("", "bench-serve")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	auth := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(auth, []byte(`{"tokens": [{"name": "bench", "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "accounts": ["*"], "scopes": ["read"]}]}`), 0o600); err != nil {
		return err
	}
	if *drainMode {
		d.workload, d.events, d.seed, d.bin, d.auth, d.extra = c.workloads[0], c.events, c.seed, c.bin, auth, extra
		return drain(d, stdout, stderr)
	}
	fmt.Fprintf(stdout, "%-8s %8s %12s %16s %12s %14s\n", "workload", "events", "records/s", "cpu-µs/record", "wcu/stored", "start-up cpu")
	for _, w := range c.workloads {
		var rates, cpus, starts, wcus []float64
		for range c.runs {
			r, err := measure(c, w, auth, stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", w, err)
			}
			rates, cpus, starts = append(rates, r.rate), append(cpus, r.cpuPerRecord), append(starts, r.startup.Seconds()*1000)
			wcus = append(wcus, r.wcuPerStored)
		}
		fmt.Fprintf(stdout, "%-8s %8d %12.0f %16.2f %12.3f %12.0fms\n", w, c.events, median(rates), median(cpus), median(wcus), median(starts))
	}
	return nil
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

type result struct {
	rate, cpuPerRecord float64
	wcuPerStored       float64       // write units billed per final state stored
	startup            time.Duration // CPU
}

func measure(c config, workload, auth string, stderr io.Writer) (result, error) {
	ctx := context.Background()
	cl, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(8, "message-events", "message-events.dlq", "idle-events"))
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	fake := &http.Server{Handler: &fakeddb.Handler{}}
	go func() { _ = fake.Serve(ln) }()
	defer fake.Close()
	brokers := cl.ListenAddrs()
	if _, err := benchload.Produce(ctx, brokers, "message-events", workload, c.seed, c.events); err != nil {
		return result{}, err
	}
	base := []string{"serve", "--brokers", strings.Join(brokers, ","), "--dynamodb-endpoint", "http://" + ln.Addr().String(),
		"--table", "bench", "--auth-file", auth, "--log-level", "warn", "--page-token-key", "bench"}

	// Start-up: a process on an empty topic, until its claims run.
	idle, err := startServe(c.bin, append(append(slices.Clone(base), "--topic", "idle-events", "--group", "idle"), c.extra...), stderr)
	if err != nil {
		return result{}, err
	}
	for {
		m, err := idle.metrics()
		if err == nil && bytes.Contains(m, []byte("postflight_ingest_lag{")) {
			break
		}
		if err := idle.alive(); err != nil {
			return result{}, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	startCPU, startWall := idle.cpu(), time.Since(idle.started)
	idle.stop()

	s, err := startServe(c.bin, append(append(slices.Clone(base), "--group", "bench"), c.extra...), stderr)
	if err != nil {
		return result{}, err
	}
	defer s.stop()
	var profile chan error
	var last []byte
	for {
		m, err := s.metrics()
		if err == nil && benchload.Settled(m) >= int64(c.events) {
			last = m
			break
		}
		if err := s.alive(); err != nil {
			return result{}, err
		}
		if c.pprof != "" && profile == nil && err == nil && benchload.Settled(m) > 0 {
			profile = make(chan error, 1)
			go func() { profile <- s.profile(c.pprof) }()
		}
		time.Sleep(scrapeEvery)
	}
	cpu, wall := s.cpu()-startCPU, time.Since(s.started)-startWall
	if profile != nil {
		if err := <-profile; err != nil {
			fmt.Fprintln(stderr, "profile:", err)
		}
	}
	return result{
		rate:         float64(c.events) / wall.Seconds(),
		cpuPerRecord: float64(cpu.Microseconds()) / float64(c.events),
		wcuPerStored: benchload.WriteUnitsPerStored(last),
		startup:      startCPU,
	}, nil
}

type serveProc struct {
	cmd     *exec.Cmd
	listen  string
	pprof   string
	started time.Time
	exited  chan error
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startServe(bin string, args []string, stderr io.Writer) (*serveProc, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprof, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args = append(args, "--listen", listen, "--pprof-listen", pprof)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	p := &serveProc{cmd: cmd, listen: listen, pprof: pprof, exited: make(chan error, 1)}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

func (p *serveProc) alive() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("serve exited: %w", err)
	default:
		return nil
	}
}

func (p *serveProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

func (p *serveProc) metrics() ([]byte, error) {
	resp, err := client.Get("http://" + p.listen + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// profile fetches a CPU profile of the next few seconds.
func (p *serveProc) profile(file string) error {
	resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + p.pprof + "/debug/pprof/profile?seconds=8")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// cpu is the process's user and system time from /proc/PID/stat.
func (p *serveProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// scrapeEvery is how often the drain's /metrics are read (each scrape costs
// serve ~0.5 ms of CPU, which is charged to it, as it would be in production).
const scrapeEvery = 100 * time.Millisecond

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100
