package localjvm

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrAddrInUse is what a launcher's start returns when a port it should
// listen on is taken.
var ErrAddrInUse = errors.New("address already in use")

// Java returns the path of java on PATH, or an error that says what to
// install.
func Java() (string, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("java not found on PATH: " +
			"install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
	}
	return java, nil
}

// Process is a JVM running in its own process group. Its methods are safe
// for concurrent use.
type Process struct {
	cmd         *exec.Cmd
	out         *Output
	stopTimeout time.Duration

	done    chan struct{} // closed once the JVM is reaped
	waitErr error         // cmd.Wait's result; read after done

	stopOnce sync.Once
	stopErr  error
}

// Start runs cmd (a JVM) with out as its standard output and error, in its
// own process group that, on Linux, the kernel kills when our process dies
// ([SysProcAttr]). ctx only decides whether it starts (not if ctx has
// ended): the JVM outlives it. stopTimeout is how long [Process.Stop] waits
// after SIGTERM before SIGKILL.
//
// The JVM then runs until Stop or Kill; a goroutine, the only one a Process
// owns, reaps it and ends with it.
func Start(ctx context.Context, cmd *exec.Cmd, out *Output, stopTimeout time.Duration) (*Process, error) {
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = SysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, out: out, stopTimeout: stopTimeout, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the JVM's process id, also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitReady calls probe every poll until it succeeds, and gives up as soon
// as the JVM exits, its output reports a bind failure, or ctx ends. It
// returns [ErrAddrInUse] on a bind failure, also one seen after the probe
// succeeded (whatever answered was not this JVM) or with the JVM gone; an
// error quoting the JVM's exit if it exited; and, if ctx ended, "wait for
// <what>: <context.Cause(ctx)> (last: <the probe's last error>)". It does
// not stop the JVM.
func (p *Process) WaitReady(ctx context.Context, what string, poll time.Duration, probe func(context.Context) error) error {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			if p.out.BindFailed() {
				return ErrAddrInUse
			}
			return fmt.Errorf("java exited before it was ready: %w", p.waitErr)
		case <-p.out.BindFailure():
			return ErrAddrInUse
		default:
		}
		err := probe(ctx)
		if err == nil {
			if p.out.BindFailed() {
				return ErrAddrInUse
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %w)", what, context.Cause(ctx), err)
		case <-p.done:
		case <-p.out.BindFailure():
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM to the JVM's process group, waits for it to exit, and
// sends SIGKILL when the stop timeout passes or ctx ends first. It returns
// once the JVM is reaped, with an error (quoting its last output) only if
// the JVM had already exited on its own. Later calls wait for the first and
// return its result; after Kill, Stop returns nil.
func (p *Process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("%s exited on its own: %w; output:\n%s", p.out.name, p.waitErr, p.out.Tail())
			return
		default:
		}
		p.signal(syscall.SIGTERM)
		grace := time.NewTimer(p.stopTimeout)
		defer grace.Stop()
		select {
		case <-p.done:
		case <-grace.C:
			p.out.log.Warn(p.out.name+" ignored SIGTERM; killing it", "pid", p.Pid())
			p.kill()
		case <-ctx.Done():
			p.kill()
		}
	})
	return p.stopErr
}

// Kill sends SIGKILL to the JVM's process group, as a crash (kill -9): no
// shutdown, no flush beyond what the OS already has. It returns once the
// JVM is reaped. A later Stop returns nil.
func (p *Process) Kill() {
	p.kill()
	p.stopOnce.Do(func() {})
}

// kill sends SIGKILL and waits until the JVM is reaped.
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
