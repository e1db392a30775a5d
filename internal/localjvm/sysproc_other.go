//go:build !linux

package localjvm

import "syscall"

// SysProcAttr puts the JVM in its own process group so Stop can signal all
// of it. Outside Linux there is no parent-death signal: call Stop.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
