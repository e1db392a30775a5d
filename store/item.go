package store

import (
	"bytes"
	"compress/flate"
	"context"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
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
// binary attribute d (Avro, see schemas/ and "The stored format of d" below), DEFLATE-compressed when that
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
	aData       = "d"  // everything else (B): see schemas/ and "The stored format of d"
	aDeleted    = "dl" // tombstone marker (N 1): no event writes over it
	aRedacted   = "rd" // body redacted by the API (N 1): no event writes a body again
	aPriceFixed = "pc" // price corrected by the API (N 1): events no longer set the price
)

// compressMin is the packed size from which compression is tried. Keys and
// filter attributes take about 250 bytes, so below it the item stays within
// one 1 KiB write unit anyway and DEFLATE would spend CPU (tens of µs) to
// save nothing; above it, a long WhatsApp body typically drops a unit or two.
const compressMin = 768

// The stored format of d
//
// d lives in the table for years, across releases, so its first byte names
// how the rest was written: the high four bits are the record schema version
// (schemas/record.vN.avsc, N from 1 to 15), the low four the compression
// (compNone or compDeflate). Readers keep every writer schema ever shipped
// and read each version into the current one by Avro schema resolution; a
// new version is a new schema file, its golden items in testdata/records,
// and a bump of currentRecordVersion (the release before it must already
// read it: see README, "Stored data").
//
// Items written before the header named the schema carry 0x01 (plain) or
// 0x02 (DEFLATE): both are schema version 1, and are read as such forever.
const (
	compNone    = 0
	compDeflate = 1

	legacyPlain    byte = 0x01
	legacyDeflated byte = 0x02
)

// currentRecordVersion is the record schema version this release writes.
const currentRecordVersion = 1

func header(version, comp int) byte { return byte(version<<4 | comp) }

// MaxItemBytes is DynamoDB's item size limit.
const MaxItemBytes = 400 * 1024

//go:embed schemas/record.v*.avsc
var schemaFiles embed.FS

var (
	recordAPI = avro.Config{TagKey: "avro", MaxByteSliceSize: MaxItemBytes * 8, MaxSliceAllocSize: MaxItemBytes * 8}.Freeze()
	// writerSchemas holds every record schema ever shipped, by version;
	// readSchemas the same resolved to the current one.
	writerSchemas, readSchemas = loadRecordSchemas(schemaFiles, currentRecordVersion)
	// recordSchema is the current version's: the one appendRecord writes.
	recordSchema = writerSchemas[currentRecordVersion]
)

// loadRecordSchemas parses schemas/record.vN.avsc for every N the files
// hold and resolves each to the current version. A shipped schema that the
// current one cannot read is a broken invariant: it panics at start (and in
// every test), never at a read.
func loadRecordSchemas(files fs.FS, currentVersion int) (writers, readers map[int]avro.Schema) {
	names, err := fs.Glob(files, "schemas/record.v*.avsc")
	if err != nil {
		panic(err)
	}
	writers = make(map[int]avro.Schema, len(names))
	for _, name := range names {
		v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path.Base(name), "record.v"), ".avsc"))
		if err != nil || v < 1 || v > 15 {
			panic(fmt.Sprintf("store: record schema file %s: want record.vN.avsc with N in [1,15]", name))
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			panic(err)
		}
		// A cache per file: every version has the same full name.
		sch, err := avro.ParseBytesWithCache(b, "", &avro.SchemaCache{})
		if err != nil {
			panic(fmt.Sprintf("store: %s: %v", name, err))
		}
		writers[v] = sch
	}
	current, ok := writers[currentVersion]
	if !ok {
		panic(fmt.Sprintf("store: no schema file for the current record version %d", currentVersion))
	}
	readers = make(map[int]avro.Schema, len(writers))
	for v, w := range writers {
		if v == currentVersion {
			readers[v] = current
			continue
		}
		r, err := avro.NewSchemaCompatibility().Resolve(current, w)
		if err != nil {
			panic(fmt.Sprintf("store: record schema v%d cannot be read as v%d: %v", v, currentVersion, err))
		}
		readers[v] = r
	}
	return writers, readers
}

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

// pack encodes the non-key part of m as the value of d, in the current
// record schema version.
func pack(m *postflight.Message) []byte {
	raw := appendRecord(make([]byte, 1, packedSize(m)), m)
	if len(raw)-1 >= compressMin {
		if z, ok := deflate(raw[1:]); ok {
			return z
		}
	}
	raw[0] = header(currentRecordVersion, compNone)
	return raw
}

// appendRecord appends m's StoredMessage (the current schemas/record.vN.avsc)
// in Avro's binary encoding. It is the write path's encoder: hamba's
// reflection-driven Marshal of the same record cost ~1.4 µs per message, a
// fifth of the pipeline's budget, where appending the thirteen fields costs
// ~0.1 µs. Reads decode with hamba against the schema files, and
// TestPackMatchesHamba holds this encoder to the current schema file (hamba
// decodes whatever this appends, and both encode alike).
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

// ErrCorruptRecord is a stored d attribute that cannot be read: an unknown
// header, a truncated or overlong record, broken compression. Reads return
// it (wrapped, with the message SID) instead of zero values; the store counts
// and logs every occurrence (Store.decode).
var ErrCorruptRecord = postflight.ErrCorruptRecord

// unpack decodes d, whatever version and compression wrote it, into m's
// non-key fields. Every byte of the record must be consumed: a truncated or
// overlong record is ErrCorruptRecord, never a record of zero values.
func unpack(d []byte, m *postflight.Message) error {
	if len(d) == 0 {
		return fmt.Errorf("%w: empty data attribute", ErrCorruptRecord)
	}
	version, comp := int(d[0]>>4), int(d[0]&0x0f)
	switch d[0] {
	case legacyPlain:
		version, comp = 1, compNone
	case legacyDeflated:
		version, comp = 1, compDeflate
	}
	schema, ok := readSchemas[version]
	if !ok {
		return fmt.Errorf("%w: header %#02x: unknown record schema version %d", ErrCorruptRecord, d[0], version)
	}
	raw := d[1:]
	switch comp {
	case compNone:
	case compDeflate:
		var err error
		if raw, err = inflate(raw); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptRecord, err)
		}
	default:
		return fmt.Errorf("%w: header %#02x: unknown compression %d", ErrCorruptRecord, d[0], comp)
	}
	var r record
	if err := decodeRecord(schema, raw, &r); err != nil {
		return fmt.Errorf("%w: record v%d: %w", ErrCorruptRecord, version, err)
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

// decodeRecord reads exactly one record from raw. hamba's Unmarshal treats
// running out of bytes as the end of input and returns nil with the fields
// left at zero, and ignores trailing bytes; its Reader reports both.
func decodeRecord(schema avro.Schema, raw []byte, r any) error {
	rd := avro.NewReader(nil, 0, avro.WithReaderConfig(recordAPI)).Reset(raw)
	rd.ReadVal(schema, r)
	if rd.Error != nil {
		if errors.Is(rd.Error, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return rd.Error
	}
	if rd.Peek(); rd.Error == nil {
		return errors.New("trailing bytes after the record")
	}
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

// deflate returns the current version's DEFLATE header and b compressed, if that is at least 15%
// smaller.
func deflate(b []byte) ([]byte, bool) {
	var buf bytes.Buffer
	buf.Grow(1 + len(b)*85/100)
	buf.WriteByte(header(currentRecordVersion, compDeflate))
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
	br := bytes.NewReader(b) // an io.ByteReader: flate reads no further than its stream
	r := flate.NewReader(br)
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, MaxItemBytes*8))
	if err != nil {
		return nil, fmt.Errorf("inflate data: %w", err)
	}
	if br.Len() > 0 {
		return nil, errors.New("inflate data: trailing bytes after the compressed stream")
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

// decode is decodeItem for the store's reads: a corrupt record is counted
// and logged (with the item's keys) where it is found, then returned.
func (s *Store) decode(ctx context.Context, item map[string]types.AttributeValue) (postflight.Message, bool, error) {
	m, ok, err := decodeItem(item)
	if err != nil {
		s.m.corrupt.Add(ctx, 1)
		sid, _ := sAttr(item, keydesign.AttrPK)
		account, _ := sAttr(item, keydesign.AttrSK)
		s.log.ErrorContext(ctx, "stored record cannot be read", "sid", sid, "account", account, "err", err)
	}
	return m, ok, err
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
