package kafkalocal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv names a data directory: the test binary then starts a broker
// there, prints "PID <jvm pid>" and waits to be killed, instead of testing.
const childEnv = "KAFKALOCAL_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

func runChild(dataDir string) int {
	ctx := context.Background()
	cacheDir, err := DefaultCacheDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	dir, err := Fetch(ctx, cacheDir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b, err := Start(ctx, Config{Dir: dir, DataDir: dataDir, Addr: "127.0.0.1:0",
		JVMFlags: []string{"-XX:TieredStopAtLevel=1"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("PID %d\n", b.Pid())
	// Until we are killed (SIGKILL: no Stop, no cleanup).
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	return 1
}

// TestJVMDiesWithItsParent: a process that started a broker is killed with
// SIGKILL (no Stop, no cleanup); the kernel kills the broker's JVM too
// (Pdeathsig), so a crashed or timed-out test binary leaves no broker.
func TestJVMDiesWithItsParent(t *testing.T) {
	t.Parallel()
	fetchShared(t) // the child must not be the one downloading
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		t.Fatalf("child: %v; stderr:\n%s", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PID ")))
	if err != nil {
		t.Fatalf("child printed %q", line)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-deadline.C:
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("JVM %d still runs a minute after its parent was killed", pid)
		case <-tick.C:
		}
	}
}

// alive reports whether pid runs: it exists and is not a zombie (a dead
// process nobody reaped yet).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
