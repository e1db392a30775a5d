package postflight

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: no such message for that account (or it is past retention).
	ErrNotFound = errors.New("not found")
	// ErrPreconditionFailed: an If-Match ETag no longer matches the record.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrConflict: concurrent changes kept winning over the optimistic
	// retries; the caller may retry the whole request.
	ErrConflict = errors.New("concurrent change, retry")
	// ErrUnavailable: the store failed in a way worth retrying later
	// (throttling, 5xx, network). Errors that match it with errors.Is wrap
	// the cause.
	ErrUnavailable = errors.New("store unavailable")
	// ErrCorruptRecord: a stored record cannot be read (unknown format,
	// truncated or overlong data). The store counts and logs it where it
	// finds it.
	ErrCorruptRecord = errors.New("stored record is corrupt")
	// ErrStaleConfig: account configuration (retention, shard schedules)
	// has not been reloaded for longer than the bound every process is
	// assumed to keep; writing with it could use a retention or shard count
	// that no longer holds.
	ErrStaleConfig = errors.New("account configuration is stale")
)

// FieldError says which field of an event or request is invalid and why. It
// is the reason carried to the dead-letter topic and to problem+json bodies.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
