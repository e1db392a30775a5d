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

// TestWriteBatchStoredSkipsTheFailingInsert, on DynamoDB Local: messages the
// caller knows are stored go straight to the conditional UPDATE, in one
// request and with no INSERT; a message wrongly said stored (not in the
// table) is still written, through the UPDATE's failed condition and
// resolve; a tombstone and a higher stored sequence still win.
func TestWriteBatchStoredSkipsTheFailingInsert(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	reader := sdkmetric.NewManualReader()
	s := openStore(t, testenv.DynamoDBClient(t, ep), store.Config{}, nil,
		sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	ctx := context.Background()
	acct := sid("AC")
	now := time.Now().Add(-time.Hour)
	a, b, gone := msg(acct, 3, postflight.StatusDelivered, now), msg(acct, 3, postflight.StatusDelivered, now), msg(acct, 3, postflight.StatusDelivered, now)
	wantOutcomes(t, write(t, s, a, b, gone), postflight.Applied, postflight.Applied, postflight.Applied)
	if err := s.Delete(ctx, acct, gone.SID); err != nil {
		t.Fatal(err)
	}
	before := requests(t, reader)
	fresh := msg(acct, 2, postflight.StatusDelivered, now)
	msgs := []*postflight.Message{withSeq(a, 4, postflight.StatusRead), withSeq(b, 2, postflight.StatusSent), fresh, withSeq(gone, 9, postflight.StatusRead)}
	res := make([]postflight.WriteResult, len(msgs))
	s.WriteBatchStored(ctx, msgs, []bool{true, true, true, true}, res)
	wantOutcomes(t, res, postflight.Applied, postflight.Superseded, postflight.Applied, postflight.Tombstoned)
	after := requests(t, reader)
	if after["insert"] != before["insert"] || after["update"] != before["update"]+1 {
		t.Errorf("requests before %v, after %v: want no INSERT batch and one UPDATE batch", before, after)
	}
	for _, m := range []*postflight.Message{msgs[0], fresh} {
		got, err := s.Get(ctx, acct, m.SID)
		if err != nil || got.Sequence != m.Sequence || got.Status != m.Status {
			t.Fatalf("%s: got %+v, %v; want sequence %d status %v", m.SID, got, err, m.Sequence, m.Status)
		}
	}
	if got, _ := s.Get(ctx, acct, b.SID); got.Sequence != 3 {
		t.Fatalf("older event overwrote: sequence %d", got.Sequence)
	}
}

// requests returns postflight.store.requests by op.
func requests(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "postflight.store.requests" {
				for _, dp := range sum.DataPoints {
					op, _ := dp.Attributes.Value(attribute.Key("op"))
					out[op.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}
