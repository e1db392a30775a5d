package kafkalocal

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

// output receives the JVM's stdout and stderr. It logs each line at debug
// level, keeps the last tailLines lines for error messages, and notices a
// listener that failed to bind (Start then retries on other ports).
type output struct {
	log *slog.Logger

	mu      sync.Mutex
	partial []byte
	lines   []string // ring of the last tailLines lines
	next    int      // index in lines of the oldest line once full

	bindOnce   sync.Once
	bindFailed chan struct{} // closed on a bind failure
}

func newOutput(log *slog.Logger) *output {
	return &output{log: log, bindFailed: make(chan struct{})}
}

// Write implements io.Writer; it never fails.
func (o *output) Write(b []byte) (int, error) {
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
func (o *output) line(s string) {
	s = strings.TrimRight(s, "\r")
	o.log.Debug("kafka", "out", s)
	if strings.Contains(s, "BindException") || strings.Contains(s, "Address already in use") {
		o.bindOnce.Do(func() { close(o.bindFailed) })
	}
	if len(o.lines) < tailLines {
		o.lines = append(o.lines, s)
		return
	}
	o.lines[o.next] = s
	o.next = (o.next + 1) % tailLines
}

// tail returns the last lines written, oldest first.
func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := append(append([]string(nil), o.lines[o.next:]...), o.lines[:o.next]...)
	if len(o.partial) > 0 {
		lines = append(lines, string(o.partial))
	}
	return strings.Join(lines, "\n")
}

// bindFailedNow reports whether a bind failure has been seen.
func (o *output) bindFailedNow() bool {
	select {
	case <-o.bindFailed:
		return true
	default:
		return false
	}
}
