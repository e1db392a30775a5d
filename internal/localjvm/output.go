package localjvm

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

const (
	// tailLines is how many lines of JVM output errors quote.
	tailLines = 40
	// maxLine splits lines longer than this.
	maxLine = 4096
)

// Output receives a JVM's stdout and stderr. It logs each line at debug
// level, keeps the last tailLines lines for error messages, and notices a
// line that says the listener failed to bind (DynamoDB Local's Jetty then
// keeps running, not listening, while whatever owns the port answers the
// readiness probe; Kafka exits). Its methods are safe for concurrent use.
type Output struct {
	log   *slog.Logger
	name  string   // the process, in log lines
	binds []string // substrings of a line that report a bind failure

	mu      sync.Mutex
	partial []byte
	lines   []string // ring of the last tailLines lines
	next    int      // index in lines of the oldest line once full

	bindOnce   sync.Once
	bindFailed chan struct{} // closed on a bind failure
}

// NewOutput returns an Output logging to log as name; a line containing any
// of bindMarkers is a bind failure.
func NewOutput(log *slog.Logger, name string, bindMarkers ...string) *Output {
	return &Output{log: log, name: name, binds: bindMarkers, bindFailed: make(chan struct{})}
}

// Write implements io.Writer; it never fails.
func (o *Output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, b...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			if len(o.partial) > maxLine {
				o.line(string(o.partial))
				o.partial = o.partial[:0]
			}
			return len(b), nil
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
}

// line records one line; o.mu is held.
func (o *Output) line(s string) {
	s = strings.TrimRight(s, "\r")
	o.log.Debug(o.name, "out", s)
	for _, m := range o.binds {
		if strings.Contains(s, m) {
			o.bindOnce.Do(func() { close(o.bindFailed) })
		}
	}
	if len(o.lines) < tailLines {
		o.lines = append(o.lines, s)
		return
	}
	o.lines[o.next] = s
	o.next = (o.next + 1) % tailLines
}

// Tail returns the last lines written, oldest first.
func (o *Output) Tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := append(append([]string(nil), o.lines[o.next:]...), o.lines[:o.next]...)
	if len(o.partial) > 0 {
		lines = append(lines, string(o.partial))
	}
	return strings.Join(lines, "\n")
}

// BindFailure is closed once a bind failure has been seen.
func (o *Output) BindFailure() <-chan struct{} { return o.bindFailed }

// BindFailed reports whether a bind failure has been seen.
func (o *Output) BindFailed() bool {
	select {
	case <-o.bindFailed:
		return true
	default:
		return false
	}
}
