package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

func TestBatchGet(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	created := time.Now().Add(-time.Hour)
	want := map[string]*postflight.Message{}
	var keys []store.Key
	for i := range 230 { // three requests: 100, 100, 30
		m := msg(acc, int64(1+i%4), postflight.StatusDelivered, created.Add(time.Duration(i)*time.Millisecond))
		want[m.SID] = m
		keys = append(keys, store.Key{Account: acc, SID: m.SID})
	}
	var batch []*postflight.Message
	for _, k := range keys {
		batch = append(batch, want[k.SID])
		if len(batch) == store.MaxBatch {
			wantOutcomes(t, write(t, s, batch...), repeat(postflight.Applied, len(batch))...)
			batch = batch[:0]
		}
	}
	wantOutcomes(t, write(t, s, batch...), repeat(postflight.Applied, len(batch))...)
	// A tombstone, a message of another account, a missing message and a
	// repeated key are all left out (or read once).
	if err := s.Delete(ctx, acc, keys[7].SID); err != nil {
		t.Fatal(err)
	}
	delete(want, keys[7].SID)
	keys = append(keys, store.Key{Account: sid("AC"), SID: keys[8].SID}, store.Key{Account: acc, SID: sid("SM")}, keys[9], keys[9])

	got, err := s.BatchGet(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("BatchGet returned %d messages, want %d", len(got), len(want))
	}
	for _, m := range got {
		w, ok := want[m.SID]
		if !ok {
			t.Fatalf("unexpected message %s", m.SID)
		}
		delete(want, m.SID)
		m.Revision = 0
		if deref(m) != deref(*w) || m.Sequence != w.Sequence {
			t.Fatalf("message %s:\n got %s\nwant %s", m.SID, deref(m), deref(*w))
		}
	}
	if got, err := s.BatchGet(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("BatchGet(nil) = %v, %v", got, err)
	}
}

func repeat(o postflight.WriteOutcome, n int) []postflight.WriteOutcome {
	out := make([]postflight.WriteOutcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// TestBatchGetUnprocessedKeys reads through a proxy in front of DynamoDB
// Local that passes on at most 30 keys of each BatchGetItem and hands the
// rest back as UnprocessedKeys, as DynamoDB does when it throttles or an
// answer would pass 16 MB. (DynamoDB Local itself only does the latter,
// which takes 16 MB of items through the SDK: some 20 s under -race.) The
// items are real; only the partial answers are the proxy's.
func TestBatchGetUnprocessedKeys(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ep := testenv.DynamoDBEndpoint(t)
	table := testenv.TableName(t)
	direct := openStore(t, testenv.DynamoDBClient(t, ep), store.Config{Table: table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	ctx := context.Background()
	var pass atomic.Int64
	pass.Store(30)
	proxy := httptest.NewServer(partialBatchGet(t, ep, &pass))
	defer proxy.Close()
	s, err := store.New(testenv.DynamoDBClient(t, proxy.URL), store.Config{Table: table, AttemptTimeout: testenv.AttemptTimeout}, nil, mp)
	if err != nil {
		t.Fatal(err)
	}

	acc := sid("AC")
	want := map[string]int64{}
	var keys []store.Key
	var batch []*postflight.Message
	for i := range 100 {
		m := msg(acc, int64(1+i), postflight.StatusDelivered, time.Now().Add(-time.Hour))
		want[m.SID] = m.Sequence
		keys = append(keys, store.Key{Account: acc, SID: m.SID})
		if batch = append(batch, m); len(batch) == store.MaxBatch {
			wantOutcomes(t, write(t, direct, batch...), repeat(postflight.Applied, len(batch))...)
			batch = batch[:0]
		}
	}
	got, err := s.BatchGet(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("BatchGet returned %d messages, want %d", len(got), len(keys))
	}
	for _, m := range got {
		if want[m.SID] != m.Sequence {
			t.Fatalf("message %s: sequence %d, want %d", m.SID, m.Sequence, want[m.SID])
		}
	}
	if n := batchGetRequests(t, reader); n != 4 { // 30 + 30 + 30 + 10 keys
		t.Fatalf("%d BatchGetItem requests, want 4", n)
	}

	// Nothing is ever processed: BatchGet backs off until ctx ends.
	pass.Store(0)
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.BatchGet(tctx, keys[:5]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BatchGet with every key unprocessed: %v, want the context's deadline", err)
	}
}

// partialBatchGet is a proxy to the DynamoDB at upstream that forwards at
// most pass keys of each BatchGetItem and answers the rest as
// UnprocessedKeys (all of them, without asking DynamoDB, when pass is 0).
// Other requests pass unchanged.
func partialBatchGet(t *testing.T, upstream string, pass *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var rest map[string]any // table → KeysAndAttributes of the keys held back
		if r.Header.Get("X-Amz-Target") == "DynamoDB_20120810.BatchGetItem" {
			var req map[string]map[string]map[string]any
			if err := json.Unmarshal(body, &req); err != nil {
				t.Errorf("proxy: %v", err)
			}
			rest = map[string]any{}
			for table, ka := range req["RequestItems"] {
				ks := ka["Keys"].([]any)
				n := min(int(pass.Load()), len(ks))
				if n < len(ks) {
					held := maps.Clone(ka)
					held["Keys"] = ks[n:]
					rest[table] = held
				}
				ka["Keys"] = ks[:n]
			}
			if pass.Load() == 0 {
				writeDynamo(w, map[string]any{"Responses": map[string]any{}, "UnprocessedKeys": rest})
				return
			}
			body, _ = json.Marshal(req)
		}
		up, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		up.Header = r.Header.Clone()
		up.Header.Del("Content-Length")
		resp, err := http.DefaultClient.Do(up)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if rest == nil || resp.StatusCode != http.StatusOK {
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			w.Write(out)
			return
		}
		var answer map[string]any
		if err := json.Unmarshal(out, &answer); err != nil {
			t.Errorf("proxy: %v", err)
		}
		answer["UnprocessedKeys"] = rest
		writeDynamo(w, answer)
	})
}

// writeDynamo answers JSON with the CRC32 header the SDK checks.
func writeDynamo(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 10))
	w.Write(b)
}

// batchGetRequests sums the store's request counter for op=batch_get.
func batchGetRequests(t *testing.T, reader *sdkmetric.ManualReader) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != "postflight.store.requests" || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				if v, _ := dp.Attributes.Value(attribute.Key("op")); v.AsString() == "batch_get" {
					n += dp.Value
				}
			}
		}
	}
	return n
}
