package ingest

import (
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
)

// Causes of a pause.
const (
	pauseBreaker       = "breaker_open"         // DynamoDB failing server-side: the breaker is open
	pauseMisconfigured = "dynamodb_refused"     // DynamoDB refuses this process (access denied, no table)
	pauseStaleConfig   = "stale_account_config" // account configuration too old to write with
)

// pauses is why consumption is paused, by cause. While any cause holds, the
// consumer group's fetching is paused (the backlog waits in Kafka), Ready
// fails naming every cause, and the paused gauge says which. Each cause is
// logged at error level when it starts and at warn level when it ends.
type pauses struct {
	log     *slog.Logger
	pause   func() // group.PauseAll
	resume  func() // group.ResumeAll
	mu      sync.Mutex
	reasons map[string]string // cause → detail
}

func newPauses(log *slog.Logger, pause, resume func()) *pauses {
	return &pauses{log: log, pause: pause, resume: resume, reasons: map[string]string{}}
}

// set starts (or updates the detail of) a cause. pause is called with mu
// held so that pauses and resumes cannot reorder; sarama's PauseAll only
// takes its own leaf locks.
func (p *pauses) set(cause, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, had := p.reasons[cause]
	p.reasons[cause] = detail
	if !had {
		p.log.Error("ingest paused", "cause", cause, "detail", detail)
		if len(p.reasons) == 1 {
			p.pause()
		}
	}
}

// clear ends a cause; consumption resumes when none is left.
func (p *pauses) clear(cause string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, had := p.reasons[cause]; !had {
		return
	}
	delete(p.reasons, cause)
	p.log.Warn("ingest pause cause ended", "cause", cause, "still_paused_for", slices.Sorted(maps.Keys(p.reasons)))
	if len(p.reasons) == 0 {
		p.resume()
	}
}

// err returns nil, or an error naming every cause and its detail.
func (p *pauses) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range slices.Sorted(maps.Keys(p.reasons)) {
		errs = append(errs, errors.New("ingest paused: "+c+": "+p.reasons[c]))
	}
	return errors.Join(errs...)
}

// active reports whether cause holds.
func (p *pauses) active(cause string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.reasons[cause]
	return ok
}
