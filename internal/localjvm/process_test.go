package localjvm

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Process tests run sh and sleep in place of a JVM: what they test
// (process group, reaping, signals, readiness) is the same, and they start
// in milliseconds. The launchers' tests run the real JVMs.

// startSh runs script under sh as a Process whose output is named "fake jvm".
func startSh(t *testing.T, script string, stopTimeout time.Duration) *Process {
	t.Helper()
	out := NewOutput(slog.New(slog.NewTextHandler(t.Output(), nil)), "fake jvm", "Failed to bind")
	p, err := Start(t.Context(), exec.Command("sh", "-c", script), out, stopTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// waitReady waits until the script printed "ready".
func waitReady(t *testing.T, p *Process) {
	t.Helper()
	err := p.WaitReady(t.Context(), "ready", time.Millisecond, func(context.Context) error {
		if !strings.Contains(p.out.Tail(), "ready") {
			return errors.New("no ready line yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func assertReaped(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.done:
	default:
		t.Fatal("not reaped")
	}
	if err := syscall.Kill(-p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists (kill -0: %v)", p.Pid(), err)
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name   string
		script string
		// stopTimeout and a ctx cancelled before Stop decide whether
		// SIGKILL follows SIGTERM.
		stopTimeout time.Duration
		cancelled   bool
		wantExit    string // how the process ended
	}{
		{name: "SIGTERM", script: "echo ready; exec sleep 300", stopTimeout: time.Hour, wantExit: "signal: terminated"},
		{name: "SIGTERM ignored, timeout", script: `trap "" TERM; echo ready; exec sleep 300`,
			stopTimeout: time.Nanosecond, wantExit: "signal: killed"},
		{name: "SIGTERM ignored, ctx ends", script: `trap "" TERM; echo ready; exec sleep 300`,
			stopTimeout: time.Hour, cancelled: true, wantExit: "signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startSh(t, tt.script, tt.stopTimeout)
			waitReady(t, p)
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancelled {
				cancel()
			}
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			assertReaped(t, p)
			if p.waitErr == nil || p.waitErr.Error() != tt.wantExit {
				t.Errorf("exit %v, want %s", p.waitErr, tt.wantExit)
			}
			if err := p.Stop(ctx); err != nil {
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

func TestStopReportsEarlyExit(t *testing.T) {
	p := startSh(t, "echo boom; exit 3", time.Hour)
	<-p.done
	err := p.Stop(t.Context())
	if want := "fake jvm exited on its own: exit status 3; output:\nboom"; err == nil || err.Error() != want {
		t.Errorf("Stop = %v, want %q", err, want)
	}
	if err2 := p.Stop(t.Context()); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Stop = %v, want the first's error", err2)
	}
}

func TestKillThenStop(t *testing.T) {
	p := startSh(t, "exec sleep 300", time.Hour)
	p.Kill()
	assertReaped(t, p)
	if p.waitErr == nil || p.waitErr.Error() != "signal: killed" {
		t.Errorf("exit %v, want signal: killed", p.waitErr)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Errorf("Stop after Kill: %v", err)
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cmd := exec.Command("sh", "-c", "exit 0")
	if _, err := Start(ctx, cmd, NewOutput(slog.New(slog.DiscardHandler), "fake jvm"), time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled ctx = %v, want context.Canceled", err)
	}
	if cmd.Process != nil {
		t.Error("the process was started")
	}
}

func TestWaitReady(t *testing.T) {
	errNotYet := errors.New("not yet")
	tests := []struct {
		name   string
		script string
		// readyAt is the probe call that succeeds (0: none does).
		readyAt int
		timeout time.Duration
		wantErr string
		wantIs  error
	}{
		{name: "ready on the third probe", script: "exec sleep 300", readyAt: 3},
		{name: "exits", script: "exit 7", wantErr: "java exited before it was ready: exit status 7"},
		{name: "bind failure", script: `echo "Failed to bind to 0.0.0.0:8000"; exec sleep 300`, wantIs: ErrAddrInUse},
		{name: "bind failure, then exits", script: `echo "Failed to bind to 0.0.0.0:8000"; exit 1`, wantIs: ErrAddrInUse},
		{name: "ctx ends", script: "exec sleep 300", timeout: time.Millisecond,
			wantErr: "wait for fake: context deadline exceeded (last: not yet)", wantIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startSh(t, tt.script, time.Hour)
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			calls := 0
			err := p.WaitReady(ctx, "fake", time.Millisecond, func(context.Context) error {
				calls++
				if calls == tt.readyAt {
					return nil
				}
				return errNotYet
			})
			switch {
			case tt.wantErr == "" && tt.wantIs == nil:
				if err != nil || calls != tt.readyAt {
					t.Errorf("WaitReady = %v after %d probes, want nil after %d", err, calls, tt.readyAt)
				}
			case tt.wantIs != nil && !errors.Is(err, tt.wantIs):
				t.Errorf("WaitReady = %v, want %v", err, tt.wantIs)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("WaitReady = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestJavaMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Java()
	if want := "install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; err == nil ||
		!strings.Contains(err.Error(), want) {
		t.Errorf("Java without java on PATH = %v, want an error saying %q", err, want)
	}
}
