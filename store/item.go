package store

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// Attribute names. Two-letter names cost two bytes per item each; the
// mnemonic is in the comment. Neither DynamoDB's reserved words nor PartiQL
// keywords are used, but statements quote them anyway.
const (
	aSeq        = "q"  // sequence of the winning event (N)
	aRev        = "v"  // revision: +1 on every change, the API's ETag (N)
	aStatus     = "st" // status (N, enum index)
	aChannel    = "ch" // channel (N)
	aDirection  = "dr" // direction (N)
	aFrom       = "fa" // from address (S)
	aTo         = "ta" // to address (S)
	aBody       = "b"  // body (S)
	aBodyZ      = "bz" // body, DEFLATE-compressed when that saves space (B)
	aSegments   = "ns" // num_segments (N)
	aMedia      = "nm" // num_media (N)
	aPrice      = "pm" // price_micros (N)
	aPriceUnit  = "pu" // price_unit (S)
	aErrorCode  = "ec" // error_code (N)
	aMsgService = "ms" // messaging_service_sid (S)
	aContent    = "cs" // content_sid (S)
	aTags       = "tg" // tags (M of S)
	aSent       = "ds" // date_sent (N, unix millis)
	aUpdated    = "du" // date_updated = event_time of the winning event (N, unix millis)
	aTTL        = "x"  // expiry (N, unix seconds): DynamoDB's TTL attribute
	aDeleted    = "dl" // tombstone marker (N 1): no event writes over it
	aRedacted   = "rd" // body redacted by the API (N 1): no event writes a body again
	aPriceFixed = "pc" // price corrected by the API (N 1): events no longer write the price
)

// compressMin is the body length from which compression is tried: below it
// DEFLATE rarely saves a whole write unit, and SMS bodies stay readable.
const compressMin = 256

// MaxItemBytes is DynamoDB's item size limit.
const MaxItemBytes = 400 * 1024

// field is one optional data attribute of an event write; the set of present
// fields selects the statement text (statements are cached per set).
type field uint8

const (
	fBody field = iota
	fBodyZ
	fPrice
	fPriceUnit
	fErrorCode
	fMsgService
	fContent
	fTags
	fSent
	numFields
)

var fieldAttr = [numFields]string{aBody, aBodyZ, aPrice, aPriceUnit, aErrorCode, aMsgService, aContent, aTags, aSent}

// pinned reports whether an API correction pins the field: redaction pins the
// body, a price correction pins price and unit.
func (f field) pinnedBy(redacted, priceFixed bool) bool {
	switch f {
	case fBody, fBodyZ:
		return redacted
	case fPrice, fPriceUnit:
		return priceFixed
	}
	return false
}

// encoded is a message turned into attribute values once, reused by the
// INSERT and (if the item exists) UPDATE statements.
type encoded struct {
	key      [2]types.AttributeValue // p, s
	required [9]types.AttributeValue // g, t, q, st, ch, dr, fa, ta, ns... see requiredAttrs
	opt      [numFields]types.AttributeValue
	extra    [3]types.AttributeValue // nm, du, x: see extraAttrs
	mask     uint16                  // bit f set when opt[f] is present
	size     int    // DynamoDB item size estimate in bytes
}

// requiredAttrs are written by every event, in this order after the key.
var requiredAttrs = [...]string{keydesign.AttrIndexPK, keydesign.AttrIndexSK, aSeq, aStatus, aChannel, aDirection, aFrom, aTo, aSegments}

// extraAttrs are written by every event after the optional fields: media
// count, date_updated and the TTL.
var extraAttrs = [...]string{aMedia, aUpdated, aTTL}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

var flaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.DefaultCompression)
	return w
}}

// compress returns body DEFLATE-compressed if that is at least 15% smaller.
func compress(body string) ([]byte, bool) {
	if len(body) < compressMin {
		return nil, false
	}
	var buf bytes.Buffer
	buf.Grow(len(body) / 2)
	w := flaters.Get().(*flate.Writer)
	defer flaters.Put(w)
	w.Reset(&buf)
	if _, err := io.WriteString(w, body); err != nil {
		return nil, false
	}
	if err := w.Close(); err != nil {
		return nil, false
	}
	if buf.Len() > len(body)*85/100 {
		return nil, false
	}
	return buf.Bytes(), true
}

func decompress(b []byte) (string, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, MaxItemBytes*8))
	if err != nil {
		return "", fmt.Errorf("decompress body: %w", err)
	}
	return string(out), nil
}

// attrSize is DynamoDB's size of a name and a value, close enough to decide
// write units and the 400 KB limit (numbers are charged by digits).
func attrSize(name string, v types.AttributeValue) int {
	n := len(name)
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		n += len(v.Value)
	case *types.AttributeValueMemberN:
		n += (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		n += len(v.Value)
	case *types.AttributeValueMemberM:
		n += 3
		for k, e := range v.Value {
			n += 1 + attrSize(k, e)
		}
	default:
		n++
	}
	return n
}

// encode turns m into attribute values. indexPK is the index partition key
// chosen from the account's shard schedule; expires is the TTL.
func encode(m *postflight.Message, indexPK string, expires time.Time) *encoded {
	e := &encoded{}
	e.key = [2]types.AttributeValue{str(m.SID), str(m.AccountSID)}
	e.required = [9]types.AttributeValue{
		str(indexPK),
		str(keydesign.IndexSK(m.DateCreated, m.SID)),
		num(m.Sequence),
		num(int64(m.Status)),
		num(int64(m.Channel)),
		num(int64(m.Direction)),
		str(m.From),
		str(m.To),
		num(int64(m.NumSegments)),
	}
	set := func(f field, v types.AttributeValue) {
		e.opt[f] = v
		e.mask |= 1 << f
	}
	if m.Body != nil {
		if z, ok := compress(*m.Body); ok {
			set(fBodyZ, &types.AttributeValueMemberB{Value: z})
		} else {
			set(fBody, str(*m.Body))
		}
	}
	if m.PriceMicros != nil {
		set(fPrice, num(*m.PriceMicros))
	}
	if m.PriceUnit != nil {
		set(fPriceUnit, str(*m.PriceUnit))
	}
	if m.ErrorCode != nil {
		set(fErrorCode, num(int64(*m.ErrorCode)))
	}
	if m.MessagingServiceSID != nil {
		set(fMsgService, str(*m.MessagingServiceSID))
	}
	if m.ContentSID != nil {
		set(fContent, str(*m.ContentSID))
	}
	if len(m.Tags) > 0 {
		tags := make(map[string]types.AttributeValue, len(m.Tags))
		for k, v := range m.Tags {
			tags[k] = str(v)
		}
		set(fTags, &types.AttributeValueMemberM{Value: tags})
	}
	if m.DateSent != nil {
		set(fSent, num(m.DateSent.UnixMilli()))
	}
	e.size = attrSize(keydesign.AttrPK, e.key[0]) + attrSize(keydesign.AttrSK, e.key[1]) + attrSize(aRev, num(1))
	for i, v := range e.required {
		e.size += attrSize(requiredAttrs[i], v)
	}
	for f, v := range e.opt {
		if v != nil {
			e.size += attrSize(fieldAttr[f], v)
		}
	}
	e.extra = [3]types.AttributeValue{num(int64(m.NumMedia)), num(m.DateUpdated.UnixMilli()), num(expires.Unix())}
	for i, v := range e.extra {
		e.size += attrSize(extraAttrs[i], v)
	}
	return e
}

// decodeItem turns a stored item into a Message. ok is false for a tombstone
// or an item that is not a message.
func decodeItem(item map[string]types.AttributeValue) (m postflight.Message, ok bool, err error) {
	if _, dead := item[aDeleted]; dead {
		return m, false, nil
	}
	sk, _ := sAttr(item, keydesign.AttrIndexSK)
	if sk == "" {
		return m, false, nil
	}
	created, sid, err := keydesign.ParseIndexSK(sk)
	if err != nil {
		return m, false, fmt.Errorf("item %s: %w", sk, err)
	}
	m.SID = sid
	m.AccountSID, _ = sAttr(item, keydesign.AttrSK)
	m.DateCreated = created
	m.Sequence, _ = nAttr(item, aSeq)
	m.Revision, _ = nAttr(item, aRev)
	st, _ := nAttr(item, aStatus)
	ch, _ := nAttr(item, aChannel)
	dr, _ := nAttr(item, aDirection)
	m.Status, m.Channel, m.Direction = postflight.Status(st), postflight.Channel(ch), postflight.Direction(dr)
	m.From, _ = sAttr(item, aFrom)
	m.To, _ = sAttr(item, aTo)
	ns, _ := nAttr(item, aSegments)
	nm, _ := nAttr(item, aMedia)
	m.NumSegments, m.NumMedia = int32(ns), int32(nm)
	if b, ok := sAttr(item, aBody); ok {
		m.Body = &b
	} else if z, ok := item[aBodyZ].(*types.AttributeValueMemberB); ok {
		b, err := decompress(z.Value)
		if err != nil {
			return m, false, err
		}
		m.Body = &b
	}
	if v, ok := nAttr(item, aPrice); ok {
		m.PriceMicros = &v
	}
	if v, ok := sAttr(item, aPriceUnit); ok {
		m.PriceUnit = &v
	}
	if v, ok := nAttr(item, aErrorCode); ok {
		c := int32(v)
		m.ErrorCode = &c
	}
	if v, ok := sAttr(item, aMsgService); ok {
		m.MessagingServiceSID = &v
	}
	if v, ok := sAttr(item, aContent); ok {
		m.ContentSID = &v
	}
	if tg, ok := item[aTags].(*types.AttributeValueMemberM); ok && len(tg.Value) > 0 {
		m.Tags = make(map[string]string, len(tg.Value))
		for k, v := range tg.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				m.Tags[k] = s.Value
			}
		}
	}
	if v, ok := nAttr(item, aSent); ok {
		t := time.UnixMilli(v).UTC()
		m.DateSent = &t
	}
	du, _ := nAttr(item, aUpdated)
	m.DateUpdated = time.UnixMilli(du).UTC()
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
