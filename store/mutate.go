package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// Patch is an API correction of a stored message. A nil field is left alone.
type Patch struct {
	Redact      bool    // set the body to "" for good
	PriceMicros *int64  // correct the price; pins it against later events
	PriceUnit   *string // correct the currency; pins it too
}

// Update applies a correction. ifRevision, when not nil, must equal the
// stored revision (the API's If-Match) or ErrPreconditionFailed is returned.
func (s *Store) Update(ctx context.Context, account, sid string, p Patch, ifRevision *int64) (postflight.Message, error) {
	if _, err := s.Get(ctx, account, sid); err != nil { // retention and tombstones hide it
		return postflight.Message{}, err
	}
	names := map[string]string{"#p": keydesign.AttrPK, "#dl": aDeleted, "#v": aRev}
	values := map[string]types.AttributeValue{":one": num(1)}
	set := "SET #v = #v + :one"
	remove := ""
	if p.Redact {
		names["#b"], names["#bz"], names["#rd"] = aBody, aBodyZ, aRedacted
		values[":empty"] = str("")
		set += ", #b = :empty, #rd = :one"
		remove = " REMOVE #bz"
	}
	if p.PriceMicros != nil || p.PriceUnit != nil {
		names["#pc"] = aPriceFixed
		set += ", #pc = :one"
	}
	if p.PriceMicros != nil {
		names["#pm"] = aPrice
		values[":pm"] = num(*p.PriceMicros)
		set += ", #pm = :pm"
	}
	if p.PriceUnit != nil {
		names["#pu"] = aPriceUnit
		values[":pu"] = str(*p.PriceUnit)
		set += ", #pu = :pu"
	}
	cond := "attribute_exists(#p) AND attribute_not_exists(#dl)"
	if ifRevision != nil {
		values[":rev"] = num(*ifRevision)
		cond += " AND #v = :rev"
	}
	start := time.Now()
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 map[string]types.AttributeValue{keydesign.AttrPK: str(sid), keydesign.AttrSK: str(account)},
		UpdateExpression:                    aws.String(set + remove),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	s.observe(ctx, "patch", start, err)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// Deleted or gone since the read above, or the revision moved on.
		if _, gerr := s.Get(ctx, account, sid); gerr != nil {
			return postflight.Message{}, gerr
		}
		return postflight.Message{}, postflight.ErrPreconditionFailed
	}
	if err != nil {
		return postflight.Message{}, fmt.Errorf("update message: %w", err)
	}
	m, ok, err := decodeItem(out.Attributes)
	if err != nil {
		return m, err
	}
	if !ok {
		return m, postflight.ErrNotFound
	}
	return m, nil
}

// Delete replaces a message by a tombstone: every data attribute is removed
// (the item leaves the index), and the conditional writes of later or
// replayed events fail on it. It is idempotent, and it also works before the
// message's first event has been ingested: the tombstone is waiting for it.
//
// The tombstone expires MaxRetentionDays after the later of now and the
// message's date_created: by then any replayed event for it is past every
// possible retention and is dropped at ingest as Expired, so nothing can
// resurrect it, even after the account's retention is raised.
func (s *Store) Delete(ctx context.Context, account, sid string) error {
	now := s.cfg.Now()
	remove := []string{keydesign.AttrIndexPK, keydesign.AttrIndexSK, aStatus, aChannel, aDirection, aFrom, aTo,
		aBody, aBodyZ, aSegments, aMedia, aPrice, aPriceUnit, aErrorCode, aMsgService, aContent, aTags, aSent,
		aUpdated, aRedacted, aPriceFixed}
	names := map[string]string{"#dl": aDeleted, "#v": aRev, "#x": aTTL}
	expr := "REMOVE "
	for i, a := range remove {
		n := fmt.Sprintf("#r%d", i)
		names[n] = a
		if i > 0 {
			expr += ", "
		}
		expr += n
	}
	expires := now.Add(days(MaxRetentionDays) + 24*time.Hour).Unix()
	start := time.Now()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       map[string]types.AttributeValue{keydesign.AttrPK: str(sid), keydesign.AttrSK: str(account)},
		UpdateExpression:          aws.String("SET #dl = :one, #v = if_not_exists(#v, :zero) + :one, #x = :x " + expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":zero": num(0), ":x": num(expires)},
	})
	s.observe(ctx, "delete", start, err)
	if err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	return nil
}
