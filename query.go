package postflight

import "time"

// ListQuery selects one account's messages created in [Start, End), newest
// first, optionally filtered by To, From and Statuses.
type ListQuery struct {
	Account    string
	Start, End time.Time
	To, From   string
	Statuses   []Status
	PageSize   int
	// After resumes a previous page: only messages strictly older (in
	// date_created, then SID order) than this index sort key are returned.
	After string
}

// ListPage is one page of a list: exactly PageSize messages unless it is the
// last page. Last is the index sort key of the last message, for the next
// page's After; More says whether another page exists.
type ListPage struct {
	Messages []Message
	Last     string
	More     bool
}

// Patch is an API correction of a stored message. A nil field is left alone.
type Patch struct {
	Redact      bool    // set the body to "" for good
	PriceMicros *int64  // correct the price; pins it against later events
	PriceUnit   *string // correct the currency; pins it too
}

// Retention bounds of DESIGN.md §3, in days.
const (
	MinRetentionDays = 1
	MaxRetentionDays = 3650
)
