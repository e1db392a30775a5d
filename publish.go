package postflight

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Publishing, as the API and the producer package see it: what Kafka
// acknowledged, and which events of a batch failed validation (the same
// Validate ingest runs). The producer (Kafka) lives in producer/.

// MaxPublishBatch is the most events one publish takes.
const MaxPublishBatch = 500

// PublishAck says where Kafka stored one published event.
type PublishAck struct {
	MessageSID string `json:"message_sid"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
}

// InvalidEvent is one event of a batch that failed validation.
type InvalidEvent struct {
	Index int         // position in the batch
	Err   *FieldError // the field at fault
}

// ValidationError lists every invalid event of a batch; a batch with one is
// not published at all.
type ValidationError struct {
	Events []InvalidEvent
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, min(len(e.Events), 5))
	for i, ie := range e.Events {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Events)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("events[%d].%s", ie.Index, ie.Err))
	}
	return "invalid events: " + strings.Join(parts, "; ")
}

// ValidateEvents checks every event as ingest does and returns a
// *ValidationError naming each invalid one, or nil.
func ValidateEvents(evs []Event, now time.Time, maxSkew time.Duration) error {
	var bad []InvalidEvent
	for i := range evs {
		if err := evs[i].Validate(now, maxSkew); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				fe = &FieldError{Field: "event", Reason: err.Error()}
			}
			bad = append(bad, InvalidEvent{Index: i, Err: fe})
		}
	}
	if len(bad) > 0 {
		return &ValidationError{Events: bad}
	}
	return nil
}
