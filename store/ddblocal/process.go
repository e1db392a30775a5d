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
	"sync"
	"syscall"
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
		if _, _, err := splitAddr(c.Addr); err != nil {
			return fmt.Errorf("addr: %w", err)
		}
	}
	if c.StartTimeout < 0 || c.StopTimeout < 0 {
		return errors.New("negative timeout")
	}
	return nil
}

func splitAddr(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// errAddrInUse is returned by launch when the port is taken.
var errAddrInUse = errors.New("address already in use")

// Process is a running DynamoDB Local. Its methods are safe for concurrent
// use.
type Process struct {
	cfg      Config // Addr holds the port actually used
	endpoint string
	cmd      *exec.Cmd
	out      *localjvm.Output
	cwd      string // removed on stop if tmpCwd
	tmpCwd   bool

	done    chan struct{} // closed once the JVM is reaped
	waitErr error         // cmd.Wait's result; read after done

	stopOnce sync.Once
	stopErr  error
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
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("start dynamodb local: java not found on PATH: " +
			"install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
	}
	host, port, _ := splitAddr(cfg.Addr)

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
			if p, err = freePort(); err != nil {
				break
			}
		} else if err = checkFree(p); err != nil {
			break
		}
		c := cfg
		c.Addr = net.JoinHostPort(host, strconv.Itoa(p))
		var proc *Process
		proc, err = launch(ctx, c, java, p, cwd, tmpCwd)
		if err == nil {
			return proc, nil
		}
		if !errors.Is(err, errAddrInUse) || i+1 >= attempts {
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
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", java, err)
	}
	host, _, _ := splitAddr(cfg.Addr)
	p := &Process{
		cfg:      cfg,
		endpoint: "http://" + net.JoinHostPort(host, strconv.Itoa(port)),
		cmd:      cmd,
		out:      out,
		cwd:      cwd,
		tmpCwd:   tmpCwd,
		done:     make(chan struct{}),
	}
	// The only goroutine a Process owns: it ends when the JVM is reaped,
	// which Stop (or a failed start) forces.
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	cfg.Log.Debug("dynamodb local started", "pid", cmd.Process.Pid, "args", args)
	if cfg.started != nil {
		cfg.started(cmd.Process.Pid)
	}

	t0 := time.Now()
	if err := p.waitReady(ctx); err != nil {
		p.kill()
		if errors.Is(err, errAddrInUse) {
			return nil, fmt.Errorf("port %d: %w", port, err)
		}
		return nil, fmt.Errorf("%w; output:\n%s", err, out.Tail())
	}
	cfg.Log.Info("dynamodb local ready", "endpoint", p.endpoint, "pid", cmd.Process.Pid,
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
	deadline := time.NewTimer(p.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var lastErr error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("java exited before it was ready: %w", p.waitErr)
		case <-p.out.BindFailure():
			return errAddrInUse
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		_, err := db.ListTables(pctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
		cancel()
		if err == nil {
			// Whatever answered, it was not us if the JVM could not bind.
			if p.out.BindFailed() {
				return errAddrInUse
			}
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", p.endpoint, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%s not answering ListTables after %s: %w", p.endpoint, p.cfg.StartTimeout, lastErr)
		case <-p.done:
		case <-p.out.BindFailure():
		case <-tick.C:
		}
	}
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
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("dynamodb local exited on its own: %w; output:\n%s", p.waitErr, p.out.Tail())
		default:
			p.signal(syscall.SIGTERM)
			grace := time.NewTimer(p.cfg.StopTimeout)
			defer grace.Stop()
			select {
			case <-p.done:
			case <-grace.C:
				p.cfg.Log.Warn("dynamodb local ignored SIGTERM; killing it", "pid", p.cmd.Process.Pid)
				p.kill()
			case <-ctx.Done():
				p.kill()
			}
		}
		if p.tmpCwd {
			os.RemoveAll(p.cwd)
		}
	})
	return p.stopErr
}

// kill sends SIGKILL to the process group and waits until the JVM is reaped.
func (p *Process) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// signal signals the JVM's process group unless the JVM is already reaped
// (its pid could then belong to someone else).
func (p *Process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	// Setpgid made the JVM a group leader: -pid is its group.
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// freePort asks the kernel for a free TCP port on all interfaces (where
// DynamoDB Local will listen).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// checkFree fails if something already listens on port: DynamoDB Local
// would then keep running without listening while the other process
// answered our probes.
func checkFree(port int) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("port %d: %w (is another DynamoDB Local running?)", port, errAddrInUse)
	}
	return ln.Close()
}
