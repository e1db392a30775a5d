package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/postflight/postflight"
)

// wireEvent is the Avro shape of contracts/message_event.v2.avsc.
type wireEvent struct {
	EventID             string            `avro:"event_id"`
	AccountSID          string            `avro:"account_sid"`
	MessageSID          string            `avro:"message_sid"`
	Sequence            int64             `avro:"sequence"`
	Status              string            `avro:"status"`
	Channel             string            `avro:"channel"`
	Direction           string            `avro:"direction"`
	From                string            `avro:"from"`
	To                  string            `avro:"to"`
	Body                *string           `avro:"body"`
	NumSegments         int32             `avro:"num_segments"`
	NumMedia            int32             `avro:"num_media"`
	PriceMicros         *int64            `avro:"price_micros"`
	PriceUnit           *string           `avro:"price_unit"`
	ErrorCode           *int32            `avro:"error_code"`
	MessagingServiceSID *string           `avro:"messaging_service_sid"`
	DateCreated         time.Time         `avro:"date_created"`
	DateSent            *time.Time        `avro:"date_sent"`
	EventTime           time.Time         `avro:"event_time"`
	ContentSID          *string           `avro:"content_sid"`
	Tags                map[string]string `avro:"tags"`
}

// MaxValueBytes bounds one event's Kafka value; larger ones are dead-lettered
// before decoding, and Avro strings and maps are bounded by it too.
const MaxValueBytes = 1 << 20

// avroAPI bounds allocations so that a hostile length prefix cannot make the
// decoder allocate more than one event's worth of memory.
var avroAPI = avro.Config{
	TagKey:            "avro",
	MaxByteSliceSize:  MaxValueBytes,
	MaxSliceAllocSize: MaxValueBytes,
}.Freeze()

// DecodeError is a permanent problem with one Kafka record: it goes to the
// dead-letter topic with Reason, and ingest goes on.
type DecodeError struct {
	Stage  string // "frame", "schema", "avro" or "validate"
	Reason string
	Err    error
}

func (e *DecodeError) Error() string { return e.Stage + ": " + e.Reason }
func (e *DecodeError) Unwrap() error { return e.Err }

// Decoder turns Confluent-framed Avro values into validated events. It is
// safe for concurrent use.
type Decoder struct {
	schemas resolvedSchemas
	maxSkew time.Duration
	now     func() time.Time
	readers sync.Pool
}

// NewDecoder returns a Decoder reading schema IDs from src. Events whose
// date_created or event_time lie more than maxSkew in the future are invalid.
func NewDecoder(src SchemaSource, maxSkew time.Duration, now func() time.Time) *Decoder {
	if now == nil {
		now = time.Now
	}
	d := &Decoder{schemas: resolvedSchemas{src: src, ids: map[uint32]resolved{}}, maxSkew: maxSkew, now: now}
	d.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(avroAPI)) }
	return d
}

// Decode decodes and validates one record value. A *DecodeError is permanent
// (dead-letter the record); any other error is transient (the schema
// registry could not be reached) and the caller retries.
func (d *Decoder) Decode(ctx context.Context, value []byte) (postflight.Event, error) {
	var ev postflight.Event
	if len(value) < 5 || value[0] != 0 {
		return ev, &DecodeError{Stage: "frame", Reason: fmt.Sprintf("not Confluent wire framing (%d bytes, first byte %s)", len(value), firstByte(value))}
	}
	if len(value) > MaxValueBytes {
		return ev, &DecodeError{Stage: "frame", Reason: fmt.Sprintf("value of %d bytes exceeds %d", len(value), MaxValueBytes)}
	}
	id := binary.BigEndian.Uint32(value[1:5])
	rs, err := d.schemas.get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrUnknownSchema) {
			return ev, &DecodeError{Stage: "schema", Reason: err.Error(), Err: err}
		}
		return ev, err
	}
	if err := d.read(rs, value[5:], &ev); err != nil {
		ev = postflight.Event{}
		return ev, &DecodeError{Stage: "avro", Reason: fmt.Sprintf("schema id %d: %v", id, err), Err: err}
	}
	if err := ev.Validate(d.now(), d.maxSkew); err != nil {
		return ev, &DecodeError{Stage: "validate", Reason: err.Error(), Err: err}
	}
	return ev, nil
}

// read decodes the Avro value b, written with rs, into ev.
func (d *Decoder) read(rs resolved, b []byte, ev *postflight.Event) error {
	if rs.layout != layoutResolved {
		return readContract(b, rs.layout, ev)
	}
	var w wireEvent
	if err := d.unmarshal(rs.schema, b, &w); err != nil {
		return err
	}
	return w.into(ev)
}

// unmarshal decodes exactly one value from b. Unlike avro.Unmarshal it
// treats running out of input as an error (a truncated event) and refuses
// trailing bytes.
func (d *Decoder) unmarshal(schema avro.Schema, b []byte, v *wireEvent) error {
	r := d.readers.Get().(*avro.Reader)
	defer func() {
		r.Error = nil
		r.Reset(nil)
		d.readers.Put(r)
	}()
	r.Reset(b)
	r.ReadVal(schema, v)
	if r.Error != nil {
		if errors.Is(r.Error, io.EOF) {
			return errors.New("truncated")
		}
		return r.Error
	}
	r.Peek()
	if r.Error == nil {
		return errors.New("trailing bytes after the record")
	}
	return nil
}

func (w *wireEvent) into(ev *postflight.Event) error {
	st, ok := statusBySymbol[w.Status]
	if !ok {
		return fmt.Errorf("unknown status symbol %q", w.Status)
	}
	ch, ok := channelBySymbol[w.Channel]
	if !ok {
		return fmt.Errorf("unknown channel symbol %q", w.Channel)
	}
	dir, ok := directionBySymbol[w.Direction]
	if !ok {
		return fmt.Errorf("unknown direction symbol %q", w.Direction)
	}
	*ev = postflight.Event{
		EventID:             w.EventID,
		AccountSID:          w.AccountSID,
		MessageSID:          w.MessageSID,
		Sequence:            w.Sequence,
		Status:              st,
		Channel:             ch,
		Direction:           dir,
		From:                w.From,
		To:                  w.To,
		Body:                w.Body,
		NumSegments:         w.NumSegments,
		NumMedia:            w.NumMedia,
		PriceMicros:         w.PriceMicros,
		PriceUnit:           w.PriceUnit,
		ErrorCode:           w.ErrorCode,
		MessagingServiceSID: w.MessagingServiceSID,
		ContentSID:          w.ContentSID,
		Tags:                w.Tags,
		DateCreated:         w.DateCreated.UTC(),
		DateSent:            w.DateSent,
		EventTime:           w.EventTime.UTC(),
	}
	return nil
}

func firstByte(b []byte) string {
	if len(b) == 0 {
		return "none"
	}
	return fmt.Sprintf("0x%02x", b[0])
}

// Symbol tables of the Avro enums: the wire names are the uppercase symbols.
var (
	statusBySymbol    = symbolTable(schemaV2, "status", postflight.Status.String, postflight.StatusCanceled)
	channelBySymbol   = symbolTable(schemaV2, "channel", postflight.Channel.String, postflight.ChannelRCS)
	directionBySymbol = symbolTable(schemaV2, "direction", postflight.Direction.String, postflight.DirectionOutboundReply)
)

// symbolTable maps the enum's Avro symbols to the domain values, checking at
// start-up that the contract and the domain agree on every symbol and its
// position.
func symbolTable[T ~uint8](s avro.Schema, field string, name func(T) string, last T) map[string]T {
	var enum *avro.EnumSchema
	for _, f := range s.(*avro.RecordSchema).Fields() {
		if f.Name() == field {
			enum = f.Type().(*avro.EnumSchema)
		}
	}
	syms := enum.Symbols()
	if len(syms) != int(last)+1 {
		panic(fmt.Sprintf("contract enum %s has %d symbols, domain %d", field, len(syms), int(last)+1))
	}
	m := make(map[string]T, len(syms))
	for i, sym := range syms {
		v := T(i)
		if want := name(v); !equalFoldASCII(sym, want) {
			panic(fmt.Sprintf("contract enum %s symbol %d is %s, domain says %s", field, i, sym, want))
		}
		m[sym] = v
	}
	return m
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
