package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

// A redaction, and a winning sequence, outlive the item's TTL: once TTL has
// removed a record, raising the account's retention must not let a replay
// of its old events write it again (the original body, or a lower
// sequence). TTL's sweep is simulated by deleting the item, as DynamoDB's
// TTL does; the clock is the store's.
func TestRedactionAndSequenceOutliveTTL(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	clk := newFakeClock()
	start, now := clk.start, clk.Now
	s := openStore(t, db, store.Config{Now: now}, nil, nil)
	ctx := context.Background()

	acc := sid("AC")
	if _, err := s.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	created := start.Add(-20 * 24 * time.Hour)
	redacted := msg(acc, 5, postflight.StatusDelivered, created)
	winner := msg(acc, 5, postflight.StatusDelivered, created)
	wantOutcomes(t, write(t, s, redacted, winner), postflight.Applied, postflight.Applied)
	if _, err := s.Update(ctx, acc, redacted.SID, store.Patch{Redact: true}, nil); err != nil {
		t.Fatal(err)
	}

	// 15 days on, both are past the 30 days and TTL removes them.
	clk.Set(15 * 24 * time.Hour)
	for _, m := range []*postflight.Message{redacted, winner} {
		if _, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrNotFound) {
			t.Fatalf("past retention: %v", err)
		}
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.Config().Table), Key: map[string]types.AttributeValue{
			keydesign.AttrPK: &types.AttributeValueMemberS{Value: m.SID}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: acc},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A day later the retention is raised, and old events are replayed.
	clk.Set(16 * 24 * time.Hour)
	if _, err := s.SetRetention(ctx, acc, 400); err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	wantOutcomes(t, write(t, s, redacted, withSeq(winner, 3, postflight.StatusSent)), postflight.Expired, postflight.Expired)
	for _, m := range []*postflight.Message{redacted, winner} {
		if got, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrNotFound) {
			t.Fatalf("replayed after TTL: %v, body %v, sequence %d", err, *got.Body, got.Sequence)
		}
	}
	// Messages created after the old policy's horizon are written as before.
	fresh := msg(acc, 1, postflight.StatusDelivered, now().Add(-29*24*time.Hour))
	wantOutcomes(t, write(t, s, fresh), postflight.Applied)
	// Lowering and raising again keeps the horizon of the lower policy.
	if _, err := s.SetRetention(ctx, acc, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRetention(ctx, acc, 400); err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	wantOutcomes(t, write(t, s, msg(acc, 1, postflight.StatusDelivered, now().Add(-11*24*time.Hour))), postflight.Expired)
	c, err := s.FreshAccount(ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	if want := now().Add(-10 * 24 * time.Hour); !c.RetentionFloor.Equal(want) {
		t.Fatalf("retention floor %v, want %v", c.RetentionFloor, want)
	}
}

// The tombstone's TTL is what Delete's comment says: MaxRetentionDays and a
// day after the delete, past the date_created of any event of the message
// (at most MaxClockSkew ahead of its write).
func TestTombstoneTTL(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	at := time.Now().UTC().Truncate(time.Second)
	s := openStore(t, db, store.Config{Now: func() time.Time { return at }}, nil, nil)
	ctx := context.Background()
	acc := sid("AC")
	m := msg(acc, 1, postflight.StatusDelivered, at.Add(s.Config().MaxClockSkew))
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	if err := s.Delete(ctx, acc, m.SID); err != nil {
		t.Fatal(err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Config().Table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			keydesign.AttrPK: &types.AttributeValueMemberS{Value: m.SID}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: acc},
		}})
	if err != nil {
		t.Fatal(err)
	}
	x := out.Item["x"].(*types.AttributeValueMemberN).Value
	want := at.Add(time.Duration(store.MaxRetentionDays)*24*time.Hour + 24*time.Hour)
	if x != strconv.FormatInt(want.Unix(), 10) {
		t.Fatalf("tombstone TTL %s, want %d", x, want.Unix())
	}
	if !want.After(m.DateCreated.Add(time.Duration(store.MaxRetentionDays) * 24 * time.Hour)) {
		t.Fatal("the tombstone expires before the message's events are past every retention")
	}
}

// start and end of a list may carry sub-millisecond precision; records keep
// date_created to the millisecond, and the range stays exactly half-open:
// a message at T is in [start, end) iff start ≤ T < end.
func TestListRangeSubMillisecond(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	m := msg(acc, 1, postflight.StatusDelivered, at)
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	half := 500 * time.Microsecond
	for _, c := range []struct {
		start, end time.Time
		want       int
	}{
		{at, at.Add(time.Millisecond), 1},
		{at.Add(-half), at.Add(half), 1},
		{at.Add(half), at.Add(time.Hour), 0},
		{at.Add(-time.Hour), at, 0},
		{at.Add(-time.Hour), at.Add(-half), 0},
		{at.Add(-time.Hour), at.Add(time.Nanosecond), 1},
		{at.Add(-time.Nanosecond), at.Add(time.Hour), 1},
		{at.Add(time.Nanosecond), at.Add(time.Hour), 0},
	} {
		page, err := s.List(ctx, postflight.ListQuery{Account: acc, Start: c.start, End: c.end, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != c.want {
			t.Errorf("[%s, %s): %d messages, want %d (created %s)", c.start.Format(time.RFC3339Nano), c.end.Format(time.RFC3339Nano),
				len(page.Messages), c.want, at.Format(time.RFC3339Nano))
		}
	}
}

// A malformed stored shard schedule must not make every request of the
// account fail: reads, corrections, deletes and retention work on the rest
// of its configuration; only a list, which needs the schedule, fails; and a
// retention change leaves the stored schedule as it was (for an operator to
// repair with "postflight shards set").
func TestMalformedScheduleFailsOnlyLists(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	s := openStore(t, db, store.Config{}, nil, nil)
	ctx := context.Background()
	acc := sid("AC")
	m := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	key := map[string]types.AttributeValue{
		keydesign.AttrPK: &types.AttributeValueMemberS{Value: "cfg"}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: acc},
	}
	const bad = `{"epochs": [{"shards": "many"`
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Config().Table), Item: map[string]types.AttributeValue{
		keydesign.AttrPK: key[keydesign.AttrPK], keydesign.AttrSK: key[keydesign.AttrSK],
		"r": &types.AttributeValueMemberN{Value: "30"}, "sc": &types.AttributeValueMemberS{Value: bad}, "v": &types.AttributeValueMemberN{Value: "1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, acc, m.SID); err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.Update(ctx, acc, m.SID, store.Patch{Redact: true}, nil); err != nil {
		t.Errorf("Update: %v", err)
	}
	if d, err := s.RetentionDays(ctx, acc); err != nil || d != 30 {
		t.Errorf("RetentionDays: %d, %v", d, err)
	}
	if d, err := s.SetRetentionDays(ctx, acc, 60); err != nil || d != 60 {
		t.Errorf("SetRetentionDays: %d, %v", d, err)
	}
	if _, err := s.List(ctx, postflight.ListQuery{Account: acc, Start: time.Now().Add(-24 * time.Hour), End: time.Now(), PageSize: 5}); err == nil {
		t.Error("List with a malformed schedule: no error")
	}
	if err := s.Delete(ctx, acc, m.SID); err != nil {
		t.Errorf("Delete: %v", err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Config().Table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if sc := out.Item["sc"].(*types.AttributeValueMemberS).Value; sc != bad {
		t.Errorf("the retention change rewrote the schedule: %s", sc)
	}
}
