package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// ProgressStatus is a snapshot of a running test for the progress line.
// Counts are cumulative; the line shows rates between snapshots.
type ProgressStatus struct {
	Elapsed time.Duration
	Total   time.Duration // planned duration
	Writes  int64
	Reads   int64
	Errors  int64
	Lag     int64 // consumer lag in records; < 0: unknown
}

// Progress writes a live, single-line status (rates, lag, errors, time left)
// that rewrites itself in place. It writes only when its writer is a
// terminal; otherwise every method is a no-op, so logs and pipes stay clean.
// A Progress is not safe for concurrent use: one goroutine owns it (Run).
type Progress struct {
	w       io.Writer
	enabled bool
	prev    ProgressStatus
	printed bool
}

// NewProgress returns a progress line on w, enabled when IsTerminal(w).
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, enabled: IsTerminal(w)}
}

// IsTerminal reports whether w is a character device (a terminal) rather
// than a file or pipe.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Update rewrites the line with s.
func (p *Progress) Update(s ProgressStatus) {
	if !p.enabled {
		return
	}
	line := FormatProgress(p.prev, s)
	p.prev = s
	p.printed = true
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
}

// Done ends the line, so that what follows starts on a fresh one.
func (p *Progress) Done() {
	if p.enabled && p.printed {
		fmt.Fprintln(p.w)
		p.printed = false
	}
}

// Run updates the line every interval with status() until ctx is done,
// then ends it. It blocks; run it on a goroutine the caller waits for.
func (p *Progress) Run(ctx context.Context, interval time.Duration, status func() ProgressStatus) {
	if !p.enabled {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	defer p.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Update(status())
		}
	}
}

// FormatProgress returns the progress line for cur, with rates since prev.
func FormatProgress(prev, cur ProgressStatus) string {
	var wps, rps float64
	if dt := (cur.Elapsed - prev.Elapsed).Seconds(); dt > 0 {
		wps = float64(cur.Writes-prev.Writes) / dt
		rps = float64(cur.Reads-prev.Reads) / dt
	}
	lag := "?"
	if cur.Lag >= 0 {
		lag = fmt.Sprint(cur.Lag)
	}
	left := max(cur.Total-cur.Elapsed, 0).Round(time.Second)
	return fmt.Sprintf("%s/%s  writes %.0f/s  reads %.0f/s  lag %s  errors %d  left %s",
		cur.Elapsed.Round(time.Second), cur.Total.Round(time.Second), wps, rps, lag, cur.Errors, left)
}
