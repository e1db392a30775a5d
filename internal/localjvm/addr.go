package localjvm

import (
	"fmt"
	"net"
	"strconv"
)

// SplitAddr splits host:port, port 0 to 65535. An empty or wildcard host
// (0.0.0.0, ::) becomes 127.0.0.1: the address names an endpoint to
// connect to.
func SplitAddr(addr string) (host string, port int, err error) {
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

// FreePort asks the kernel for a free TCP port on host ("" for every
// interface).
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// CheckFree fails with [ErrAddrInUse] if port is taken on host ("" for
// every interface), naming what is likely to hold it (another one of what).
// A launcher checks a port it was given before it spends a JVM start on it.
func CheckFree(host string, port int, what string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d: %w (is another %s running?)", port, ErrAddrInUse, what)
	}
	return ln.Close()
}
