package localjvm

import "syscall"

// SysProcAttr puts the JVM in its own process group (so Stop can signal all
// of it) and has the kernel SIGKILL it if our process dies without Stop.
//
// Pdeathsig fires when the OS thread that forked the JVM exits, not the
// process; the Go runtime only ends threads that a goroutine locked and did
// not unlock, and the launchers never lock one, so in practice it fires when
// the Go process dies (including a `go test` timeout).
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
