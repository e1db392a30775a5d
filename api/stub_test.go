package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// stubStore is the one fake of the store for this package's handler tests,
// internal and external (export_test.go): the handlers' HTTP contract is
// under test, not DynamoDB (the real store is exercised by the benchmarks
// here and by the integration tests in cmd/postflight). Every method fails
// with err when it is set. List can be held until block is closed, to line
// up concurrent requests; it counts its calls.
type stubStore struct {
	err   error
	block chan struct{} // nil: List answers at once

	mu      sync.Mutex
	lists   []postflight.ListQuery
	patches []postflight.Patch
}

var _ Store = (*stubStore)(nil)

var stubNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func stubMessage(account string) postflight.Message {
	b := "hi"
	return postflight.Message{SID: sid1, AccountSID: account, Status: postflight.StatusDelivered, From: "+1", To: "+2",
		Body: &b, DateCreated: stubNow.Add(-time.Hour), DateUpdated: stubNow.Add(-time.Minute), Sequence: 3, Revision: 2}
}

func (f *stubStore) listCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.lists)
}

func (f *stubStore) Get(ctx context.Context, a, s string) (postflight.Message, error) {
	if f.err != nil {
		return postflight.Message{}, f.err
	}
	return stubMessage(a), nil
}

func (f *stubStore) List(ctx context.Context, q postflight.ListQuery) (postflight.ListPage, error) {
	if f.err != nil {
		return postflight.ListPage{}, f.err
	}
	f.mu.Lock()
	f.lists = append(f.lists, q)
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return postflight.ListPage{}, ctx.Err()
		}
	}
	m := stubMessage(q.Account)
	return postflight.ListPage{Messages: []postflight.Message{m}, Last: keydesign.IndexSK(m.DateCreated, m.SID), More: q.PageSize == 1}, nil
}

func (f *stubStore) Update(ctx context.Context, a, s string, p postflight.Patch, r *int64) (postflight.Message, error) {
	if f.err != nil {
		return postflight.Message{}, f.err
	}
	f.mu.Lock()
	f.patches = append(f.patches, p)
	f.mu.Unlock()
	if r != nil && *r != 2 {
		return postflight.Message{}, postflight.ErrPreconditionFailed
	}
	return stubMessage(a), nil
}

func (f *stubStore) Delete(ctx context.Context, a, s string) error { return f.err }

func (f *stubStore) RetentionDays(ctx context.Context, a string) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return 400, nil
}

func (f *stubStore) SetRetentionDays(ctx context.Context, a string, d int) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return d, nil
}

// newStubServer returns the handler of a Server on st with the test tokens
// (testTokens) and cfg (Now defaults to stubNow).
func newStubServer(t testing.TB, cfg Config, st Store) (*Server, http.Handler) {
	t.Helper()
	a := NewStaticAuthenticator(mustTokens(t))
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return stubNow }
	}
	s, err := New(cfg, st, a, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Handler()
}

func mustTokens(t testing.TB) *Tokens {
	t.Helper()
	data, err := json.Marshal(testTokens())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseTokens(data)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serve runs one request through h and returns the recorder.
func serve(h http.Handler, method, target, token string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
