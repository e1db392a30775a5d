package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

// A stored record whose packed data was cut short or grew trailing bytes is
// an error on every read (Get, List, Update), counted and logged, never a
// message of zero values. Before the stored format was checked, hamba read a
// truncated record as zero values without error.
func TestCorruptRecordIsAnError(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	reader := sdkmetric.NewManualReader()
	var logs bytes.Buffer
	s := openStore(t, db, store.Config{}, slog.New(slog.NewTextHandler(&logs, nil)),
		sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	ctx := context.Background()

	acc := sid("AC")
	m := msg(acc, 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	key := map[string]types.AttributeValue{
		keydesign.AttrPK: &types.AttributeValueMemberS{Value: m.SID}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: acc},
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Config().Table), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Item["d"].(*types.AttributeValueMemberB).Value
	for _, damaged := range [][]byte{d[:len(d)-3], append(bytes.Clone(d), 0, 0)} {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.Config().Table), Key: key, UpdateExpression: aws.String("SET d = :d"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberB{Value: damaged}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrCorruptRecord) {
			t.Fatalf("Get: %v, read %+v", err, got)
		}
		q := postflight.ListQuery{Account: acc, Start: time.Now().Add(-24 * time.Hour), End: time.Now(), PageSize: 10}
		if page, err := s.List(ctx, q); !errors.Is(err, postflight.ErrCorruptRecord) {
			t.Fatalf("List: %v, read %+v", err, page)
		}
		if _, err := s.Update(ctx, acc, m.SID, store.Patch{Redact: true}, nil); !errors.Is(err, postflight.ErrCorruptRecord) {
			t.Fatalf("Update: %v", err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var counted int64
	for _, sm := range rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			if x.Name == "postflight.store.corrupt_records" {
				for _, p := range x.Data.(metricdata.Sum[int64]).DataPoints {
					counted += p.Value
				}
			}
		}
	}
	if counted != 6 {
		t.Errorf("postflight.store.corrupt_records = %d, want 6", counted)
	}
	if n := strings.Count(logs.String(), "stored record cannot be read"); n != 6 || !strings.Contains(logs.String(), m.SID) {
		t.Errorf("%d log lines naming the record, want 6:\n%s", n, logs.String())
	}
}
