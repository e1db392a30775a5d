package postflight

import "fmt"

// Status is a message's lifecycle state. The numeric values follow the symbol
// order of the Avro enum in contracts/message_event.v2.avsc, so a decoded
// enum index converts directly.
type Status uint8

const (
	StatusAccepted Status = iota
	StatusScheduled
	StatusQueued
	StatusSending
	StatusSent
	StatusDelivered
	StatusUndelivered
	StatusFailed
	StatusReceiving
	StatusReceived
	StatusRead
	StatusCanceled
	numStatuses
)

var statusNames = [...]string{"accepted", "scheduled", "queued", "sending", "sent", "delivered",
	"undelivered", "failed", "receiving", "received", "read", "canceled"}

// IsFinal reports whether a message in this status is postflight: its record
// is stored. Non-final events are counted and skipped.
func (s Status) IsFinal() bool {
	switch s {
	case StatusDelivered, StatusUndelivered, StatusFailed, StatusReceived, StatusRead, StatusCanceled:
		return true
	}
	return false
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool { return s < numStatuses }

// String returns the lowercase API name, e.g. "delivered".
func (s Status) String() string {
	if s.Valid() {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus parses the lowercase API name of a status.
func ParseStatus(name string) (Status, bool) {
	for i, n := range statusNames {
		if n == name {
			return Status(i), true
		}
	}
	return 0, false
}

// Channel is the network a message travels on.
type Channel uint8

const (
	ChannelSMS Channel = iota
	ChannelMMS
	ChannelWhatsApp
	ChannelRCS
	numChannels
)

var channelNames = [...]string{"sms", "mms", "whatsapp", "rcs"}

// Valid reports whether c is one of the defined channels.
func (c Channel) Valid() bool { return c < numChannels }

// String returns the lowercase API name, e.g. "whatsapp".
func (c Channel) String() string {
	if c.Valid() {
		return channelNames[c]
	}
	return fmt.Sprintf("channel(%d)", uint8(c))
}

// Direction says who originated a message.
type Direction uint8

const (
	DirectionInbound Direction = iota
	DirectionOutboundAPI
	DirectionOutboundCall
	DirectionOutboundReply
	numDirections
)

var directionNames = [...]string{"inbound", "outbound_api", "outbound_call", "outbound_reply"}

// Valid reports whether d is one of the defined directions.
func (d Direction) Valid() bool { return d < numDirections }

// String returns the lowercase API name, e.g. "outbound_api".
func (d Direction) String() string {
	if d.Valid() {
		return directionNames[d]
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// MarshalText implements encoding.TextMarshaler with the lowercase API name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalText implements encoding.TextMarshaler with the lowercase API name.
func (c Channel) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// MarshalText implements encoding.TextMarshaler with the lowercase API name.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler for the lowercase API name.
func (s *Status) UnmarshalText(b []byte) error {
	v, ok := ParseStatus(string(b))
	if !ok {
		return fmt.Errorf("unknown status %q", b)
	}
	*s = v
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler for the lowercase API name.
func (c *Channel) UnmarshalText(b []byte) error {
	for i, n := range channelNames {
		if n == string(b) {
			*c = Channel(i)
			return nil
		}
	}
	return fmt.Errorf("unknown channel %q", b)
}

// UnmarshalText implements encoding.TextUnmarshaler for the lowercase API name.
func (d *Direction) UnmarshalText(b []byte) error {
	for i, n := range directionNames {
		if n == string(b) {
			*d = Direction(i)
			return nil
		}
	}
	return fmt.Errorf("unknown direction %q", b)
}
