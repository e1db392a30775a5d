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

// Patch is the domain's correction of a stored message.
type Patch = postflight.Patch

// Update applies a correction. ifRevision, when not nil, must equal the
// stored revision (the API's If-Match) or ErrPreconditionFailed is returned.
// It reads the item, applies the patch to the packed data, and writes it back
// on condition that the revision has not moved (retrying a concurrent event
// write when no If-Match was given). The pin markers make later events keep
// the corrected fields (see resolve).
func (s *Store) Update(ctx context.Context, account, sid string, p Patch, ifRevision *int64) (postflight.Message, error) {
	acc, err := s.FreshAccount(ctx, account)
	if err != nil {
		return postflight.Message{}, err
	}
	key := map[string]types.AttributeValue{keydesign.AttrPK: str(sid), keydesign.AttrSK: str(account)}
	for range 5 {
		start := time.Now()
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
		s.observe(ctx, "patch", start, err)
		if err != nil {
			return postflight.Message{}, wrapErr("read message", err)
		}
		m, ok, err := s.decode(ctx, out.Item)
		if err != nil {
			return m, err
		}
		if !ok || m.DateCreated.Before(s.retentionCutoff(acc)) {
			return postflight.Message{}, postflight.ErrNotFound
		}
		if ifRevision != nil && *ifRevision != m.Revision {
			return postflight.Message{}, postflight.ErrPreconditionFailed
		}
		names := map[string]string{"#d": aData, "#v": aRev, "#dl": aDeleted}
		set := "SET #d = :d, #v = #v + :one"
		if p.Redact {
			empty := ""
			m.Body = &empty
			names["#rd"] = aRedacted
			set += ", #rd = :one"
		}
		if p.PriceMicros != nil || p.PriceUnit != nil {
			names["#pc"] = aPriceFixed
			set += ", #pc = :one"
		}
		if p.PriceMicros != nil {
			m.PriceMicros = p.PriceMicros
		}
		if p.PriceUnit != nil {
			m.PriceUnit = p.PriceUnit
		}
		d := pack(&m)
		start = time.Now()
		upd, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                &s.table,
			Key:                      key,
			UpdateExpression:         aws.String(set),
			ConditionExpression:      aws.String("#v = :rev AND attribute_not_exists(#dl)"),
			ExpressionAttributeNames: names,
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":d": &types.AttributeValueMemberB{Value: d}, ":one": num(1), ":rev": num(m.Revision),
			},
			ReturnValues: types.ReturnValueAllNew,
		})
		s.observe(ctx, "patch", start, err)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			if ifRevision != nil {
				return postflight.Message{}, postflight.ErrPreconditionFailed
			}
			continue // an event or another patch landed in between: read again
		}
		if err != nil {
			return postflight.Message{}, wrapErr("update message", err)
		}
		m, ok, err = s.decode(ctx, upd.Attributes)
		if err != nil {
			return m, err
		}
		if !ok {
			return m, postflight.ErrNotFound
		}
		return m, nil
	}
	return postflight.Message{}, ErrConflict
}

// Delete replaces a message by a tombstone: every data attribute is removed
// (the item leaves the index), and the conditional writes of later or
// replayed events fail on it. It is idempotent, and it also works before the
// message's first event has been ingested: the tombstone is waiting for it.
//
// The tombstone expires MaxRetentionDays and one day after now. A stored
// message's date_created is at most Config.MaxClockSkew (15 minutes) after
// the time its event was written, so before now plus the day: by the time
// the tombstone expires, any replayed event for the message is past every
// possible retention and is dropped at ingest as Expired, so nothing can
// resurrect it, even after the account's retention is raised. (A tombstone
// written before the message's first event waits for it the same way; an
// event dated more than a day after such a delete would outlive it by that
// much.)
func (s *Store) Delete(ctx context.Context, account, sid string) error {
	now := s.cfg.Now()
	remove := []string{keydesign.AttrIndexPK, keydesign.AttrIndexSK, aStatus, aFrom, aTo, aData, aRedacted, aPriceFixed}
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
		return wrapErr("delete message", err)
	}
	return nil
}
