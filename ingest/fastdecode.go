package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/postflight/postflight"
)

// The contract's fast path
//
// Nearly every event is written with one of the two contract schemas, whose
// layout is known here. Decoding those through hamba's resolved-schema
// reader cost ~1.5 µs per event (reflection, a string per field, enum
// symbols looked up by name); readContract reads the same bytes straight
// into a postflight.Event in ~0.4 µs, taking every string as a slice of one
// copy of the value. Any other writer schema (a registry ID whose schema
// differs from both, even in field order) goes through hamba and Avro
// schema resolution as before. FuzzContractDecoders holds the two paths to
// the same answer, error or event, for any bytes.

// layout says how an ID's writer schema is read.
type layout uint8

const (
	layoutResolved layout = iota // hamba, through the resolved schema
	layoutV1                     // the v1 contract: readContract, 19 fields
	layoutV2                     // the v2 contract: readContract, 21 fields
)

var (
	fingerprintV1 = schemaV1.Fingerprint()
	fingerprintV2 = schemaV2.Fingerprint()
)

// layoutOf returns the fast layout of a writer schema identical (in Avro's
// parsing canonical form) to a contract version, or layoutResolved.
func layoutOf(w avro.Schema) layout {
	switch w.Fingerprint() {
	case fingerprintV1:
		return layoutV1
	case fingerprintV2:
		return layoutV2
	}
	return layoutResolved
}

var (
	errTruncated   = errors.New("truncated")
	errIntOverflow = errors.New("int overflow")
)

// wireReader reads Avro's binary encoding from a string holding one value,
// failing where hamba's Reader fails: a varint longer than 5 bytes (int) or
// 10 (long), a negative or oversized length, running out of input.
type wireReader struct {
	s   string
	err error
}

func (r *wireReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.s = ""
}

func (r *wireReader) long() int64 {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(r.s) {
			r.fail(errTruncated)
			return 0
		}
		c := r.s[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			r.s = r.s[i+1:]
			return int64(v>>1) ^ -int64(v&1)
		}
	}
	r.fail(errIntOverflow)
	return 0
}

// int reads an Avro int: like hamba, at most 5 bytes, bits past 32 dropped.
func (r *wireReader) int() int32 {
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(r.s) {
			r.fail(errTruncated)
			return 0
		}
		c := r.s[i]
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			r.s = r.s[i+1:]
			return int32(v>>1) ^ -int32(v&1)
		}
	}
	r.fail(errIntOverflow)
	return 0
}

func (r *wireReader) str(field string) string {
	n := r.long()
	switch {
	case r.err != nil:
		return ""
	case n < 0:
		r.fail(fmt.Errorf("%s: invalid string length %d", field, n))
		return ""
	case n > MaxValueBytes:
		r.fail(fmt.Errorf("%s: string of %d bytes exceeds %d", field, n, MaxValueBytes))
		return ""
	case n > int64(len(r.s)):
		r.fail(errTruncated)
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// present reads the branch index of a ["null", T] union.
func (r *wireReader) present(field string) bool {
	switch i := r.int(); {
	case r.err != nil:
		return false
	case i == 0:
		return false
	case i == 1:
		return true
	default:
		r.fail(fmt.Errorf("%s: unknown union branch %d", field, i))
		return false
	}
}

// optionals holds an event's optional values, so that however many are
// present they cost one allocation, made at the first.
type optionals struct {
	body, priceUnit, serviceSID, contentSID string
	price                                   int64
	errorCode                               int32
	sentTime                                time.Time
}

// optStr reads a ["null", "string"] union.
func (r *wireReader) optStr(field string) (string, bool) {
	if !r.present(field) {
		return "", false
	}
	s := r.str(field)
	return s, r.err == nil
}

func (r *wireReader) enum(field string, symbols int) uint8 {
	i := r.int()
	if r.err == nil && (i < 0 || int(i) >= symbols) {
		r.fail(fmt.Errorf("%s: unknown enum symbol %d", field, i))
	}
	return uint8(i)
}

// millis is timestamp-millis as hamba turns it into a time.Time.
func millis(ms int64) time.Time {
	sec := ms / 1e3
	return time.Unix(sec, (ms-sec*1e3)*1e6).UTC()
}

// readContract decodes one event written with contract layout l from v.
func readContract(v []byte, l layout, ev *postflight.Event) error {
	r := wireReader{s: string(v)} // one copy; every string field is a slice of it
	var o *optionals
	ev.EventID = r.str("event_id")
	ev.AccountSID = r.str("account_sid")
	ev.MessageSID = r.str("message_sid")
	ev.Sequence = r.long()
	ev.Status = postflight.Status(r.enum("status", len(statusBySymbol)))
	ev.Channel = postflight.Channel(r.enum("channel", len(channelBySymbol)))
	ev.Direction = postflight.Direction(r.enum("direction", len(directionBySymbol)))
	ev.From = r.str("from")
	ev.To = r.str("to")
	if v, ok := r.optStr("body"); ok {
		o = orNew(o)
		o.body, ev.Body = v, &o.body
	}
	ev.NumSegments = r.int()
	ev.NumMedia = r.int()
	if r.present("price_micros") {
		if n := r.long(); r.err == nil {
			o = orNew(o)
			o.price, ev.PriceMicros = n, &o.price
		}
	}
	if v, ok := r.optStr("price_unit"); ok {
		o = orNew(o)
		o.priceUnit, ev.PriceUnit = v, &o.priceUnit
	}
	if r.present("error_code") {
		if code := r.int(); r.err == nil {
			o = orNew(o)
			o.errorCode, ev.ErrorCode = code, &o.errorCode
		}
	}
	if v, ok := r.optStr("messaging_service_sid"); ok {
		o = orNew(o)
		o.serviceSID, ev.MessagingServiceSID = v, &o.serviceSID
	}
	ev.DateCreated = millis(r.long())
	if r.present("date_sent") {
		if ms := r.long(); r.err == nil {
			o = orNew(o)
			o.sentTime, ev.DateSent = millis(ms), &o.sentTime
		}
	}
	ev.EventTime = millis(r.long())
	if l == layoutV2 {
		if v, ok := r.optStr("content_sid"); ok {
			o = orNew(o)
			o.contentSID, ev.ContentSID = v, &o.contentSID
		}
		r.tags(ev)
	}
	switch {
	case r.err != nil:
		return r.err
	case len(r.s) > 0:
		return errors.New("trailing bytes after the record")
	}
	return nil
}

func orNew(o *optionals) *optionals {
	if o == nil {
		return new(optionals)
	}
	return o
}

// tags reads the tags map: blocks of entries (a negative count is followed
// by the block's byte size), ending with an empty block.
func (r *wireReader) tags(ev *postflight.Event) {
	for r.err == nil {
		n := r.long()
		if n == 0 || r.err != nil {
			return
		}
		if n < 0 {
			n = -n
			r.long()
		}
		for i := int64(0); i < n && r.err == nil; i++ {
			k := r.str("tags")
			v := r.str("tags")
			if r.err != nil {
				return
			}
			if ev.Tags == nil {
				ev.Tags = make(map[string]string, min(n, 16))
			}
			ev.Tags[k] = v
		}
	}
}
