package postflight

// WriteOutcome is what became of one message handed to the store.
type WriteOutcome uint8

const (
	// Applied: the message's record now holds this event's state.
	Applied WriteOutcome = iota
	// Superseded: the stored record already holds this or a higher sequence.
	Superseded
	// Tombstoned: the message was deleted; its tombstone wins.
	Tombstoned
	// Expired: date_created is already past the account's retention, so the
	// record would be hidden and deleted at once, or older than the horizon
	// of a retention the account had before (TTL may have removed its record,
	// and writing it again would undo a redaction or a higher sequence);
	// nothing is written.
	Expired
	// Rejected: DynamoDB refuses the item itself (too large, invalid). Retrying
	// cannot help: the event goes to the dead-letter topic with Err.
	Rejected
	// Throttled: DynamoDB asked us to slow down; retry later with less concurrency.
	Throttled
	// Unavailable: a 5xx, network or capacity failure; retry, and count it
	// toward the circuit breaker.
	Unavailable
	// Misconfigured: DynamoDB refuses this process, not the item (access
	// denied, table missing, credentials refused). Retry slowly and say so
	// loudly (ingest pauses and fails readiness); not the breaker's concern.
	Misconfigured
)

// NumWriteOutcomes is the number of WriteOutcome values (for arrays indexed
// by outcome).
const NumWriteOutcomes = int(Misconfigured) + 1

var outcomeNames = [...]string{"applied", "superseded", "tombstoned", "expired", "rejected", "throttled", "unavailable", "misconfigured"}

func (o WriteOutcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Done reports whether the outcome is final for the event: its offset may be
// committed (after a Rejected event is dead-lettered).
func (o WriteOutcome) Done() bool { return o <= Rejected }

// WriteResult is the outcome of one message of a batch, with the error
// behind a Rejected, Throttled or Unavailable outcome.
type WriteResult struct {
	Outcome WriteOutcome
	Err     error
}
