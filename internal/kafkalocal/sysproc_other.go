//go:build !linux

package kafkalocal

import "syscall"

// sysProcAttr puts the JVM in its own process group so Stop can signal all
// of it. Outside Linux there is no parent-death signal: call Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
