package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/postflight/postflight"
)

// Publisher is what POST /v1/events needs: validate a batch as ingest would
// (a *postflight.ValidationError names each bad event) and publish it,
// returning once Kafka acknowledged every event. producer.Producer
// satisfies it.
type Publisher interface {
	Validate(evs []postflight.Event) error
	Publish(ctx context.Context, evs []postflight.Event) ([]postflight.PublishAck, error)
}

// Limits of one POST /v1/events request.
const (
	MaxEventsBodyBytes = 1 << 20                    // 1 MiB of JSON or NDJSON
	MaxEventsPerBatch  = postflight.MaxPublishBatch // events per request
	contentTypeNDJSON  = "application/x-ndjson"
)

// eventsRoute authenticates a POST /v1/events request (401), checks the
// write scope (403) and the token's rate limit (429). The accounts are in
// the body, so the handler checks them per event after parsing; the
// per-account limit, which protects an account's reads, does not apply.
func (s *Server) eventsRoute(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Authenticate(r)
		if err != nil {
			writeProblem(w, unauthorized())
			return
		}
		if !p.HasScope(ScopeWrite) {
			writeProblem(w, forbidden(fmt.Sprintf("the token lacks the %q scope", ScopeWrite)))
			return
		}
		if _, wait := s.limits.tokens.reserve(p.Name, time.Now()); wait > 0 {
			s.m.throttled.Add(r.Context(), 1, metric.WithAttributes(attribute.String("limit", "token")))
			pr := tooManyRequests(wait)
			pr.Detail = "the token rate limit is exhausted; " + pr.Detail
			writeProblem(w, pr)
			return
		}
		next(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

// postEvents publishes one event (application/json) or several
// (application/x-ndjson, one object per line). The batch is parsed and
// validated whole: any invalid event rejects it with a 400 naming
// events[i].field for each. 202 comes only after Kafka acknowledged every
// event.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Events == nil {
		p := serviceUnavailable(time.Minute)
		p.Detail = "this process does not publish events (no Kafka producer configured)"
		writeProblem(w, p)
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != contentTypeNDJSON) {
		writeProblem(w, unsupportedMediaType("application/json", contentTypeNDJSON))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventsBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, payloadTooLarge(MaxEventsBodyBytes))
			return
		}
		writeProblem(w, badRequest("the body could not be read", InvalidParam{Name: "body", Reason: "read failed"}))
		return
	}
	var lines [][]byte
	if mt == "application/json" {
		lines = [][]byte{data}
	} else {
		for l := range bytes.SplitSeq(data, []byte{'\n'}) {
			if l = bytes.TrimSpace(l); len(l) > 0 {
				lines = append(lines, l)
			}
		}
	}
	switch {
	case len(lines) == 0 || len(bytes.TrimSpace(lines[0])) == 0:
		writeProblem(w, badRequest("no events in the body", InvalidParam{Name: "body", Reason: "want one JSON object, or NDJSON of at least one"}))
		return
	case len(lines) > MaxEventsPerBatch:
		writeProblem(w, badRequest(fmt.Sprintf("%d events; at most %d per request", len(lines), MaxEventsPerBatch),
			InvalidParam{Name: "body", Reason: fmt.Sprintf("at most %d events", MaxEventsPerBatch)}))
		return
	}
	evs := make([]postflight.Event, len(lines))
	var params []InvalidParam
	notObject := make([]bool, len(lines))
	for i, l := range lines {
		var errs []*postflight.FieldError
		evs[i], errs = parseEvent(l)
		for _, fe := range errs {
			params = append(params, InvalidParam{Name: eventParam(i, fe.Field), Reason: fe.Reason})
			if fe.Field == "" {
				notObject[i] = true
			}
		}
	}
	// Every event is validated exactly as ingest validates; for one that
	// did not parse, the domain's finding is added unless it names a field
	// already named.
	if err := s.cfg.Events.Validate(evs); err != nil {
		var ve *postflight.ValidationError
		if !errors.As(err, &ve) {
			s.log.Error("validate events", "err", err)
			writeProblem(w, internalError())
			return
		}
		for _, ie := range ve.Events {
			name := eventParam(ie.Index, ie.Err.Field)
			if !notObject[ie.Index] && !slices.ContainsFunc(params, func(p InvalidParam) bool { return p.Name == name }) {
				params = append(params, InvalidParam{Name: name, Reason: ie.Err.Reason})
			}
		}
	}
	if len(params) > 0 {
		sortParams(params)
		writeProblem(w, badRequest(fmt.Sprintf("%d invalid parameter(s) in %d event(s); nothing was published", len(params), len(lines)), params...))
		return
	}
	p, _ := PrincipalFrom(r.Context())
	for i := range evs {
		if !p.HasAccount(evs[i].AccountSID) {
			writeProblem(w, forbidden(fmt.Sprintf("the token is not granted account %s (events[%d])", evs[i].AccountSID, i)))
			return
		}
	}
	acks, err := s.cfg.Events.Publish(r.Context(), evs)
	if err != nil {
		var ve *postflight.ValidationError
		if errors.As(err, &ve) { // the clock moved between Validate and Publish
			for _, ie := range ve.Events {
				params = append(params, InvalidParam{Name: fmt.Sprintf("events[%d].%s", ie.Index, ie.Err.Field), Reason: ie.Err.Reason})
			}
			writeProblem(w, badRequest("invalid events; nothing was published", params...))
			return
		}
		s.log.Warn("publish events", "events", len(evs), "err", err)
		pr := serviceUnavailable(time.Second)
		pr.Detail = "Kafka did not acknowledge every event; sending the same batch again is safe"
		writeProblem(w, pr)
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		Events []postflight.PublishAck `json:"events"`
	}{acks})
}

// eventParam names field of the i-th event, or the event itself when field
// is empty (the line is not a JSON object).
func eventParam(i int, field string) string {
	if field == "" {
		return fmt.Sprintf("events[%d]", i)
	}
	return fmt.Sprintf("events[%d].%s", i, field)
}

// sortParams orders invalid_params by event index, then field, so the
// response is the same whatever order the checks ran in.
func sortParams(ps []InvalidParam) {
	idx := func(name string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(name[:max(0, strings.IndexByte(name, ']'))], "events["))
		return n
	}
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && idx(ps[j].Name) < idx(ps[j-1].Name); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// eventFields are the members of an event object: the fields of the newest
// contract schema (contracts/message_event.v2.avsc), snake_case.
var eventFields = map[string]bool{
	"event_id": true, "account_sid": true, "message_sid": true, "sequence": true, "status": true,
	"channel": true, "direction": true, "from": true, "to": true, "body": true, "num_segments": true,
	"num_media": true, "price_micros": true, "price_unit": true, "error_code": true,
	"messaging_service_sid": true, "date_created": true, "date_sent": true, "event_time": true,
	"content_sid": true, "tags": true,
}

// parseEvent reads one event object. Names are exact (case-sensitive), each
// given once; optional members may be omitted or null; enums are the
// lowercase API names; times RFC 3339. It returns every problem it finds.
func parseEvent(data []byte) (postflight.Event, []*postflight.FieldError) {
	var ev postflight.Event
	var errs []*postflight.FieldError
	fail := func(field, reason string) { errs = append(errs, &postflight.FieldError{Field: field, Reason: reason}) }
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		fail("", "want a JSON object")
		return ev, errs
	}
	raw := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			fail("", "not valid JSON")
			return ev, errs
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			fail("", "not valid JSON")
			return ev, errs
		}
		switch {
		case !eventFields[name]:
			fail(truncate(name, 64), "not a field of an event (names are case-sensitive)")
		case raw[name] != nil:
			fail(name, "given more than once")
		default:
			raw[name] = v
		}
	}
	if _, err := dec.Token(); err != nil {
		fail("", "not valid JSON")
		return ev, errs
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		fail("", "trailing data after the JSON object")
	}
	present := func(name string, required bool) json.RawMessage {
		v := raw[name]
		if v == nil || string(v) == "null" {
			if required {
				fail(name, "required")
			}
			return nil
		}
		return v
	}
	str := func(name string, required bool) *string {
		v := present(name, required)
		if v == nil {
			return nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			fail(name, "want a string")
			return nil
		}
		return &s
	}
	integer := func(name string, required bool, bits int) *int64 {
		v := present(name, required)
		if v == nil {
			return nil
		}
		n, err := strconv.ParseInt(string(v), 10, bits)
		if err != nil {
			fail(name, fmt.Sprintf("want an integer of %d bits", bits))
			return nil
		}
		return &n
	}
	when := func(name string, required bool) *time.Time {
		s := str(name, required)
		if s == nil {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, *s)
		if err != nil {
			fail(name, "want an RFC 3339 time")
			return nil
		}
		t = t.UTC()
		return &t
	}
	set := func(dst *string, s *string) {
		if s != nil {
			*dst = *s
		}
	}
	set(&ev.EventID, str("event_id", true))
	set(&ev.AccountSID, str("account_sid", true))
	set(&ev.MessageSID, str("message_sid", true))
	if n := integer("sequence", true, 64); n != nil {
		ev.Sequence = *n
	}
	if s := str("status", true); s != nil {
		if err := ev.Status.UnmarshalText([]byte(*s)); err != nil {
			fail("status", "unknown status "+strconv.Quote(truncate(*s, 32))+" (lowercase, e.g. delivered)")
		}
	}
	if s := str("channel", true); s != nil {
		if err := ev.Channel.UnmarshalText([]byte(*s)); err != nil {
			fail("channel", "unknown channel "+strconv.Quote(truncate(*s, 32))+" (sms, mms, whatsapp, rcs)")
		}
	}
	if s := str("direction", true); s != nil {
		if err := ev.Direction.UnmarshalText([]byte(*s)); err != nil {
			fail("direction", "unknown direction "+strconv.Quote(truncate(*s, 32))+" (inbound, outbound_api, outbound_call, outbound_reply)")
		}
	}
	set(&ev.From, str("from", true))
	set(&ev.To, str("to", true))
	ev.Body = str("body", false)
	ev.NumSegments = 1 // the contract's defaults
	if n := integer("num_segments", false, 32); n != nil {
		ev.NumSegments = int32(*n)
	}
	if n := integer("num_media", false, 32); n != nil {
		ev.NumMedia = int32(*n)
	}
	ev.PriceMicros = integer("price_micros", false, 64)
	ev.PriceUnit = str("price_unit", false)
	if n := integer("error_code", false, 32); n != nil {
		c := int32(*n)
		ev.ErrorCode = &c
	}
	ev.MessagingServiceSID = str("messaging_service_sid", false)
	ev.ContentSID = str("content_sid", false)
	if t := when("date_created", true); t != nil {
		ev.DateCreated = *t
	}
	ev.DateSent = when("date_sent", false)
	if t := when("event_time", true); t != nil {
		ev.EventTime = *t
	}
	if v := present("tags", false); v != nil {
		// Each value must be a JSON string: json.Unmarshal would take a
		// null one as "" without an error.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(v, &raw); err != nil || v[0] != '{' {
			fail("tags", "want an object of strings")
		} else {
			ev.Tags = make(map[string]string, len(raw))
			for k, r := range raw {
				var tag string
				if len(r) == 0 || r[0] != '"' || json.Unmarshal(r, &tag) != nil {
					fail("tags", fmt.Sprintf("tag %q: want a string", k))
					break
				}
				ev.Tags[k] = tag
			}
		}
	}
	return ev, errs
}
