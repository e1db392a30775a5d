package postflight

import "time"

// Message is the finalized record of one message: the state carried by its
// winning event (the final event with the highest sequence), amended by API
// corrections. Its JSON form is the API contract of DESIGN.md §3.
type Message struct {
	SID                 string            `json:"sid"`
	AccountSID          string            `json:"account_sid"`
	Status              Status            `json:"status"`
	Channel             Channel           `json:"channel"`
	Direction           Direction         `json:"direction"`
	From                string            `json:"from"`
	To                  string            `json:"to"`
	Body                *string           `json:"body,omitempty"`
	NumSegments         int32             `json:"num_segments"`
	NumMedia            int32             `json:"num_media"`
	PriceMicros         *int64            `json:"price_micros,omitempty"`
	PriceUnit           *string           `json:"price_unit,omitempty"`
	ErrorCode           *int32            `json:"error_code,omitempty"`
	MessagingServiceSID *string           `json:"messaging_service_sid,omitempty"`
	ContentSID          *string           `json:"content_sid,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
	DateCreated         time.Time         `json:"date_created"`
	DateSent            *time.Time        `json:"date_sent,omitempty"`
	DateUpdated         time.Time         `json:"date_updated"`
	Sequence            int64             `json:"sequence"`

	// Revision counts the changes applied to the stored record (events and
	// API corrections); the API derives its ETag from it. Not part of the JSON.
	Revision int64 `json:"-"`
}

// Event is one decoded lifecycle event (contracts/message_event.v2.avsc).
type Event struct {
	EventID             string
	AccountSID          string
	MessageSID          string
	Sequence            int64
	Status              Status
	Channel             Channel
	Direction           Direction
	From                string
	To                  string
	Body                *string
	NumSegments         int32
	NumMedia            int32
	PriceMicros         *int64
	PriceUnit           *string
	ErrorCode           *int32
	MessagingServiceSID *string
	ContentSID          *string
	Tags                map[string]string
	DateCreated         time.Time
	DateSent            *time.Time
	EventTime           time.Time
}

// Message returns the record this event leaves when it wins. Times are UTC;
// the event's event_time becomes date_updated.
func (e *Event) Message() Message {
	m := Message{
		SID:                 e.MessageSID,
		AccountSID:          e.AccountSID,
		Status:              e.Status,
		Channel:             e.Channel,
		Direction:           e.Direction,
		From:                e.From,
		To:                  e.To,
		Body:                e.Body,
		NumSegments:         e.NumSegments,
		NumMedia:            e.NumMedia,
		PriceMicros:         e.PriceMicros,
		PriceUnit:           e.PriceUnit,
		ErrorCode:           e.ErrorCode,
		MessagingServiceSID: e.MessagingServiceSID,
		ContentSID:          e.ContentSID,
		Tags:                e.Tags,
		DateCreated:         e.DateCreated.UTC(),
		DateUpdated:         e.EventTime.UTC(),
		Sequence:            e.Sequence,
	}
	if e.DateSent != nil {
		t := e.DateSent.UTC()
		m.DateSent = &t
	}
	if len(m.Tags) == 0 {
		m.Tags = nil
	}
	return m
}
