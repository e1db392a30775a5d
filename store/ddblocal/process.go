package ddblocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/postflight/postflight/internal/localjvm"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Config says how to run DynamoDB Local. The zero value of every field but
// Dir is usable.
type Config struct {
	// Dir is the directory Fetch returned. Required.
	Dir string
	// Addr is host:port for the endpoint, default 127.0.0.1:8000. Port 0
	// picks a free port. DynamoDB Local itself listens on every interface;
	// the host only names the endpoint.
	Addr string
	// DBPath, if set, is a directory (created if missing) that holds the
	// tables across restarts; empty runs in memory.
	DBPath string
	// Log receives the JVM's output at debug level and lifecycle messages.
	// Nil discards.
	Log *slog.Logger
	// StartTimeout bounds the wait for the endpoint to answer, default 60s.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL,
	// default 10s.
	StopTimeout time.Duration

	// started, if set, is called with the JVM's pid once it runs (tests).
	started func(pid int)
}

const (
	defaultAddr         = "127.0.0.1:8000"
	defaultStartTimeout = 60 * time.Second
	defaultStopTimeout  = 10 * time.Second

	readyPoll    = 100 * time.Millisecond
	probeTimeout = 2 * time.Second
	// bindAttempts is how often Start retries a port it picked itself and
	// then lost to another process before the JVM could bind it.
	bindAttempts = 3
)

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = defaultStartTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = defaultStopTimeout
	}
}

// Validate reports a config Start cannot run.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("dir is required (the directory Fetch returns)")
	}
	if _, err := os.Stat(filepath.Join(c.Dir, jarName)); err != nil {
		return fmt.Errorf("dir: %w", err)
	}
	if c.Addr != "" { // empty means the default
		if _, _, err := localjvm.SplitAddr(c.Addr); err != nil {
			return fmt.Errorf("addr: %w", err)
		}
	}
	if c.StartTimeout < 0 || c.StopTimeout < 0 {
		return errors.New("negative timeout")
	}
	return nil
}

// Process is a running DynamoDB Local. Its methods are safe for concurrent
// use.
type Process struct {
	cfg      Config // Addr holds the port actually used
	endpoint string
	jvm      *localjvm.Process
	cwd      string // removed on stop if tmpCwd
	tmpCwd   bool
}

// Start runs DynamoDB Local and returns once its endpoint answers a
// ListTables call. ctx bounds the startup only: if it ends first, or the
// endpoint does not answer within StartTimeout, or the JVM dies, the JVM is
// killed and reaped before Start returns its error (which quotes the JVM's
// last output lines). After Start returns, the process runs until Stop.
//
// Start needs `java` (17 or newer) on PATH.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("start dynamodb local: %w", err)
	}
	java, err := localjvm.Java()
	if err != nil {
		return nil, fmt.Errorf("start dynamodb local: %w", err)
	}
	host, port, _ := localjvm.SplitAddr(cfg.Addr)

	var cwd string
	tmpCwd := cfg.DBPath == ""
	if tmpCwd {
		// DynamoDB Local writes dynamodb-local-metadata.json into its working
		// directory; keep that out of the caller's.
		cwd, err = os.MkdirTemp("", "ddblocal-")
	} else {
		cfg.DBPath, err = filepath.Abs(cfg.DBPath)
		if err == nil {
			err = os.MkdirAll(cfg.DBPath, 0o755)
		}
		cwd = cfg.DBPath
	}
	if err != nil {
		return nil, fmt.Errorf("start dynamodb local: %w", err)
	}

	attempts := 1
	if port == 0 {
		attempts = bindAttempts
	}
	for i := 0; ; i++ {
		p := port
		if p == 0 {
			// Every interface: where DynamoDB Local will listen.
			if p, err = localjvm.FreePort(""); err != nil {
				break
			}
		} else if err = localjvm.CheckFree("", p, "DynamoDB Local"); err != nil {
			// DynamoDB Local would keep running without listening while
			// the other process answered our probes.
			break
		}
		c := cfg
		c.Addr = net.JoinHostPort(host, strconv.Itoa(p))
		var proc *Process
		proc, err = launch(ctx, c, java, p, cwd, tmpCwd)
		if err == nil {
			return proc, nil
		}
		if !errors.Is(err, localjvm.ErrAddrInUse) || i+1 >= attempts {
			break
		}
		cfg.Log.Debug("dynamodb local lost its port; retrying on another", "port", p)
	}
	if tmpCwd {
		os.RemoveAll(cwd)
	}
	return nil, fmt.Errorf("start dynamodb local: %w", err)
}

// launch starts the JVM on port and waits until it answers.
func launch(ctx context.Context, cfg Config, java string, port int, cwd string, tmpCwd bool) (*Process, error) {
	args := []string{
		"-Djava.library.path=" + filepath.Join(cfg.Dir, libName),
		"-jar", filepath.Join(cfg.Dir, jarName),
		"-port", strconv.Itoa(port),
		"-sharedDb", "-disableTelemetry",
	}
	if cfg.DBPath == "" {
		args = append(args, "-inMemory")
	} else {
		args = append(args, "-dbPath", cfg.DBPath)
	}
	out := localjvm.NewOutput(cfg.Log, "dynamodb local", "Failed to bind", "BindException")
	cmd := exec.Command(java, args...)
	cmd.Dir = cwd
	// The process's one goroutine reaps the JVM; Stop (or a failed start)
	// ends it.
	jvm, err := localjvm.Start(ctx, cmd, out, cfg.StopTimeout)
	if err != nil {
		return nil, err
	}
	host, _, _ := localjvm.SplitAddr(cfg.Addr)
	p := &Process{
		cfg:      cfg,
		endpoint: "http://" + net.JoinHostPort(host, strconv.Itoa(port)),
		jvm:      jvm,
		cwd:      cwd,
		tmpCwd:   tmpCwd,
	}
	cfg.Log.Debug("dynamodb local started", "pid", jvm.Pid(), "args", args)
	if cfg.started != nil {
		cfg.started(jvm.Pid())
	}

	t0 := time.Now()
	if err := p.waitReady(ctx); err != nil {
		jvm.Kill()
		if errors.Is(err, localjvm.ErrAddrInUse) {
			return nil, fmt.Errorf("port %d: %w", port, err)
		}
		return nil, fmt.Errorf("%w; output:\n%s", err, out.Tail())
	}
	cfg.Log.Info("dynamodb local ready", "endpoint", p.endpoint, "pid", jvm.Pid(),
		"db_path", cfg.DBPath, "took", time.Since(t0).Round(time.Millisecond))
	return p, nil
}

// waitReady polls ListTables until it answers, the JVM exits or fails to
// bind, ctx ends or StartTimeout passes.
func (p *Process) waitReady(ctx context.Context) error {
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(p.endpoint),
		Retryer:      aws.NopRetryer{},
		// No keep-alive: nothing of the probe's outlives Start.
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	})
	ctx, cancel := context.WithTimeoutCause(ctx, p.cfg.StartTimeout,
		fmt.Errorf("not answering ListTables after %s", p.cfg.StartTimeout))
	defer cancel()
	return p.jvm.WaitReady(ctx, p.endpoint, readyPoll, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		_, err := db.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
		return err
	})
}

// Endpoint is the URL to give a DynamoDB client, e.g. http://127.0.0.1:8000.
func (p *Process) Endpoint() string { return p.endpoint }

// Config returns the config the process runs with, its Addr holding the port
// in use: Start(ctx, p.Config()) after Stop brings it back on the same
// endpoint (with the same tables if DBPath is set).
func (p *Process) Config() Config {
	c := p.cfg
	c.started = nil
	return c
}

// Stop sends SIGTERM to the JVM's process group, waits for it to exit, and
// sends SIGKILL when StopTimeout passes or ctx ends first. It returns once
// the JVM is reaped. It returns an error only if the JVM had already exited
// on its own. Later calls wait for the first and return its result.
func (p *Process) Stop(ctx context.Context) error {
	err := p.jvm.Stop(ctx)
	if p.tmpCwd {
		os.RemoveAll(p.cwd)
	}
	return err
}
