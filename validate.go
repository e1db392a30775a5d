package postflight

import (
	"time"
	"unicode/utf8"
)

// Limits of a valid event. Events outside them are dead-lettered.
const (
	MaxAddressLen = 256 // from and to
	MaxTags       = 10
	MaxTagKeyLen  = 128
	MaxTagValLen  = 256
	MaxSegments   = 10_000
	MaxMedia      = 100
)

// Epoch is the earliest date_created (and event_time) Postflight accepts:
// anything earlier is a producer bug, not a message.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate checks an event against the contract. now and maxSkew bound how
// far in the future date_created and event_time may be. The first problem
// found is returned as a *FieldError.
func (e *Event) Validate(now time.Time, maxSkew time.Duration) error {
	switch {
	case !validUUID(e.EventID):
		return fieldErr("event_id", "not a UUID: %.40q", e.EventID)
	case !ValidAccountSID(e.AccountSID):
		return fieldErr("account_sid", "want AC and 32 lowercase hex digits, got %.40q", e.AccountSID)
	case !ValidMessageSID(e.MessageSID):
		return fieldErr("message_sid", "want SM or MM and 32 lowercase hex digits, got %.40q", e.MessageSID)
	case e.Sequence < 0:
		return fieldErr("sequence", "negative: %d", e.Sequence)
	case !e.Status.Valid():
		return fieldErr("status", "unknown status %d", e.Status)
	case !e.Channel.Valid():
		return fieldErr("channel", "unknown channel %d", e.Channel)
	case !e.Direction.Valid():
		return fieldErr("direction", "unknown direction %d", e.Direction)
	}
	if err := validAddress("from", e.From); err != nil {
		return err
	}
	if err := validAddress("to", e.To); err != nil {
		return err
	}
	switch {
	case e.Body != nil && !utf8.ValidString(*e.Body):
		return fieldErr("body", "not valid UTF-8")
	case e.NumSegments < 0 || e.NumSegments > MaxSegments:
		return fieldErr("num_segments", "out of range [0,%d]: %d", MaxSegments, e.NumSegments)
	case e.NumMedia < 0 || e.NumMedia > MaxMedia:
		return fieldErr("num_media", "out of range [0,%d]: %d", MaxMedia, e.NumMedia)
	case e.PriceUnit != nil && !validCurrency(*e.PriceUnit):
		return fieldErr("price_unit", "not an ISO 4217 code: %.20q", *e.PriceUnit)
	case e.ErrorCode != nil && *e.ErrorCode < 0:
		return fieldErr("error_code", "negative: %d", *e.ErrorCode)
	case e.MessagingServiceSID != nil && !validSID(*e.MessagingServiceSID, "MG", "MG"):
		return fieldErr("messaging_service_sid", "want MG and 32 lowercase hex digits, got %.40q", *e.MessagingServiceSID)
	case e.ContentSID != nil && !validSID(*e.ContentSID, "HX", "HX"):
		return fieldErr("content_sid", "want HX and 32 lowercase hex digits, got %.40q", *e.ContentSID)
	case len(e.Tags) > MaxTags:
		return fieldErr("tags", "%d keys, at most %d", len(e.Tags), MaxTags)
	}
	for k, v := range e.Tags {
		if k == "" || len(k) > MaxTagKeyLen || len(v) > MaxTagValLen || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fieldErr("tags", "key %.40q: keys 1-%d bytes, values up to %d bytes, UTF-8", k, MaxTagKeyLen, MaxTagValLen)
		}
	}
	latest := now.Add(maxSkew)
	if err := validTime("date_created", e.DateCreated, latest); err != nil {
		return err
	}
	if err := validTime("event_time", e.EventTime, latest); err != nil {
		return err
	}
	if e.DateSent != nil {
		if err := validTime("date_sent", *e.DateSent, latest); err != nil {
			return err
		}
	}
	return nil
}

func validTime(field string, t, latest time.Time) error {
	if t.Before(Epoch) {
		return fieldErr(field, "before %s: %s", Epoch.Format(time.DateOnly), t.UTC().Format(time.RFC3339Nano))
	}
	if t.After(latest) {
		return fieldErr(field, "in the future: %s", t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func validAddress(field, s string) error {
	if s == "" || len(s) > MaxAddressLen || !utf8.ValidString(s) {
		return fieldErr(field, "want 1-%d bytes of UTF-8, got %d bytes", MaxAddressLen, len(s))
	}
	return nil
}

func validCurrency(s string) bool {
	return len(s) == 3 && isUpper(s[0]) && isUpper(s[1]) && isUpper(s[2])
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// validUUID accepts the canonical 8-4-4-4-12 hex form, either case.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		}
	}
	return true
}
