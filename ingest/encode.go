package ingest

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/postflight/postflight"
)

// Encode returns the Confluent-framed Avro value of ev written with the
// built-in schema schemaID (SchemaIDv1 or SchemaIDv2). Producers of test data,
// the loadtest generator and `postflight produce` use it.
func Encode(schemaID uint32, ev *postflight.Event) ([]byte, error) {
	var s avro.Schema
	switch schemaID {
	case SchemaIDv1:
		s = schemaV1
	case SchemaIDv2:
		s = schemaV2
	default:
		return nil, fmt.Errorf("encode: %w %d", ErrUnknownSchema, schemaID)
	}
	w := wireEvent{
		EventID:             ev.EventID,
		AccountSID:          ev.AccountSID,
		MessageSID:          ev.MessageSID,
		Sequence:            ev.Sequence,
		Status:              strings.ToUpper(ev.Status.String()),
		Channel:             strings.ToUpper(ev.Channel.String()),
		Direction:           strings.ToUpper(ev.Direction.String()),
		From:                ev.From,
		To:                  ev.To,
		Body:                ev.Body,
		NumSegments:         ev.NumSegments,
		NumMedia:            ev.NumMedia,
		PriceMicros:         ev.PriceMicros,
		PriceUnit:           ev.PriceUnit,
		ErrorCode:           ev.ErrorCode,
		MessagingServiceSID: ev.MessagingServiceSID,
		DateCreated:         ev.DateCreated,
		DateSent:            ev.DateSent,
		EventTime:           ev.EventTime,
		ContentSID:          ev.ContentSID,
		Tags:                ev.Tags,
	}
	if w.Tags == nil {
		w.Tags = map[string]string{}
	}
	body, err := avroAPI.Marshal(s, &w)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	out := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(out[1:], schemaID)
	return append(out, body...), nil
}
