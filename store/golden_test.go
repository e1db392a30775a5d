package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

var update = flag.Bool("update", false, "rewrite the golden items of the current record schema version in testdata/records")

// A golden item is a stored message item as DynamoDB holds it (S, N and B
// attributes) and the message JSON the API must read from it. Every header
// that was ever written has one, made by the release that wrote it: they are
// never regenerated, except the current version's with -update.
type goldenItem struct {
	Comment string                `json:"comment"`
	Item    map[string]goldenAttr `json:"item"`
	Message json.RawMessage       `json:"message"`
}

type goldenAttr struct {
	S *string `json:"S,omitempty"`
	N *string `json:"N,omitempty"`
	B []byte  `json:"B,omitempty"`
}

func (g goldenItem) attributes() map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(g.Item))
	for k, a := range g.Item {
		switch {
		case a.S != nil:
			out[k] = &types.AttributeValueMemberS{Value: *a.S}
		case a.N != nil:
			out[k] = &types.AttributeValueMemberN{Value: *a.N}
		default:
			out[k] = &types.AttributeValueMemberB{Value: a.B}
		}
	}
	return out
}

// goldenMessage has every field set; long makes its body long and
// repetitive enough to be stored compressed.
func goldenMessage(long bool) *postflight.Message {
	created := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	body := "Your code is 123456 — ünïcödé ✓"
	if long {
		body = strings.Repeat("Your order #4711 has shipped and will arrive on Thursday. ", 30)
	}
	unit, svc, content := "USD", "MG0123456789abcdef0123456789abcdef", "HX0123456789abcdef0123456789abcdef"
	price, code := int64(-7500), int32(30007)
	sent := created.Add(1500 * time.Millisecond)
	return &postflight.Message{
		SID: "SM0123456789abcdef0123456789abcdef", AccountSID: "AC0123456789abcdef0123456789abcdef",
		Status: postflight.StatusDelivered, Channel: postflight.ChannelWhatsApp, Direction: postflight.DirectionOutboundAPI,
		From: "whatsapp:+15005550006", To: "whatsapp:+15005550009", Body: &body, NumSegments: 2, NumMedia: 1,
		PriceMicros: &price, PriceUnit: &unit, ErrorCode: &code, MessagingServiceSID: &svc, ContentSID: &content,
		Tags: map[string]string{"campaign": "spring", "ü": ""}, DateCreated: created, DateSent: &sent,
		DateUpdated: created.Add(3 * time.Second), Sequence: 4, Revision: 1,
	}
}

// goldenOf stores m as the event write does and returns it as a golden.
func goldenOf(t *testing.T, m *postflight.Message, comment string) goldenItem {
	t.Helper()
	e := encode(m, keydesign.IndexPK(m.AccountSID, 0), m.DateCreated.Add(400*24*time.Hour))
	s := func(v string) goldenAttr { return goldenAttr{S: &v} }
	n := func(v int64) goldenAttr { x := strconv.FormatInt(v, 10); return goldenAttr{N: &x} }
	msg, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return goldenItem{Comment: comment, Message: msg, Item: map[string]goldenAttr{
		keydesign.AttrPK: s(e.sid), keydesign.AttrSK: s(e.account),
		keydesign.AttrIndexPK: s(e.indexPK), keydesign.AttrIndexSK: s(e.indexSK),
		aSeq: n(e.seq), aRev: n(1), aStatus: n(e.status), aFrom: s(e.from), aTo: s(e.to),
		aTTL: n(e.expires), aData: {B: e.d},
	}}
}

func writeGolden(t *testing.T, name string, g goldenItem) {
	t.Helper()
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "records", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStoredFormatGoldens reads back every golden item in testdata/records:
// whatever a release wrote must read as the same message forever. Every
// record schema version shipped, with and without compression, and the
// headers written before versions were named must have a golden item.
func TestStoredFormatGoldens(t *testing.T) {
	if *update {
		for _, long := range []bool{false, true} {
			g := goldenOf(t, goldenMessage(long), "")
			h := g.Item[aData].B[0]
			g.Comment = fmt.Sprintf("record schema v%d, compression %d (header byte %#02x)", h>>4, h&0x0f, h)
			writeGolden(t, fmt.Sprintf("v%d-%x.json", h>>4, h&0x0f), g)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "records", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var g goldenItem
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			seen[g.Item[aData].B[0]] = true
			m, ok, err := decodeItem(g.attributes())
			if err != nil || !ok {
				t.Fatalf("decodeItem: ok %v, %v", ok, err)
			}
			got, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, g.Message); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("read back\n%s\nwant\n%s", got, want.Bytes())
			}
			if m.Revision != 1 {
				t.Fatalf("revision %d, want 1", m.Revision)
			}
		})
	}
	want := []byte{legacyPlain, legacyDeflated}
	for v := range writerSchemas {
		want = append(want, header(v, compNone), header(v, compDeflate))
	}
	for _, h := range want {
		if !seen[h] {
			t.Errorf("no golden item with header %#02x in testdata/records (run go test -run TestStoredFormatGoldens -update ./store/ on the release that writes it)", h)
		}
	}
}

// TestUnpackRejectsDamagedRecords: a truncated record, trailing bytes, an
// unknown header and broken compression are errors, never zero values.
func TestUnpackRejectsDamagedRecords(t *testing.T) {
	for _, long := range []bool{false, true} {
		d := pack(goldenMessage(long))
		for n := 1; n < len(d); n++ {
			var m postflight.Message
			if err := unpack(d[:n], &m); !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("long %v: truncated to %d of %d bytes: err %v, read %+v", long, n, len(d), err, m)
			}
		}
		for _, extra := range [][]byte{{0}, {2, 'x'}, bytes.Repeat([]byte{0}, 10)} {
			var m postflight.Message
			if err := unpack(append(bytes.Clone(d), extra...), &m); !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("long %v: %d trailing bytes: err %v", long, len(extra), err)
			}
		}
	}
	d := pack(goldenMessage(false))
	for _, h := range []byte{0x00, 0x03, 0x0f, header(currentRecordVersion+1, compNone), header(currentRecordVersion, 2), 0xff} {
		var m postflight.Message
		if err := unpack(append([]byte{h}, d[1:]...), &m); !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("header %#02x: err %v", h, err)
		}
	}
	var m postflight.Message
	if err := unpack(nil, &m); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("empty: err %v", err)
	}
}

// TestRecordSchemasResolve: every shipped writer schema is read into the
// current one by Avro resolution. Shown with a hypothetical next version
// that adds a field with a default: loaded as current, it reads records
// written by today's version exactly, with the new field at its default.
func TestRecordSchemasResolve(t *testing.T) {
	cur, err := schemaFiles.ReadFile(fmt.Sprintf("schemas/record.v%d.avsc", currentRecordVersion))
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(cur), `{"name": "date_updated", "type": "long"}`,
		`{"name": "date_updated", "type": "long"},`+"\n"+`    {"name": "next_field", "type": ["null", "string"], "default": null}`, 1)
	if next == string(cur) {
		t.Fatal("could not derive the next schema")
	}
	nextVersion := currentRecordVersion + 1
	fsys := fstest.MapFS{
		fmt.Sprintf("schemas/record.v%d.avsc", currentRecordVersion): {Data: cur},
		fmt.Sprintf("schemas/record.v%d.avsc", nextVersion):          {Data: []byte(next)},
	}
	writers, readers := loadRecordSchemas(fsys, nextVersion)
	if len(writers) != 2 || len(readers) != 2 {
		t.Fatalf("loaded %d writers, %d readers", len(writers), len(readers))
	}
	m := goldenMessage(true)
	type nextRecord struct {
		record
		NextField *string `avro:"next_field"`
	}
	r := nextRecord{NextField: new(string)}
	if err := decodeRecord(readers[currentRecordVersion], appendRecord(nil, m), &r); err != nil {
		t.Fatal(err)
	}
	if *r.Body != *m.Body || r.DateUpdated != m.DateUpdated.UnixMilli() || len(r.Tags) != len(m.Tags) || r.NextField != nil {
		t.Fatalf("read %+v", r)
	}
	if err := decodeRecord(readers[currentRecordVersion], appendRecord(nil, m)[:10], &r); err == nil {
		t.Fatal("a truncated record read through the resolved schema without error")
	}
}
