package api

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/postflight/postflight/ingest"
)

// FuzzParseEvent: parsing any line never panics, and an event the route
// would accept (parsed without findings, valid by ingest's rule) encodes
// with the newest contract and decodes through ingest's own decoder to the
// same event (times at the contract's millisecond precision).
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"123e4567-e89b-42d3-a456-426614174000","account_sid":"AC0123456789abcdef0123456789abcdef","message_sid":"SM0123456789abcdef0123456789abcdef","sequence":3,"status":"delivered","channel":"sms","direction":"outbound_api","from":"+1","to":"+2","date_created":"2025-06-01T12:00:00Z","event_time":"2025-06-01T12:00:01.123456Z"}`,
		`{"event_id":"123e4567-e89b-42d3-a456-426614174000","account_sid":"AC0123456789abcdef0123456789abcdef","message_sid":"MM0123456789abcdef0123456789abcdef","sequence":0,"status":"read","channel":"whatsapp","direction":"inbound","from":"a","to":"b","body":null,"num_segments":null,"num_media":2,"price_micros":-5,"price_unit":"EUR","error_code":30001,"messaging_service_sid":"MG0123456789abcdef0123456789abcdef","content_sid":"HX0123456789abcdef0123456789abcdef","tags":{"k":"v"},"date_created":"2025-06-01T12:00:00+02:00","date_sent":"2025-06-01T10:00:00.5Z","event_time":"2025-06-01T12:00:01Z"}`,
		`{"sequence":"3"}`, `{"tags":[]}`, `[]`, `{`, `{"a":1}{"b":2}`, `{"status":"DELIVERED","status":"read"}`,
	} {
		f.Add([]byte(s))
	}
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 100*365*24*time.Hour, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, errs := parseEvent(data)
		if len(errs) > 0 || ev.Validate(time.Now(), 100*365*24*time.Hour) != nil {
			return
		}
		v, err := ingest.Encode(ingest.SchemaIDv2, &ev)
		if err != nil {
			t.Fatalf("an accepted event does not encode: %v", err)
		}
		got, err := dec.Decode(context.Background(), v)
		if err != nil {
			t.Fatalf("an accepted event does not decode: %v", err)
		}
		want := ev
		want.DateCreated = want.DateCreated.Truncate(time.Millisecond)
		want.EventTime = want.EventTime.Truncate(time.Millisecond)
		if want.DateSent != nil {
			ds := want.DateSent.Truncate(time.Millisecond)
			want.DateSent = &ds
			if got.DateSent != nil {
				gs := got.DateSent.UTC()
				got.DateSent = &gs
			}
		}
		if len(want.Tags) == 0 {
			want.Tags, got.Tags = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
		}
	})
}
