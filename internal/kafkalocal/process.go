package kafkalocal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postflight/postflight/internal/localjvm"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The JVM entry points, as Kafka's bin/ scripts name them.
const (
	brokerMain  = "kafka.Kafka"             // kafka-server-start.sh
	storageMain = "kafka.tools.StorageTool" // kafka-storage.sh
	// GroupsMain is the consumer-groups tool (kafka-consumer-groups.sh).
	GroupsMain = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
)

// nodeID is the single node's id, as broker and controller.
const nodeID = 1

// Config says how to run a single-node KRaft broker (broker and controller
// in one JVM). The zero value of every field but Dir and DataDir is usable.
type Config struct {
	// Dir is the directory Fetch returned. Required.
	Dir string
	// DataDir holds the broker's state: data/ (log.dirs, formatted on first
	// start with a random cluster id), logs/server.log (Kafka's own log at
	// INFO) and the generated config. Created if missing. Start on a
	// DataDir a broker used before resumes its log. Required.
	DataDir string
	// Addr is host:port of the client (PLAINTEXT) listener, default
	// 127.0.0.1:9092; port 0 picks a free one.
	Addr string
	// ControllerPort is the KRaft controller listener's port on the same
	// host; 0 picks a free one.
	ControllerPort int
	// Partitions is num.partitions, the partition count of auto-created
	// topics; default 8.
	Partitions int
	// Props are extra server.properties, set after (so overriding) the
	// ones Start writes.
	Props map[string]string
	// HeapMB is the JVM's -Xmx in MiB, default 512.
	HeapMB int
	// JVMFlags are extra flags for the broker's JVM, e.g.
	// -XX:TieredStopAtLevel=1 (C1 only: ~30% less CPU to start, slower
	// at peak), which tests use.
	JVMFlags []string
	// Log receives lifecycle messages, and the JVM's console output
	// (Kafka's WARN and above) at debug level. Nil discards.
	Log *slog.Logger
	// StartTimeout bounds formatting plus the wait for metadata, default 5m
	// (~10 s on an idle 2-core machine, a minute when it is shared).
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL,
	// default 30s.
	StopTimeout time.Duration
}

const (
	defaultAddr         = "127.0.0.1:9092"
	defaultPartitions   = 8
	defaultHeapMB       = 512
	defaultStartTimeout = 5 * time.Minute
	defaultStopTimeout  = 30 * time.Second

	readyPoll    = 100 * time.Millisecond
	probeTimeout = 2 * time.Second
	// bindAttempts is how often Start retries ports it picked itself and
	// then lost to another process before the JVM bound them.
	bindAttempts = 3
)

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.HeapMB == 0 {
		c.HeapMB = defaultHeapMB
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
	if _, err := os.Stat(filepath.Join(c.Dir, libsName)); err != nil {
		return fmt.Errorf("dir: %w", err)
	}
	if c.DataDir == "" {
		return errors.New("data dir is required")
	}
	if c.Addr != "" {
		if _, _, err := localjvm.SplitAddr(c.Addr); err != nil {
			return fmt.Errorf("addr: %w", err)
		}
	}
	if c.ControllerPort < 0 || c.ControllerPort > 65535 {
		return fmt.Errorf("controller port %d out of range", c.ControllerPort)
	}
	if c.Partitions < 0 || c.HeapMB < 0 || c.StartTimeout < 0 || c.StopTimeout < 0 {
		return errors.New("negative partitions, heap or timeout")
	}
	return nil
}

// Broker is a running single-node Kafka. Its methods are safe for
// concurrent use.
type Broker struct {
	cfg  Config // Addr and ControllerPort hold the ports in use
	addr string
	jvm  *localjvm.Process
}

// Start formats cfg.DataDir if it holds no broker yet, runs the broker and
// returns once it serves metadata that lists itself (it is registered and
// unfenced, so topics can be created). ctx bounds the startup only: on any
// failure the JVM is killed and reaped before Start returns an error that
// quotes its last output lines. The broker then runs until Stop or Kill.
//
// Start needs `java` (17 or newer) on PATH.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	java, err := localjvm.Java()
	if err != nil {
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	for _, d := range []string{"data", "logs"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("start kafka: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	host, port, _ := localjvm.SplitAddr(cfg.Addr)
	attempts := 1
	if port == 0 || cfg.ControllerPort == 0 {
		attempts = bindAttempts
	}
	for i := 0; ; i++ {
		c := cfg
		p, cp := port, cfg.ControllerPort
		if p == 0 {
			if p, err = localjvm.FreePort(host); err != nil {
				break
			}
		}
		if cp == 0 {
			if cp, err = localjvm.FreePort(host); err != nil {
				break
			}
		}
		if p == cp {
			continue // the kernel gave the same port twice; pick again
		}
		// A port given is checked before a JVM is spent on it: Kafka
		// would only fail to bind after most of its start.
		if err = checkGiven(host, p, port); err != nil {
			break
		}
		if err = checkGiven(host, cp, cfg.ControllerPort); err != nil {
			break
		}
		c.Addr, c.ControllerPort = net.JoinHostPort(host, strconv.Itoa(p)), cp
		var b *Broker
		b, err = launch(ctx, c, java)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, localjvm.ErrAddrInUse) || i+1 >= attempts {
			break
		}
		cfg.Log.Debug("kafka lost a port; retrying on others", "port", p, "controller_port", cp)
	}
	return nil, fmt.Errorf("start kafka: %w", err)
}

// launch formats storage if needed, starts the JVM and waits until it
// serves metadata.
func launch(ctx context.Context, cfg Config, java string) (*Broker, error) {
	props := filepath.Join(cfg.DataDir, "server.properties")
	if err := os.WriteFile(props, []byte(serverProperties(cfg)), 0o644); err != nil {
		return nil, err
	}
	log4j := filepath.Join(cfg.DataDir, "log4j2.yaml")
	if err := os.WriteFile(log4j, []byte(log4jConfig), 0o644); err != nil {
		return nil, err
	}
	t0 := time.Now()
	formatted, err := format(ctx, cfg, java, props, log4j)
	if err != nil {
		return nil, err
	}
	out := localjvm.NewOutput(cfg.Log, "kafka", "BindException", "Address already in use")
	args := append(append(jvmArgs(cfg, log4j, cfg.HeapMB), cfg.JVMFlags...), brokerMain, props)
	cmd := exec.Command(java, args...)
	cmd.Dir = cfg.DataDir
	// The broker's one goroutine reaps the JVM; Stop, Kill or a failed
	// start ends it.
	jvm, err := localjvm.Start(ctx, cmd, out, cfg.StopTimeout)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, addr: cfg.Addr, jvm: jvm}
	cfg.Log.Debug("kafka started", "pid", jvm.Pid(), "addr", cfg.Addr, "data_dir", cfg.DataDir)
	if err := b.waitReady(ctx); err != nil {
		jvm.Kill()
		if errors.Is(err, localjvm.ErrAddrInUse) {
			return nil, err
		}
		return nil, fmt.Errorf("%w; output:\n%s\n(Kafka's log: %s)", err, out.Tail(), b.LogFile())
	}
	cfg.Log.Info("kafka ready", "addr", b.addr, "pid", jvm.Pid(), "formatted", formatted,
		"data_dir", cfg.DataDir, "took", time.Since(t0).Round(time.Millisecond))
	return b, nil
}

// jvmArgs are the JVM options of both the broker and the tools: Kafka's
// kafka-run-class.sh defaults, smaller, with our Log4j config.
func jvmArgs(cfg Config, log4j string, heapMB int) []string {
	return []string{
		"-Xms32m", "-Xmx" + strconv.Itoa(heapMB) + "m",
		// One GC thread's worth of work on a small machine; a test broker
		// never has a heap big enough for G1 to pay off.
		"-XX:+UseSerialGC",
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + log4j,
		"-Dkafka.logs.dir=" + filepath.Join(cfg.DataDir, "logs"),
		"-cp", filepath.Join(cfg.Dir, libsName) + string(filepath.Separator) + "*",
	}
}

// format runs the storage tool on data/ unless it already holds a
// formatted log (meta.properties), with a random cluster id.
func format(ctx context.Context, cfg Config, java, props, log4j string) (bool, error) {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "data", "meta.properties")); err == nil {
		return false, nil
	}
	id, err := clusterID()
	if err != nil {
		return false, err
	}
	// A tool that runs for a second: C1 alone compiles what it needs with
	// ~45% less CPU (1.7-1.8 CPU-s against 2.9-3.3 here).
	args := append(jvmArgs(cfg, log4j, 256), "-XX:TieredStopAtLevel=1",
		storageMain, "format", "--cluster-id", id, "--config", props)
	cmd := exec.CommandContext(ctx, java, args...)
	cmd.Dir = cfg.DataDir
	if err := localjvm.Run(cmd); err != nil {
		return false, fmt.Errorf("format %s: %w", cfg.DataDir, err)
	}
	return true, nil
}

// clusterID returns a random Kafka Uuid in its text form (22 characters of
// unpadded URL-safe base64), as `kafka-storage random-uuid` prints.
//
// One that starts with '-' is drawn again, as Kafka's own Uuid.randomUuid
// does: kafka-storage would read it as an option ("--cluster-id: expected
// one argument"), one format in 64.
func clusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
}

// serverProperties is the broker's configuration: one node that is broker
// and controller, PLAINTEXT on Addr, every internal topic with one replica,
// no initial rebalance delay, and session timeouts down to 1 s allowed (so
// fencing tests need not wait long).
func serverProperties(cfg Config) string {
	host, port, _ := localjvm.SplitAddr(cfg.Addr)
	ctrl := net.JoinHostPort(host, strconv.Itoa(cfg.ControllerPort))
	client := net.JoinHostPort(host, strconv.Itoa(port))
	props := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          strconv.Itoa(nodeID),
		"controller.quorum.voters":                         strconv.Itoa(nodeID) + "@" + ctrl,
		"listeners":                                        "PLAINTEXT://" + client + ",CONTROLLER://" + ctrl,
		"advertised.listeners":                             "PLAINTEXT://" + client,
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                                         filepath.Join(cfg.DataDir, "data"),
		"num.partitions":                                   strconv.Itoa(cfg.Partitions),
		"default.replication.factor":                       "1",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "8",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "4",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
		"group.min.session.timeout.ms":                     "1000",
		"num.network.threads":                              "2",
		"num.io.threads":                                   "4",
		"background.threads":                               "4",
		"num.recovery.threads.per.data.dir":                "2",
	}
	for k, v := range cfg.Props {
		props[k] = v
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("# Written by postflight's kafkalocal on every start.\n")
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", k, props[k])
	}
	return sb.String()
}

// log4jConfig sends Kafka's log to logs/server.log at INFO and WARN and
// above to the console, which Start reads (the one slf4j binding is
// log4j-slf4j-impl, so this covers every logger).
const log4jConfig = `Configuration:
  Properties:
    Property:
      - name: "kafka.logs.dir"
        value: "."
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      ThresholdFilter:
        level: WARN
    File:
      name: FILE
      fileName: "${sys:kafka.logs.dir}/server.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
        - ref: FILE
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.clients
        level: WARN
`

// waitReady polls Metadata until the broker lists itself, the JVM exits or
// fails to bind, or ctx ends.
func (b *Broker) waitReady(ctx context.Context) error {
	return b.jvm.WaitReady(ctx, b.addr+" to serve metadata", readyPoll, b.probe)
}

// probe asks for cluster metadata and succeeds once this broker is listed.
func (b *Broker) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	if conn, err := d.DialContext(ctx, "tcp", b.addr); err != nil {
		return err // not listening yet: skip building a client
	} else {
		conn.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RequestRetries(0),
		kgo.DialTimeout(probeTimeout))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, br := range resp.Brokers {
		if br.NodeID == nodeID {
			return nil
		}
	}
	return errors.New("broker not registered yet")
}

// Addr is the client listener, host:port, to give a Kafka client as its
// bootstrap server.
func (b *Broker) Addr() string { return b.addr }

// Config returns the config the broker runs with, its ports those in use:
// Start(ctx, b.Config()) after Stop or Kill brings it back on the same
// ports and log.
func (b *Broker) Config() Config { return b.cfg }

// LogFile is Kafka's own log (INFO and above).
func (b *Broker) LogFile() string { return filepath.Join(b.cfg.DataDir, "logs", "server.log") }

// Pid is the JVM's process id.
func (b *Broker) Pid() int { return b.jvm.Pid() }

// Stop sends SIGTERM to the JVM's process group (Kafka shuts down
// cleanly), waits for it to exit, and sends SIGKILL when StopTimeout passes
// or ctx ends first. It returns once the JVM is reaped, with an error only
// if the JVM had already exited on its own. Later calls return the first
// call's result.
func (b *Broker) Stop(ctx context.Context) error { return b.jvm.Stop(ctx) }

// Kill sends SIGKILL to the JVM's process group, as a crash (kill -9): no
// shutdown, no flush beyond what the OS already has. It returns once the
// JVM is reaped. A later Stop returns nil.
func (b *Broker) Kill() { b.jvm.Kill() }

// checkGiven fails if port, when it was given (not picked: given != 0), is
// already taken on host.
func checkGiven(host string, port, given int) error {
	if given == 0 {
		return nil
	}
	return localjvm.CheckFree(host, port, "Kafka")
}
