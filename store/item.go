package store

import (
	"bytes"
	"compress/flate"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hamba/avro/v2"
	kflate "github.com/klauspost/compress/flate"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// Item layout
//
// A message item holds its keys, the attributes that conditions and filters
// need as attributes of their own, and everything else packed into one
// binary attribute d (Avro, see record.avsc), DEFLATE-compressed when that
// saves space. Fewer attributes make items smaller (DynamoDB charges names
// too) and write requests cheaper to build: an event write is 10 parameters,
// whatever the message carries.
const (
	aSeq        = "q"  // sequence of the winning event (N): the write condition
	aRev        = "v"  // revision: +1 on every change, the API's ETag (N)
	aStatus     = "st" // status (N, enum index): filter
	aFrom       = "fa" // from address (S): filter
	aTo         = "ta" // to address (S): filter
	aTTL        = "x"  // expiry (N, unix seconds): DynamoDB's TTL attribute
	aData       = "d"  // everything else (B): see record.avsc
	aDeleted    = "dl" // tombstone marker (N 1): no event writes over it
	aRedacted   = "rd" // body redacted by the API (N 1): no event writes a body again
	aPriceFixed = "pc" // price corrected by the API (N 1): events no longer set the price
)

// compressMin is the packed size from which compression is tried. Keys and
// filter attributes take about 250 bytes, so below it the item stays within
// one 1 KiB write unit anyway and DEFLATE would spend CPU (tens of µs) to
// save nothing; above it, a long WhatsApp body typically drops a unit or two.
const compressMin = 768

// Version bytes in front of d.
const (
	dAvro         byte = 1
	dAvroDeflated byte = 2
)

// MaxItemBytes is DynamoDB's item size limit.
const MaxItemBytes = 400 * 1024

//go:embed record.avsc
var recordSchemaJSON string

var (
	recordSchema = avro.MustParse(recordSchemaJSON)
	recordAPI    = avro.Config{TagKey: "avro", MaxByteSliceSize: MaxItemBytes * 8, MaxSliceAllocSize: MaxItemBytes * 8}.Freeze()
)

// record is the Avro shape of d.
type record struct {
	Channel             int32             `avro:"channel"`
	Direction           int32             `avro:"direction"`
	NumSegments         int32             `avro:"num_segments"`
	NumMedia            int32             `avro:"num_media"`
	Body                *string           `avro:"body"`
	PriceMicros         *int64            `avro:"price_micros"`
	PriceUnit           *string           `avro:"price_unit"`
	ErrorCode           *int32            `avro:"error_code"`
	MessagingServiceSID *string           `avro:"messaging_service_sid"`
	ContentSID          *string           `avro:"content_sid"`
	Tags                map[string]string `avro:"tags"`
	DateSent            *int64            `avro:"date_sent"`
	DateUpdated         int64             `avro:"date_updated"`
}

// pack encodes the non-key part of m as the value of d.
func pack(m *postflight.Message) []byte {
	raw := appendRecord(make([]byte, 1, packedSize(m)), m)
	if len(raw)-1 >= compressMin {
		if z, ok := deflate(raw[1:]); ok {
			return z
		}
	}
	raw[0] = dAvro
	return raw
}

// appendRecord appends m's StoredMessage (record.avsc) in Avro's binary
// encoding. It is the write path's encoder: hamba's reflection-driven
// Marshal of the same record cost ~1.4 µs per message, a fifth of the
// pipeline's budget, where appending the thirteen fields costs ~0.1 µs.
// Reads decode with hamba against the schema, and TestPackMatchesHamba checks
// that hamba decodes whatever this appends (and that both encode alike).
func appendRecord(b []byte, m *postflight.Message) []byte {
	b = binary.AppendVarint(b, int64(m.Channel)) // Avro int/long: zigzag varint
	b = binary.AppendVarint(b, int64(m.Direction))
	b = binary.AppendVarint(b, int64(m.NumSegments))
	b = binary.AppendVarint(b, int64(m.NumMedia))
	b = appendOptString(b, m.Body)
	if m.PriceMicros == nil {
		b = append(b, 0) // union branch 0: null
	} else {
		b = binary.AppendVarint(append(b, 2), *m.PriceMicros) // branch 1, zigzag
	}
	b = appendOptString(b, m.PriceUnit)
	if m.ErrorCode == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendVarint(append(b, 2), int64(*m.ErrorCode))
	}
	b = appendOptString(b, m.MessagingServiceSID)
	b = appendOptString(b, m.ContentSID)
	if len(m.Tags) > 0 { // one block of len(m.Tags) entries, then the empty block
		b = binary.AppendVarint(b, int64(len(m.Tags)))
		for k, v := range m.Tags {
			b = appendString(appendString(b, k), v)
		}
	}
	b = append(b, 0)
	if m.DateSent == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendVarint(append(b, 2), m.DateSent.UnixMilli())
	}
	return binary.AppendVarint(b, m.DateUpdated.UnixMilli())
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendVarint(b, int64(len(s))), s...)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return appendString(append(b, 2), *s)
}

// packedSize bounds appendRecord's output plus the version byte: every
// number takes at most binary.MaxVarintLen64 bytes.
func packedSize(m *postflight.Message) int {
	n := 1 + 13*binary.MaxVarintLen64
	for _, s := range [...]*string{m.Body, m.PriceUnit, m.MessagingServiceSID, m.ContentSID} {
		if s != nil {
			n += binary.MaxVarintLen64 + len(*s)
		}
	}
	for k, v := range m.Tags {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	return n
}

// unpack decodes d into m's non-key fields.
func unpack(d []byte, m *postflight.Message) error {
	if len(d) == 0 {
		return errors.New("empty data attribute")
	}
	raw := d[1:]
	switch d[0] {
	case dAvro:
	case dAvroDeflated:
		var err error
		if raw, err = inflate(raw); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown data version %d", d[0])
	}
	var r record
	if err := recordAPI.Unmarshal(recordSchema, raw, &r); err != nil {
		return fmt.Errorf("unpack message: %w", err)
	}
	m.Channel, m.Direction = postflight.Channel(r.Channel), postflight.Direction(r.Direction)
	m.NumSegments, m.NumMedia = r.NumSegments, r.NumMedia
	m.Body, m.PriceMicros, m.PriceUnit, m.ErrorCode = r.Body, r.PriceMicros, r.PriceUnit, r.ErrorCode
	m.MessagingServiceSID, m.ContentSID = r.MessagingServiceSID, r.ContentSID
	m.Tags = nil
	if len(r.Tags) > 0 {
		m.Tags = r.Tags
	}
	m.DateSent = nil
	if r.DateSent != nil {
		t := time.UnixMilli(*r.DateSent).UTC()
		m.DateSent = &t
	}
	m.DateUpdated = time.UnixMilli(r.DateUpdated).UTC()
	return nil
}

// deflateLevel trades a few percent of size for CPU: on the realistic mix
// (itemsize_test.go) klauspost's level 1 is over twice as fast as the standard
// library's level 6 on 0.6–4 KB bodies, and its output is still DEFLATE,
// read back by compress/flate.
const deflateLevel = 1

var flaters = sync.Pool{New: func() any {
	w, _ := kflate.NewWriter(io.Discard, deflateLevel)
	return w
}}

// deflate returns dAvroDeflated and b compressed, if that is at least 15%
// smaller.
func deflate(b []byte) ([]byte, bool) {
	var buf bytes.Buffer
	buf.Grow(1 + len(b)*85/100)
	buf.WriteByte(dAvroDeflated)
	w := flaters.Get().(*kflate.Writer)
	defer flaters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(b); err != nil {
		return nil, false
	}
	if err := w.Close(); err != nil {
		return nil, false
	}
	if buf.Len()-1 > len(b)*85/100 {
		return nil, false
	}
	return buf.Bytes(), true
}

func inflate(b []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, MaxItemBytes*8))
	if err != nil {
		return nil, fmt.Errorf("inflate data: %w", err)
	}
	return out, nil
}

// encoded is a message turned into the values of its write statements.
type encoded struct {
	sid, account     string // p, s
	indexPK, indexSK string // g, t
	seq, status      int64  // q, st
	from, to         string // fa, ta
	expires          int64  // x: unix seconds
	d                []byte
	size             int // DynamoDB item size estimate in bytes

	msg *postflight.Message // kept to re-encode around pinned fields
}

// valueAttrs are the attributes every event write sets, in statement order
// (see encoded.params).
var valueAttrs = [8]string{keydesign.AttrIndexPK, keydesign.AttrIndexSK, aSeq, aStatus, aFrom, aTo, aTTL, aData}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// numSize is DynamoDB's size of a number: about one byte per two
// significant digits, plus one.
func numSize(n int64) int {
	digits := 1
	for n >= 10 || n <= -10 {
		n /= 10
		digits++
	}
	return (digits+1)/2 + 1
}

// encode turns m into statement values. indexPK is the index partition key
// chosen from the account's shard schedule; expires is the TTL.
func encode(m *postflight.Message, indexPK string, expires time.Time) *encoded {
	e := new(encoded)
	e.set(m, indexPK, expires)
	return e
}

// set is encode into e (WriteBatch encodes a batch into one array).
func (e *encoded) set(m *postflight.Message, indexPK string, expires time.Time) {
	*e = encoded{
		sid: m.SID, account: m.AccountSID,
		indexPK: indexPK, indexSK: keydesign.IndexSK(m.DateCreated, m.SID),
		seq: m.Sequence, status: int64(m.Status), from: m.From, to: m.To,
		expires: expires.Unix(), d: pack(m), msg: m,
	}
	// Names and values, as DynamoDB counts them; v is always 1 byte of
	// number on a first write.
	e.size = len(keydesign.AttrPK) + len(e.sid) + len(keydesign.AttrSK) + len(e.account) +
		len(keydesign.AttrIndexPK) + len(e.indexPK) + len(keydesign.AttrIndexSK) + len(e.indexSK) +
		len(aSeq) + numSize(e.seq) + len(aStatus) + numSize(e.status) +
		len(aFrom) + len(e.from) + len(aTo) + len(e.to) +
		len(aTTL) + numSize(e.expires) + len(aData) + len(e.d) + len(aRev) + 2
}

// decodeItem turns a stored item into a Message. ok is false for a tombstone
// or an item that is not a message.
func decodeItem(item map[string]types.AttributeValue) (m postflight.Message, ok bool, err error) {
	if _, dead := item[aDeleted]; dead {
		return m, false, nil
	}
	sk, _ := sAttr(item, keydesign.AttrIndexSK)
	d, _ := item[aData].(*types.AttributeValueMemberB)
	if sk == "" || d == nil {
		return m, false, nil
	}
	created, sid, err := keydesign.ParseIndexSK(sk)
	if err != nil {
		return m, false, fmt.Errorf("item %s: %w", sk, err)
	}
	if err := unpack(d.Value, &m); err != nil {
		return m, false, fmt.Errorf("item %s: %w", sid, err)
	}
	m.SID = sid
	m.AccountSID, _ = sAttr(item, keydesign.AttrSK)
	m.DateCreated = created
	m.Sequence, _ = nAttr(item, aSeq)
	m.Revision, _ = nAttr(item, aRev)
	st, _ := nAttr(item, aStatus)
	m.Status = postflight.Status(st)
	m.From, _ = sAttr(item, aFrom)
	m.To, _ = sAttr(item, aTo)
	return m, true, nil
}

func sAttr(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func nAttr(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}
