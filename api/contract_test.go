package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/api/openapitest"
)

// fakeStore is the package's one fake store (stub_test.go, exported by
// export_test.go): the handlers' HTTP contract is under test here, not
// DynamoDB; the integration tests in cmd/postflight run the same routes on
// DynamoDB Local.
type fakeStore = api.StubStore

var now = api.StubNow

const (
	acc = "AC0123456789abcdef0123456789abcdef"
	sid = "SM0123456789abcdef0123456789abcdef"
)

func TestContract(t *testing.T) {
	v := openapitest.New(t)
	path := filepath.Join(t.TempDir(), "auth.json")
	tok, err := api.WriteDevAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := api.NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(st *fakeStore, ready func(context.Context) error) http.Handler {
		s, err := api.New(api.Config{Now: func() time.Time { return now }}, st, auth, ready, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			w.Write([]byte("x 1\n"))
		}), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s.Handler()
	}
	ok := mk(api.NewStubStore(nil), nil)
	m := "/v1/accounts/" + acc + "/messages"
	one := m + "/" + sid
	ret := "/v1/accounts/" + acc + "/retention"
	type tc struct {
		h                        http.Handler
		method, target, ct, body string
		hdr                      []string
		noauth                   bool
		want                     int
	}
	cases := []tc{
		{ok, "GET", m, "", "", nil, false, 200},
		{ok, "GET", m + "?page_size=1", "", "", nil, false, 200},
		{ok, "GET", m + "?status=delivered&status=read&to=%2B1&from=%2B2&start=2025-05-01T00:00:00Z&end=2025-06-01T00:00:00Z", "", "", nil, false, 200},
		{ok, "GET", m + "?to=", "", "", nil, false, 200},
		{ok, "GET", m + "?page_token=", "", "", nil, false, 200},
		{ok, "GET", m + "?start=", "", "", nil, false, 200},
		{ok, "GET", m + "?page_size=", "", "", nil, false, 200},
		{ok, "GET", m + "?status=", "", "", nil, false, 400},
		{ok, "POST", one, "", "", nil, false, 405},
		{ok, "GET", "/nope", "", "", nil, false, 404},
		{ok, "GET", "/v1/accounts/" + acc + "/nope", "", "", nil, true, 404},
		{ok, "GET", m + "?status=delivered,read", "", "", nil, false, 400}, // repeat the parameter instead
		{ok, "GET", m + "?start=2025-05-01T00:00:00%2B02:00", "", "", nil, false, 200},
		{ok, "GET", m + "?end=2025-05-01T00:00:00Z", "", "", nil, false, 200},
		{ok, "GET", m + "?page_size=0", "", "", nil, false, 400},
		{ok, "GET", m + "?page_token=garbage", "", "", nil, false, 400},
		{ok, "GET", m + "?status=DELIVERED", "", "", nil, false, 400},
		{ok, "GET", m + "?start=yesterday", "", "", nil, false, 400},
		{ok, "GET", m + "?bogus=1", "", "", nil, false, 400},
		{ok, "GET", m, "", "", nil, true, 401},
		{ok, "GET", "/v1/accounts/AC1/messages", "", "", nil, false, 400},
		{ok, "GET", one, "", "", nil, false, 200},
		{ok, "GET", m + "/SM1", "", "", nil, false, 400},
		{mk(api.NewStubStore(postflight.ErrNotFound), nil), "GET", one, "", "", nil, false, 404},
		{mk(api.NewStubStore(errors.New("boom")), nil), "GET", one, "", "", nil, false, 500},
		{mk(api.NewStubStore(fmt.Errorf("item %s: %w", sid, postflight.ErrCorruptRecord)), nil), "GET", one, "", "", nil, false, 500},
		{ok, "PATCH", one, "application/merge-patch+json", `{"body":""}`, nil, false, 200},
		{ok, "PATCH", one, "application/json", `{"price_micros":-5,"price_unit":"EUR"}`, []string{"If-Match", `"2"`}, false, 200},
		{ok, "PATCH", one, "application/json", `{"body":""}`, []string{"If-Match", `"1"`}, false, 412},
		{ok, "PATCH", one, "application/json", `{"body":""}`, []string{"If-Match", `garbage`}, false, 400},
		// Strong comparison (RFC 9110 §13.1.1): a weak tag never matches.
		{ok, "PATCH", one, "application/json", `{"body":""}`, []string{"If-Match", `W/"2"`}, false, 412},
		{ok, "PATCH", one, "application/json", `{"body":""}`, []string{"If-Match", `W/"1", W/"2"`}, false, 412},
		{ok, "PATCH", one, "application/json", `{"body":""}`, []string{"If-Match", `"1", "2"`}, false, 200},
		{ok, "PATCH", one, "application/json", `{"body":""}`, []string{"If-Match", `W/"2", "2"`}, false, 200},
		// Concurrent changes that outlast the store's retries: 409, not 500.
		{mk(api.NewStubStore(fmt.Errorf("update: %w", postflight.ErrConflict)), nil), "PATCH", one, "application/json", `{"body":""}`, nil, false, 409},
		{mk(api.NewStubStore(fmt.Errorf("set retention: %w", postflight.ErrConflict)), nil), "PUT", ret, "application/json", `{"days":30}`, nil, false, 409},
		{ok, "PATCH", one, "application/json", `{"body":"x"}`, nil, false, 400},
		{ok, "PATCH", one, "application/json", `{}`, nil, false, 400},
		{ok, "PATCH", one, "application/json", `{"status":"read"}`, nil, false, 400},
		{ok, "PATCH", one, "application/json", `{"price_micros":null}`, nil, false, 400},
		{ok, "PATCH", one, "text/plain", `x`, nil, false, 415},
		{ok, "PATCH", one, "application/json", `{"body":"` + strings.Repeat("x", 70000) + `"}`, nil, false, 413},
		{ok, "DELETE", one, "", "", nil, false, 204},
		{ok, "GET", ret, "", "", nil, false, 200},
		{ok, "PUT", ret, "application/json", `{"days":30}`, nil, false, 200},
		{ok, "PUT", ret, "application/json", `{"days":0}`, nil, false, 400},
		{ok, "PUT", ret, "application/json", `{"days":1.5}`, nil, false, 400},
		{ok, "GET", "/healthz", "", "", nil, true, 200},
		{ok, "GET", "/readyz", "", "", nil, true, 200},
		{mk(api.NewStubStore(nil), func(context.Context) error { return errors.New("kafka down") }), "GET", "/readyz", "", "", nil, true, 503},
		{ok, "GET", "/metrics", "", "", nil, true, 200},
		{ok, "GET", "/openapi.json", "", "", nil, true, 200},
	}
	for _, c := range cases {
		var body *strings.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		var req *http.Request
		if body != nil {
			req = httptest.NewRequest(c.method, c.target, body)
		} else {
			req = httptest.NewRequest(c.method, c.target, nil)
		}
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		for i := 0; i < len(c.hdr); i += 2 {
			req.Header.Set(c.hdr[i], c.hdr[i+1])
		}
		if !c.noauth {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, b := v.Serve(t, c.h, req)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.target, resp.StatusCode, c.want, b)
		}
	}
}

// The noisy-neighbour limits and strict bodies answer as the spec says.
func TestContractLimitsAndStrictBodies(t *testing.T) {
	v := openapitest.New(t)
	path := filepath.Join(t.TempDir(), "auth.json")
	tok, err := api.WriteDevAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := api.NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Now: func() time.Time { return now }, RatePerToken: 1000, BurstPerToken: 1000, RatePerAccount: 1, BurstPerAccount: 2},
		api.NewStubStore(nil), auth, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do := func(method, target, ct, body string) (*http.Response, []byte) {
		t.Helper()
		var req *http.Request
		if body != "" {
			req = httptest.NewRequest(method, target, strings.NewReader(body))
			req.Header.Set("Content-Type", ct)
		} else {
			req = httptest.NewRequest(method, target, nil)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		return v.Serve(t, h, req)
	}
	// Strict bodies: each 400 names the member at fault. These use another
	// account each, so the account limit below is not touched.
	one := func(i int) string {
		return fmt.Sprintf("/v1/accounts/AC%032x/messages/%s", i, sid)
	}
	for i, c := range []struct{ ct, body, param string }{
		{"application/json", `{"BODY":""}`, "BODY"},
		{"application/json", `{"body":"","body":""}`, "body"},
		{"application/json", `{"body":"","price_micros":null}`, "price_micros"},
		{"application/json", `[]`, "body"},
		{"application/json", `{"price_micros":"5"}`, "price_micros"},
		{"application/json", `{"price_micros":5.5}`, "price_micros"},
		{"application/json", `{"price_unit":"usd"}`, "price_unit"},
		{"application/json", `{"body":"x"}`, "body"},
		{"application/json", `{"body":""}{}`, "body"},
		{"application/json", `{"body":`, "body"},
	} {
		resp, b := do("PATCH", one(i+1), c.ct, c.body)
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"name":"`+c.param+`"`) {
			t.Errorf("PATCH %s: %d %s, want 400 naming %s", c.body, resp.StatusCode, b, c.param)
		}
	}
	for i, c := range []struct{ body, param string }{
		{`{"days":null}`, "days"}, {`{"Days":30}`, "Days"}, {`{"days":"30"}`, "days"}, {`{}`, "days"}, {`{"days":3651}`, "days"},
	} {
		resp, b := do("PUT", fmt.Sprintf("/v1/accounts/AC%032x/retention", 100+i), "application/json", c.body)
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"name":"`+c.param+`"`) {
			t.Errorf("PUT %s: %d %s, want 400 naming %s", c.body, resp.StatusCode, b, c.param)
		}
	}
	// The account's burst is 2: the third request is a 429 with Retry-After,
	// on every /v1 route.
	m := "/v1/accounts/" + acc + "/messages"
	for _, c := range []struct{ method, target, ct, body string }{
		{"GET", m, "", ""}, {"GET", m + "/" + sid, "", ""},
	} {
		do(c.method, c.target, c.ct, c.body)
	}
	for _, c := range []struct{ method, target, ct, body string }{
		{"GET", m, "", ""},
		{"GET", m + "/" + sid, "", ""},
		{"PATCH", m + "/" + sid, "application/json", `{"body":""}`},
		{"DELETE", m + "/" + sid, "", ""},
		{"GET", "/v1/accounts/" + acc + "/retention", "", ""},
		{"PUT", "/v1/accounts/" + acc + "/retention", "application/json", `{"days":30}`},
	} {
		resp, b := do(c.method, c.target, c.ct, c.body)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %s, want 429 with Retry-After", c.method, c.target, resp.StatusCode, b)
		}
	}
	// Unlimited routes stay open.
	for _, p := range []string{"/healthz", "/openapi.json"} {
		if resp, _ := do("GET", p, "", ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}
