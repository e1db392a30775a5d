package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight/keydesign"
)

// State is what the table holds for one message key, as reconcile compares
// it: nothing, a tombstone, or a record with its winning sequence. An API
// correction (redaction, price) changes neither, so it is never a
// difference; a tombstone is reported as such.
type State struct {
	Key
	Found       bool      // a record or a tombstone exists
	Tombstone   bool      // deleted through the API: no event may bring it back
	Sequence    int64     // the stored winning sequence (records only)
	DateCreated time.Time // records only
}

// States reads the state of every key with strongly consistent
// BatchGetItem requests (MaxBatchGet keys each, projected to the key,
// and returns one State
// per distinct key, in no particular order. Retention is not applied.
func (s *Store) States(ctx context.Context, keys []Key) ([]State, error) {
	out := make([]State, 0, len(keys))
	seen := make(map[Key]int, len(keys))
	for len(keys) > 0 {
		chunk := make([]map[string]types.AttributeValue, 0, MaxBatchGet)
		for len(keys) > 0 && len(chunk) < MaxBatchGet {
			k := keys[0]
			keys = keys[1:]
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = len(out)
			out = append(out, State{Key: k})
			chunk = append(chunk, map[string]types.AttributeValue{keydesign.AttrPK: str(k.SID), keydesign.AttrSK: str(k.Account)})
		}
		err := s.batchGet(ctx, chunk, projectState, func(item map[string]types.AttributeValue) error {
			sid, _ := sAttr(item, keydesign.AttrPK)
			acc, _ := sAttr(item, keydesign.AttrSK)
			i, ok := seen[Key{Account: acc, SID: sid}]
			if !ok {
				return fmt.Errorf("item %s/%s was not asked for", acc, sid)
			}
			st := &out[i]
			st.Found = true
			if _, dead := item[aDeleted]; dead {
				st.Tombstone = true
				return nil
			}
			st.Sequence, _ = nAttr(item, aSeq)
			if sk, ok := sAttr(item, keydesign.AttrIndexSK); ok {
				created, _, err := keydesign.ParseIndexSK(sk)
				if err != nil {
					return fmt.Errorf("item %s: %w", sid, err)
				}
				st.DateCreated = created
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// projectState reads only what a State needs: the packed record d, the
// largest attribute, is left out (the read units are the same; the
// response is smaller and cheaper to decode).
func projectState(ka *types.KeysAndAttributes) {
	ka.ProjectionExpression = aws.String("#p, #s, #q, #t, #dl")
	ka.ExpressionAttributeNames = map[string]string{
		"#p": keydesign.AttrPK, "#s": keydesign.AttrSK, "#q": aSeq, "#t": keydesign.AttrIndexSK, "#dl": aDeleted,
	}
}

// RemoveRecord deletes a message's record outright (no tombstone) if it
// still holds sequence seq and is not a tombstone. reconcile --repair uses
// it for a record the stream says should not exist (stored with the
// sequence of a non-final event): without a tombstone, a final event that
// arrives later is written as usual. It reports whether it removed it.
func (s *Store) RemoveRecord(ctx context.Context, k Key, seq int64) (bool, error) {
	start := time.Now()
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       map[string]types.AttributeValue{keydesign.AttrPK: str(k.SID), keydesign.AttrSK: str(k.Account)},
		ConditionExpression:       aws.String("#q = :q AND attribute_not_exists(#dl)"),
		ExpressionAttributeNames:  map[string]string{"#q": aSeq, "#dl": aDeleted},
		ExpressionAttributeValues: map[string]types.AttributeValue{":q": num(seq)},
	})
	s.observe(ctx, "remove", start, err)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("remove record: %w", err)
	}
	return true, nil
}
