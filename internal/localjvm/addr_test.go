package localjvm

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr     string
		wantHost string
		wantPort int
		wantErr  string
	}{
		{addr: "localhost:8000", wantHost: "localhost", wantPort: 8000},
		{addr: ":0", wantHost: "127.0.0.1", wantPort: 0},
		{addr: "0.0.0.0:9092", wantHost: "127.0.0.1", wantPort: 9092},
		{addr: "[::]:9092", wantHost: "127.0.0.1", wantPort: 9092},
		{addr: "[::1]:1", wantHost: "::1", wantPort: 1},
		{addr: "8000", wantErr: "missing port"},
		{addr: "127.0.0.1:99999", wantErr: "bad port"},
		{addr: "127.0.0.1:x", wantErr: "bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			host, port, err := SplitAddr(tt.addr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("SplitAddr = %q, %d, %v; want an error containing %q", host, port, err, tt.wantErr)
				}
				return
			}
			if err != nil || host != tt.wantHost || port != tt.wantPort {
				t.Errorf("SplitAddr = %q, %d, %v; want %q, %d", host, port, err, tt.wantHost, tt.wantPort)
			}
		})
	}
}

func TestFreePortCheckFree(t *testing.T) {
	port, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckFree("127.0.0.1", port, "thing"); err != nil {
		t.Errorf("CheckFree on a free port: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	err = CheckFree("127.0.0.1", taken, "thing")
	if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), "(is another thing running?)") {
		t.Errorf("CheckFree on a taken port = %v, want ErrAddrInUse naming the thing", err)
	}
}
