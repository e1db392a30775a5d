package ingest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/postflight/postflight"
)

// FuzzContractDecoders holds readContract to hamba: for any bytes written
// as either contract version, both fail, or both give the same event.
func FuzzContractDecoders(f *testing.F) {
	ev := sampleEvent()
	for _, id := range []uint32{SchemaIDv1, SchemaIDv2} {
		b, err := Encode(id, &ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(id == SchemaIDv2, b[5:])
		f.Add(id == SchemaIDv2, b[5:len(b)-1])
		f.Add(id == SchemaIDv2, append(b[5:len(b):len(b)], 0))
	}
	minimal := postflight.Event{AccountSID: "a", Tags: map[string]string{"a": "1", "b": "2", "c": ""}}
	b, err := Encode(SchemaIDv2, &minimal) // hamba writes map blocks with byte sizes
	if err != nil {
		f.Fatal(err)
	}
	f.Add(true, b[5:])
	d := newTestDecoder()
	f.Fuzz(func(t *testing.T, v2 bool, b []byte) {
		id, l := SchemaIDv1, layoutV1
		if v2 {
			id, l = SchemaIDv2, layoutV2
		}
		rs, err := d.schemas.get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rs.layout != l {
			t.Fatalf("schema %d read with layout %d, want %d", id, rs.layout, l)
		}
		var fast, slow postflight.Event
		fastErr := readContract(b, l, &fast)
		slowErr := d.read(resolved{schema: rs.schema}, b, &slow)
		if (fastErr == nil) != (slowErr == nil) {
			t.Fatalf("fast path: %v, hamba: %v", fastErr, slowErr)
		}
		if fastErr != nil {
			return
		}
		if len(slow.Tags) == 0 {
			slow.Tags = nil
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path: %+v\nhamba:     %+v", fast, slow)
		}
	})
}

// TestFastPathChosen: the contract IDs take the fast path, a registry
// schema differing from both takes hamba's.
func TestFastPathChosen(t *testing.T) {
	if layoutOf(schemaV1) != layoutV1 || layoutOf(schemaV2) != layoutV2 {
		t.Fatal("contract schemas not recognized")
	}
	if l := layoutOf(readerWithExtraField(t)); l != layoutResolved {
		t.Fatalf("a third schema got layout %d", l)
	}
}

// readerWithExtraField is the v2 contract with one more field at the end.
func readerWithExtraField(t *testing.T) avro.Schema {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(schemaV2JSON), &s); err != nil {
		t.Fatal(err)
	}
	s["fields"] = append(s["fields"].([]any), map[string]any{"name": "campaign", "type": "string", "default": ""})
	b, _ := json.Marshal(s)
	return avro.MustParse(string(b))
}

// A full event costs three allocations whatever it carries: the copy of
// the value its strings point into, one block of optional values, the
// tags map.
func TestContractDecodeAllocations(t *testing.T) {
	ev := sampleEvent()
	b, err := Encode(SchemaIDv2, &ev)
	if err != nil {
		t.Fatal(err)
	}
	var got postflight.Event
	if n := testing.AllocsPerRun(100, func() { _ = readContract(b[5:], layoutV2, &got) }); n > 3 {
		t.Errorf("%v allocations per event, want at most 3", n)
	}
	if got.Body == nil || *got.Body != *ev.Body || *got.PriceMicros != *ev.PriceMicros || *got.ContentSID != *ev.ContentSID ||
		!got.DateSent.Equal(*ev.DateSent) || *got.PriceUnit != *ev.PriceUnit {
		t.Fatalf("decoded %+v", got)
	}
}
