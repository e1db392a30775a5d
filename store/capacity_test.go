package store_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/fakeddb"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// writeUnits returns postflight.store.write_units by table and op.
func writeUnits(t *testing.T, reader *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[float64]); ok && m.Name == "postflight.store.write_units" {
				for _, dp := range sum.DataPoints {
					tb, _ := dp.Attributes.Value(attribute.Key("table"))
					op, _ := dp.Attributes.Value(attribute.Key("op"))
					out[tb.AsString()+"/"+op.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

// TestWriteUnitsOfEventBatches: the store asks for the consumed capacity of
// its event-write batches and counts it, base table and index apart, by
// statement kind: a new message costs an INSERT; a later event of a stored
// message a failed INSERT and an UPDATE. DynamoDB Local answers
// BatchExecuteStatement without ConsumedCapacity whatever is asked, so this
// test runs against internal/fakeddb, which bills as DynamoDB does for
// items under 1 KB (TestSenderSignsLikeSDK holds the parsing to the SDK's).
func TestWriteUnitsOfEventBatches(t *testing.T) {
	srv := httptest.NewServer(&fakeddb.Handler{})
	t.Cleanup(srv.Close)
	reader := sdkmetric.NewManualReader()
	s, err := store.New(testenv.DynamoDBClient(t, srv.URL), store.Config{Table: "t"}, nil,
		sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	acct := sid("AC")
	now := time.Now()
	msgs := []*postflight.Message{msg(acct, 3, postflight.StatusDelivered, now), msg(acct, 3, postflight.StatusDelivered, now)}
	wantOutcomes(t, write(t, s, msgs...), postflight.Applied, postflight.Applied)
	if u := writeUnits(t, reader); u["base/insert"] != 2 || u["index/insert"] != 2 || len(u) != 2 {
		t.Fatalf("two new small messages: write units %v, want base/insert 2 and index/insert 2", u)
	}
	wantOutcomes(t, write(t, s, withSeq(msgs[0], 4, postflight.StatusRead), withSeq(msgs[1], 4, postflight.StatusRead)),
		postflight.Applied, postflight.Applied)
	if u := writeUnits(t, reader); u["base/insert"] != 4 || u["index/insert"] != 2 || u["base/update"] != 2 || u["index/update"] != 2 {
		t.Fatalf("two later events: write units %v, want base/insert 4 (two failed), index/insert 2, base/update 2, index/update 2", u)
	}
}
