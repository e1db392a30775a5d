package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// recordingProxy forwards every request to DynamoDB Local and keeps the
// operation (X-Amz-Target) and JSON body of each.
type recordingProxy struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	op   string
	body map[string]any
}

func newRecordingProxy(t *testing.T, endpoint string) (*recordingProxy, string) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndexByte(op, '.')+1:]
		p.mu.Lock()
		p.reqs = append(p.reqs, recordedRequest{op: op, body: body})
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *recordingProxy) take() []recordedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.reqs
	p.reqs = nil
	return out
}

// The API's reads of one message must see its own deletes and redactions:
// right after a DELETE the contract says 404, right after a redacting PATCH
// the body is "". DynamoDB Local is always consistent, so the test checks
// what the requests carry: every GetItem and BatchGetItem the store sends
// asks for a strongly consistent read. (Lists read the index, where
// DynamoDB offers only eventual consistency; see README, "API".)
func TestReadsOfOneMessageAreConsistent(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	proxy, url := newRecordingProxy(t, ep)
	s := openStore(t, testenv.DynamoDBClient(t, url), store.Config{}, nil, nil)
	ctx := context.Background()
	acc := sid("AC")
	m := msg(acc, 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	proxy.take()

	if _, err := s.Get(ctx, acc, m.SID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Update(ctx, acc, m.SID, store.Patch{Redact: true}, nil); err != nil || *got.Body != "" {
		t.Fatalf("redact: %v", err)
	}
	if got, err := s.Get(ctx, acc, m.SID); err != nil || *got.Body != "" {
		t.Fatalf("get after redaction: %+v, %v", got, err)
	}
	if err := s.Delete(ctx, acc, m.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.BatchGet(ctx, []store.Key{{Account: acc, SID: m.SID}}); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, r := range proxy.take() {
		switch r.op {
		case "GetItem":
			reads++
			if r.body["ConsistentRead"] != true {
				t.Errorf("GetItem of %v without ConsistentRead: %v", r.body["Key"], r.body)
			}
		case "BatchGetItem":
			reads++
			for table, ka := range r.body["RequestItems"].(map[string]any) {
				if ka.(map[string]any)["ConsistentRead"] != true {
					t.Errorf("BatchGetItem of %s without ConsistentRead: %v", table, ka)
				}
			}
		}
	}
	if reads < 5 {
		t.Fatalf("saw %d reads of single messages, want at least 5", reads)
	}
}
