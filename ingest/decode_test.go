package ingest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflight/postflight"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func sampleEvent() postflight.Event {
	body, unit, price := "hi there", "USD", int64(-7500)
	content := "HX" + strings.Repeat("c", 32)
	sent := testNow.Add(-time.Minute)
	return postflight.Event{
		EventID: "4f1c2f1e-8a3b-4c7e-9d2a-0b1c2d3e4f50", AccountSID: "AC" + strings.Repeat("a", 32),
		MessageSID: "SM" + strings.Repeat("b", 32), Sequence: 3, Status: postflight.StatusDelivered,
		Channel: postflight.ChannelWhatsApp, Direction: postflight.DirectionOutboundAPI,
		From: "+15550001111", To: "+15550002222", Body: &body, NumSegments: 1,
		PriceMicros: &price, PriceUnit: &unit, ContentSID: &content, Tags: map[string]string{"k": "v"},
		DateCreated: testNow.Add(-2 * time.Minute), DateSent: &sent, EventTime: testNow.Add(-time.Second),
	}
}

func newTestDecoder() *Decoder {
	return NewDecoder(StaticSchemas{}, 15*time.Minute, func() time.Time { return testNow })
}

func TestDecodeRoundTrip(t *testing.T) {
	d := newTestDecoder()
	for _, tc := range []struct {
		name string
		id   uint32
	}{{"v1", SchemaIDv1}, {"v2", SchemaIDv2}} {
		t.Run(tc.name, func(t *testing.T) {
			ev := sampleEvent()
			b, err := Encode(tc.id, &ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Decode(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.id == SchemaIDv1 { // v1 has neither: the reader fills the defaults
				if got.ContentSID != nil || len(got.Tags) != 0 {
					t.Fatalf("v1 event decoded with v2 fields: %v %v", got.ContentSID, got.Tags)
				}
				ev.ContentSID, ev.Tags, got.Tags = nil, nil, nil
			}
			if got.MessageSID != ev.MessageSID || got.Sequence != ev.Sequence || got.Status != ev.Status ||
				*got.Body != *ev.Body || *got.PriceMicros != *ev.PriceMicros || !got.DateCreated.Equal(ev.DateCreated) ||
				!got.DateSent.Equal(*ev.DateSent) || got.Channel != ev.Channel || got.Tags["k"] != ev.Tags["k"] {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, ev)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	d := newTestDecoder()
	ev := sampleEvent()
	good, _ := Encode(SchemaIDv2, &ev)
	withID := func(id uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[1:], id)
		return b
	}
	mutate := func(f func(*postflight.Event)) []byte {
		e := sampleEvent()
		f(&e)
		b, err := Encode(SchemaIDv2, &e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		value []byte
		stage string
		want  string
	}{
		{"empty", nil, "frame", "not Confluent"},
		{"json", []byte(`{"sid":"x"}`), "frame", "0x7b"},
		{"unknown schema", withID(99), "schema", "unknown schema id 99"},
		{"truncated", good[:len(good)-3], "avro", "truncated"},
		{"trailing", append(append([]byte(nil), good...), 0, 0), "avro", "trailing"},
		{"bad sid", mutate(func(e *postflight.Event) { e.MessageSID = "SMnothex" }), "validate", "message_sid"},
		{"negative count", mutate(func(e *postflight.Event) { e.NumMedia = -1 }), "validate", "num_media"},
		{"far future", mutate(func(e *postflight.Event) { e.DateCreated = testNow.Add(48 * time.Hour) }), "validate", "date_created: in the future"},
		{"negative sequence", mutate(func(e *postflight.Event) { e.Sequence = -5 }), "validate", "sequence"},
		{"bad currency", mutate(func(e *postflight.Event) { u := "usd"; e.PriceUnit = &u }), "validate", "price_unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Decode(context.Background(), tc.value)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a *DecodeError", err)
			}
			if de.Stage != tc.stage || !strings.Contains(de.Error(), tc.want) {
				t.Fatalf("got %q (stage %s), want stage %s containing %q", de.Error(), de.Stage, tc.stage, tc.want)
			}
		})
	}
}

// FuzzDecode: no input makes the decoder panic, and whatever it accepts is
// a valid event that encodes back to something it accepts again.
func FuzzDecode(f *testing.F) {
	ev := sampleEvent()
	for _, id := range []uint32{SchemaIDv1, SchemaIDv2} {
		b, _ := Encode(id, &ev)
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 0, 2})
	f.Add([]byte{0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	d := newTestDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := d.Decode(context.Background(), b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("static schemas gave a transient error: %v", err)
			}
			return
		}
		if err := got.Validate(testNow, 15*time.Minute); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		again, err := Encode(SchemaIDv2, &got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Decode(context.Background(), again); err != nil {
			t.Fatalf("re-encoded event rejected: %v", err)
		}
	})
}

// TestSchemaRegistry resolves schema IDs through a Confluent Schema Registry
// REST API. The registry here is a small in-test HTTP server (no registry
// runs on this machine) that serves GET /schemas/ids/{id} like the real one.
func TestSchemaRegistry(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var body string
		switch r.URL.Path {
		case "/schemas/ids/41":
			body = schemaV1JSON
		case "/schemas/ids/42":
			body = schemaV2JSON
		default:
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error_code":40403,"message":"Schema not found"}`)
			return
		}
		b, _ := json.Marshal(map[string]string{"schema": body})
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	src, err := NewRegistrySchemas(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(src, 15*time.Minute, func() time.Time { return testNow })
	ev := sampleEvent()
	for _, tc := range []struct{ builtin, registry uint32 }{{SchemaIDv1, 41}, {SchemaIDv2, 42}} {
		b, _ := Encode(tc.builtin, &ev)
		binary.BigEndian.PutUint32(b[1:], tc.registry)
		for range 3 { // cached after the first
			got, err := d.Decode(context.Background(), b)
			if err != nil || got.MessageSID != ev.MessageSID {
				t.Fatalf("id %d: %v", tc.registry, err)
			}
		}
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("registry asked %d times, want 2 (cached)", n)
	}
	b, _ := Encode(SchemaIDv2, &ev)
	binary.BigEndian.PutUint32(b[1:], 7)
	var de *DecodeError
	if _, err := d.Decode(context.Background(), b); !errors.As(err, &de) || de.Stage != "schema" {
		t.Fatalf("unknown id: %v, want a schema DecodeError", err)
	}
	srv.Close() // unreachable: transient, not a dead letter
	binary.BigEndian.PutUint32(b[1:], 8)
	if _, err := d.Decode(context.Background(), b); err == nil || errors.As(err, &de) {
		t.Fatalf("unreachable registry: %v, want a transient error", err)
	}
}

// TestRegistrySchemaNotAvro (issue 11, item 2): a schema ID the registry
// knows but that is not plain Avro (a Protobuf or JSON schema behind the
// same framing, an Avro schema with references, one hamba cannot parse) is
// the record's problem, a dead letter, decided once per ID; only no answer
// (a 5xx) is transient. The registry is an in-test HTTP server, as above.
func TestRegistrySchemaNotAvro(t *testing.T) {
	hits := map[string]int{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		var body any
		switch r.URL.Path {
		case "/schemas/ids/43":
			body = map[string]string{"schemaType": "PROTOBUF", "schema": `syntax = "proto3"; message E { string sid = 1; }`}
		case "/schemas/ids/44":
			body = map[string]string{"schemaType": "JSON", "schema": `{"type":"object"}`}
		case "/schemas/ids/45":
			body = map[string]any{"schema": schemaV2JSON, "references": []map[string]any{{"name": "x.Other", "subject": "other", "version": 1}}}
		case "/schemas/ids/46":
			body = map[string]string{"schema": `{"type":"record","name":"broken","fields":[{"name":"a","type":"nosuchtype"}]}`}
		case "/schemas/ids/47":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error_code":50003,"message":"try later"}`)
			return
		}
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	src, err := NewRegistrySchemas(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(src, 15*time.Minute, func() time.Time { return testNow })
	ev := sampleEvent()
	for _, tc := range []struct {
		id   uint32
		want string
	}{{43, "PROTOBUF"}, {44, "JSON"}, {45, "references"}, {46, "nosuchtype"}} {
		b, _ := Encode(SchemaIDv2, &ev)
		binary.BigEndian.PutUint32(b[1:], tc.id)
		for range 3 {
			_, err := d.Decode(context.Background(), b)
			var de *DecodeError
			if !errors.As(err, &de) || de.Stage != "schema" || !strings.Contains(de.Reason, tc.want) {
				t.Fatalf("id %d: %v, want a schema DecodeError naming %q", tc.id, err, tc.want)
			}
		}
		if n := hits[fmt.Sprintf("/schemas/ids/%d", tc.id)]; n != 1 {
			t.Errorf("id %d: registry asked %d times, want once (the verdict is cached)", tc.id, n)
		}
	}
	b, _ := Encode(SchemaIDv2, &ev)
	binary.BigEndian.PutUint32(b[1:], 47)
	var de *DecodeError
	if _, err := d.Decode(context.Background(), b); err == nil || errors.As(err, &de) {
		t.Fatalf("registry answering 503: %v, want a transient error", err)
	}
}
