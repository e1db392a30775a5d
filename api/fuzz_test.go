package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
)

// Seeds beyond these live in testdata/fuzz/<target>/ (go test runs them as
// part of the normal test run).

// FuzzParseList feeds arbitrary query strings to the list parser and to the
// whole list route: the parser's invariants hold for anything it accepts,
// and the route answers 200 or a 400 naming the culprits, never a 5xx.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"", "page_size=1", "page_size=1000", "page_size=1001", "page_size=0", "page_size=-1", "page_size=1e3",
		"status=delivered&status=read&status=delivered", "status=DELIVERED", "status=", "status=queued",
		"start=2025-05-01T00:00:00Z&end=2025-06-01T00:00:00Z", "end=2025-05-01T00:00:00Z&start=2025-06-01T00:00:00Z",
		"start=1999-12-31T23:59:59Z", "start=2025-05-01T00:00:00%2B14:00", "start=2025-05-01", "end=10000-01-01T00:00:00Z",
		"to=%2B15550001111&from=%2B15550002222", "to=" + strings.Repeat("x", 257), "to=%00", "from=%FF",
		"page_token=AAAA", "page_token=", "page_size=5&page_size=6", "bogus=1", "%zz", "a=b&&c", ";",
		"start=2024-01-01T00:00:00Z&end=2025-06-01T00:00:00Z",
	} {
		f.Add(s)
	}
	_, h := newStubServer(f, Config{RatePerToken: -1, RatePerAccount: -1}, &stubStore{})
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // as r.URL.Query(): what parsed, errors ignored
		p, err := parseList(acc1, v)
		if err != nil {
			params := invalidParams(err)
			if len(params) == 0 {
				t.Fatalf("%q: error without invalid params: %v", raw, err)
			}
			for _, ip := range params {
				if ip.Reason == "" {
					t.Fatalf("%q: invalid param %q without a reason", raw, ip.Name)
				}
			}
		} else {
			if p.q.PageSize < 1 || p.q.PageSize > maxPageSize {
				t.Fatalf("%q: page size %d", raw, p.q.PageSize)
			}
			if !slices.IsSorted(p.q.Statuses) || len(slices.Compact(slices.Clone(p.q.Statuses))) != len(p.q.Statuses) {
				t.Fatalf("%q: statuses %v not sorted and unique", raw, p.q.Statuses)
			}
			if len(p.q.To) > maxFilterLen || len(p.q.From) > maxFilterLen || len(p.token) > 256 {
				t.Fatalf("%q: over-long value accepted", raw)
			}
			_ = p.fingerprint()
			_ = p.flightKey(nil)
			if err := p.resolveRange(stubNow, 30*24*time.Hour, 400*24*time.Hour); err == nil {
				if p.q.End.Before(p.q.Start) || p.q.End.Sub(p.q.Start) > 400*24*time.Hour {
					t.Fatalf("%q: range [%s, %s) accepted", raw, p.q.Start, p.q.End)
				}
			} else if len(invalidParams(err)) == 0 {
				t.Fatalf("%q: range error without invalid params: %v", raw, err)
			}
		}

		req := &http.Request{
			Method: "GET", URL: &url.URL{Path: "/v1/accounts/" + acc1 + "/messages", RawQuery: raw},
			Header: http.Header{"Authorization": {"Bearer " + tokBilling}}, Host: "example.com",
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var page messagePage
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				t.Fatalf("%q: 200 with %s", raw, rec.Body)
			}
		case http.StatusBadRequest:
			var pr Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil || len(pr.InvalidParams) == 0 {
				t.Fatalf("%q: 400 without invalid_params: %s", raw, rec.Body)
			}
		default:
			t.Fatalf("%q: %d %s", raw, rec.Code, rec.Body)
		}
	})
}

// FuzzPatchBody feeds arbitrary bodies, content types and If-Match headers
// to PATCH: the answer is 200, 400 (naming the culprit), 412, 413 or 415,
// and a 200 applies exactly the merge patch the body holds.
func FuzzPatchBody(f *testing.F) {
	for _, s := range [][3]string{
		{"application/merge-patch+json", `{"body":""}`, ""},
		{"application/json", `{"price_micros":-5,"price_unit":"EUR"}`, `"2"`},
		{"application/json; charset=utf-8", `{"body":"","price_micros":0}`, `W/"2"`},
		{"application/json", `{"body":"x"}`, ""},
		{"application/json", `{"body":null}`, ""},
		{"application/json", `{"price_micros":1.5}`, ""},
		{"application/json", `{"price_micros":1e3}`, ""},
		{"application/json", `{"price_micros":99999999999999999999}`, ""},
		{"application/json", `{"price_unit":"usd"}`, ""},
		{"application/json", `{"Body":""}`, ""},
		{"application/json", `{"status":"read"}`, ""},
		{"application/json", `{}`, ""},
		{"application/json", `[]`, ""},
		{"application/json", `{"body":""} {}`, ""},
		{"application/json", `{"body":""`, ""},
		{"application/json", ``, ""},
		{"application/json", `{"body":""}`, `"1"`},
		{"application/json", `{"body":""}`, `garbage`},
		{"application/json", `{"body":""}`, `*`},
		{"text/plain", `{"body":""}`, ""},
		{"", `{"body":""}`, ""},
		{"application/json", `{"body":"` + strings.Repeat("x", 70_000) + `"}`, ""},
	} {
		f.Add(s[0], []byte(s[1]), s[2])
	}
	st := &stubStore{}
	_, h := newStubServer(f, Config{RatePerToken: -1, RatePerAccount: -1}, st)
	target := "/v1/accounts/" + acc1 + "/messages/" + sid1
	f.Fuzz(func(t *testing.T, contentType string, body []byte, ifMatch string) {
		req := httptest.NewRequest("PATCH", target, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokBilling)
		if contentType != "" {
			req.Header["Content-Type"] = []string{contentType}
		}
		if ifMatch != "" {
			req.Header["If-Match"] = []string{ifMatch}
		}
		st.mu.Lock()
		st.patches = nil
		st.mu.Unlock()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			st.mu.Lock()
			patches := st.patches
			st.mu.Unlock()
			if len(patches) != 1 {
				t.Fatalf("200 after %d store updates", len(patches))
			}
			checkPatch(t, body, patches[0])
		case http.StatusBadRequest:
			var pr Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil || len(pr.InvalidParams) == 0 {
				t.Fatalf("400 without invalid_params: %s", rec.Body)
			}
		case http.StatusPreconditionFailed, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("%q %q If-Match %q: %d %s", contentType, body, ifMatch, rec.Code, rec.Body)
		}
	})
}

// checkPatch checks that p is exactly what the accepted body asks for.
func checkPatch(t *testing.T, body []byte, p postflight.Patch) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("accepted a body that is not a JSON object: %q", body)
	}
	for k := range m {
		if k != "body" && k != "price_micros" && k != "price_unit" {
			t.Fatalf("accepted unknown field %q in %q", k, body)
		}
	}
	if len(m) == 0 {
		t.Fatalf("accepted a patch that changes nothing: %q", body)
	}
	raw, ok := m["body"]
	if p.Redact != ok || (ok && string(raw) != `""`) {
		t.Fatalf("%q: redact %v", body, p.Redact)
	}
	raw, ok = m["price_micros"]
	if (p.PriceMicros != nil) != ok {
		t.Fatalf("%q: price_micros %v", body, p.PriceMicros)
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); ok && (err != nil || n != *p.PriceMicros) {
		t.Fatalf("%q: price_micros %v", body, p.PriceMicros)
	}
	raw, ok = m["price_unit"]
	if (p.PriceUnit != nil) != ok {
		t.Fatalf("%q: price_unit %v", body, p.PriceUnit)
	}
	if ok {
		var u string
		if err := json.Unmarshal(raw, &u); err != nil || u != *p.PriceUnit || len(u) != 3 || strings.ToUpper(u) != u ||
			strings.Trim(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("%q: accepted price unit %q", body, *p.PriceUnit)
		}
	}
}
