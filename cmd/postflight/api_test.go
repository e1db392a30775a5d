package main

// Integration tests of the REST API (DESIGN.md §3) on the real serve wiring:
// kfake, DynamoDB Local and ingest from Kafka, with the data produced as
// Avro events. Every response is validated against the OpenAPI description
// (api/openapitest), so the description cannot drift from the handlers.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/api/openapitest"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
)

// The API tests' tokens (see writeAPIAuthFile).
const (
	adminTok     = "pf_api_admin"     // every scope, every account
	readerTok    = "pf_api_reader"    // read, the test account
	writerTok    = "pf_api_writer"    // write and delete, the test account
	retentionTok = "pf_api_retention" // admin only, the test account
	otherTok     = "pf_api_other"     // every scope, another account only
)

func writeAPIAuthFile(t *testing.T, account, other string) string {
	t.Helper()
	tok := func(name, secret string, accounts []string, scopes ...string) map[string]any {
		return map[string]any{"name": name, "sha256": api.HashToken(secret), "accounts": accounts, "scopes": scopes}
	}
	file := map[string]any{"tokens": []any{
		tok("admin", adminTok, []string{"*"}, "read", "write", "delete", "admin"),
		tok("reader", readerTok, []string{account}, "read"),
		tok("writer", writerTok, []string{account}, "write", "delete"),
		tok("retention", retentionTok, []string{account}, "admin"),
		tok("other", otherTok, []string{other}, "read", "write", "delete", "admin"),
	}}
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiClient sends requests to a stack and checks every exchange against the
// OpenAPI description.
type apiClient struct {
	t    *testing.T
	base string
	v    *openapitest.Validator
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) problem(t *testing.T) api.Problem {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%d: not a problem: %s", r.status, r.body)
	}
	return p
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%d: %v: %s", r.status, err, r.body)
	}
}

// do sends a request. body, if not empty, goes as application/json unless
// hdr sets Content-Type; hdr is name, value pairs.
func (c *apiClient) do(method, path, token, body string, hdr ...string) reply {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.v.Check(c.t, req, resp, b)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless r has the status.
func (r reply) want(t *testing.T, what string, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d, want %d: %s", what, r.status, status, r.body)
	}
	return r
}

type listPage struct {
	Messages      []postflight.Message `json:"messages"`
	NextPageToken string               `json:"next_page_token"`
}

// metricValue sums the samples of a Prometheus counter whose labels include
// every one of labels ("name=\"value\"").
func metricValue(t *testing.T, c *apiClient, name string, labels ...string) float64 {
	t.Helper()
	r := c.do("GET", "/metrics", "", "").want(t, "metrics", 200)
	var sum float64
	for line := range strings.Lines(string(r.body)) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// ttlGrace is the store's: a record's TTL is date_created + its account's
// retention + ttlGrace (store/write.go), so a retention raise's re-stamp job
// has that long to reach it.
const ttlGrace = 2 * 24 * time.Hour

// ttl returns a message item's stored expiry, or ok false if there is no
// item (DynamoDB's TTL may already have deleted an expired one).
func ttl(t *testing.T, db *dynamodb.Client, table, account, sid string) (int64, bool) {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"p": &types.AttributeValueMemberS{Value: sid}, "s": &types.AttributeValueMemberS{Value: account},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	x, ok := out.Item["x"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(x.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n, true
}

func TestAPI(t *testing.T) {
	account, other := randomSID("AC"), randomSID("AC")
	s := startStack(t, account, func(f *serveFlags) {
		f.authFile = writeAPIAuthFile(t, account, other)
		f.configRefresh = 200 * time.Millisecond // the re-stamp job starts 2 refreshes after a change
	})
	c := &apiClient{t: t, base: s.api, v: openapitest.New(t)}
	msgs := "/v1/accounts/" + account + "/messages"

	// Seed: six recent messages, one ten days old, and one of another account.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []*sarama.ProducerMessage
	sids := make([]string, 6)
	created := map[string]time.Time{}
	for i := range sids {
		sids[i] = randomSID("SM")
		created[sids[i]] = now.Add(-time.Hour + time.Duration(i)*time.Second)
		recs = append(recs,
			record(t, newEvent(account, sids[i], 1, postflight.StatusSent, created[sids[i]]), ingest.SchemaIDv2),
			record(t, newEvent(account, sids[i], 3, postflight.StatusDelivered, created[sids[i]]), ingest.SchemaIDv2))
	}
	old := randomSID("SM")
	created[old] = now.Add(-10 * 24 * time.Hour)
	recs = append(recs, record(t, newEvent(account, old, 3, postflight.StatusDelivered, created[old]), ingest.SchemaIDv1))
	otherSID := randomSID("SM")
	recs = append(recs, record(t, newEvent(other, otherSID, 2, postflight.StatusRead, now.Add(-time.Minute)), ingest.SchemaIDv2))
	produce(t, s.brokers, recs...)
	for _, sid := range append(slices.Clone(sids), old) {
		eventually(t, 30*time.Second, "message "+sid, func() bool {
			return c.do("GET", msgs+"/"+sid, readerTok, "").status == 200
		})
	}
	eventually(t, 30*time.Second, "the other account's message", func() bool {
		return c.do("GET", "/v1/accounts/"+other+"/messages/"+otherSID, otherTok, "").status == 200
	})

	t.Run("routes", func(t *testing.T) {
		c := &apiClient{t: t, base: c.base, v: c.v}
		var page listPage
		c.do("GET", msgs, readerTok, "").want(t, "list", 200).decode(t, &page)
		want := append([]string{old}, sids...)
		slices.Reverse(want) // newest first
		var got []string
		for _, m := range page.Messages {
			got = append(got, m.SID)
		}
		if !slices.Equal(got, want) || page.NextPageToken != "" {
			t.Fatalf("list: %v (next %q), want %v", got, page.NextPageToken, want)
		}
		// Exact pages with filters; every page but the last is full.
		q := "?status=delivered&status=read&to=%2B15550000002&from=%2B15550000001&page_size=4&start=" +
			now.Add(-2*time.Hour).Format(time.RFC3339) + "&end=" + now.Format(time.RFC3339Nano)
		c.do("GET", msgs+q, readerTok, "").want(t, "page 1", 200).decode(t, &page)
		if len(page.Messages) != 4 || page.NextPageToken == "" || page.Messages[0].SID != sids[5] {
			t.Fatalf("page 1: %d messages, next %q", len(page.Messages), page.NextPageToken)
		}
		var page2 listPage
		c.do("GET", msgs+q+"&page_token="+page.NextPageToken, readerTok, "").want(t, "page 2", 200).decode(t, &page2)
		if len(page2.Messages) != 2 || page2.NextPageToken != "" || page2.Messages[1].SID != sids[0] {
			t.Fatalf("page 2: %+v", page2)
		}
		c.do("GET", msgs+"?status=failed", readerTok, "").want(t, "filtered out", 200).decode(t, &page)
		if len(page.Messages) != 0 {
			t.Fatalf("status=failed listed %d", len(page.Messages))
		}

		r := c.do("GET", msgs+"/"+sids[0], readerTok, "").want(t, "get", 200)
		var m postflight.Message
		r.decode(t, &m)
		if m.SID != sids[0] || m.AccountSID != account || m.Status != postflight.StatusDelivered || m.Sequence != 3 ||
			!m.DateCreated.Equal(created[sids[0]]) || r.header.Get("ETag") == "" {
			t.Fatalf("get: %+v ETag %q", m, r.header.Get("ETag"))
		}
		var ret struct{ Days int }
		c.do("GET", "/v1/accounts/"+account+"/retention", readerTok, "").want(t, "retention", 200).decode(t, &ret)
		if ret.Days != 400 {
			t.Fatalf("default retention %d", ret.Days)
		}
		c.do("GET", "/healthz", "", "").want(t, "healthz", 200)
		c.do("GET", "/readyz", "", "").want(t, "readyz", 200)
		if r := c.do("GET", "/metrics", "", "").want(t, "metrics", 200); !strings.Contains(string(r.body), "postflight_api_requests") {
			t.Fatal("metrics has no API request counter")
		}
		c.do("GET", "/openapi.json", "", "").want(t, "openapi", 200)
	})

	t.Run("auth matrix", func(t *testing.T) {
		c := &apiClient{t: t, base: c.base, v: c.v}
		ghost := randomSID("SM") // mutations aim at a message that does not exist
		routes := []struct {
			method, path, body  string
			allowed, lacksScope string // a token with the scope, one without
		}{
			{"GET", msgs, "", readerTok, writerTok},
			{"GET", msgs + "/" + sids[0], "", readerTok, writerTok},
			{"PATCH", msgs + "/" + ghost, `{"body":""}`, writerTok, readerTok},
			{"DELETE", msgs + "/" + ghost, "", writerTok, readerTok},
			{"GET", "/v1/accounts/" + account + "/retention", "", readerTok, retentionTok},
			{"PUT", "/v1/accounts/" + account + "/retention", `{"days":400}`, retentionTok, writerTok},
		}
		for _, rt := range routes {
			name := rt.method + " " + rt.path
			for _, tc := range []struct {
				what   string
				hdr    []string
				status int
			}{
				{"no token", nil, 401},
				{"unknown token", []string{"Authorization", "Bearer pf_nobody"}, 401},
				{"not bearer", []string{"Authorization", "Basic " + adminTok}, 401},
				{"two headers", []string{"Authorization", "Bearer " + adminTok + ", Bearer " + adminTok}, 401},
				{"wrong scope", []string{"Authorization", "Bearer " + rt.lacksScope}, 403},
				{"wrong account", []string{"Authorization", "Bearer " + otherTok}, 403},
				{"scoped token", []string{"Authorization", "Bearer " + rt.allowed}, 0},
				{"wildcard token", []string{"Authorization", "Bearer " + adminTok}, 0},
			} {
				r := c.do(rt.method, rt.path, "", rt.body, tc.hdr...)
				switch {
				case tc.status == 0 && (r.status == 401 || r.status == 403):
					t.Errorf("%s with %s: %d %s", name, tc.what, r.status, r.body)
				case tc.status != 0 && r.status != tc.status:
					t.Errorf("%s with %s: %d, want %d: %s", name, tc.what, r.status, tc.status, r.body)
				case tc.status == 401 && r.header.Get("WWW-Authenticate") == "":
					t.Errorf("%s with %s: 401 without WWW-Authenticate", name, tc.what)
				}
			}
		}
		// The wildcard reaches the other account too; the scoped token not.
		c.do("GET", "/v1/accounts/"+other+"/messages/"+otherSID, adminTok, "").want(t, "wildcard, other account", 200)
		c.do("GET", "/v1/accounts/"+other+"/messages/"+otherSID, readerTok, "").want(t, "reader, other account", 403)
	})

	t.Run("400 names the parameter", func(t *testing.T) {
		c := &apiClient{t: t, base: c.base, v: c.v}
		one := msgs + "/" + sids[0]
		ret := "/v1/accounts/" + account + "/retention"
		// A page token of another query.
		var page listPage
		c.do("GET", msgs+"?page_size=1", readerTok, "").want(t, "page", 200).decode(t, &page)
		for _, tc := range []struct {
			method, path, body, param string
			hdr                       []string
		}{
			{"GET", "/v1/accounts/AC123/messages", "", "account_sid", nil},
			{"GET", "/v1/accounts/" + strings.ToUpper(account) + "/retention", "", "account_sid", nil},
			{"GET", msgs + "/SM123", "", "sid", nil},
			{"DELETE", msgs + "/MMxyz", "", "sid", nil},
			{"GET", msgs + "?start=yesterday", "", "start", nil},
			{"GET", msgs + "?end=2025-13-01T00:00:00Z", "", "end", nil},
			{"GET", msgs + "?start=1999-01-01T00:00:00Z", "", "start", nil},
			{"GET", msgs + "?start=2025-06-01T00:00:00Z&end=2025-05-01T00:00:00Z", "", "end", nil},
			{"GET", msgs + "?start=2020-01-01T00:00:00Z&end=2025-01-01T00:00:00Z", "", "start", nil},
			{"GET", msgs + "?page_size=0", "", "page_size", nil},
			{"GET", msgs + "?page_size=1001", "", "page_size", nil},
			{"GET", msgs + "?page_size=ten", "", "page_size", nil},
			{"GET", msgs + "?page_size=5&page_size=6", "", "page_size", nil},
			{"GET", msgs + "?page_token=garbage", "", "page_token", nil},
			{"GET", msgs + "?page_size=1&status=read&page_token=" + page.NextPageToken, "", "page_token", nil},
			{"GET", msgs + "?status=DELIVERED", "", "status", nil},
			{"GET", msgs + "?status=queued_up", "", "status", nil},
			{"GET", msgs + "?to=" + strings.Repeat("9", 257), "", "to", nil},
			{"GET", msgs + "?from=" + strings.Repeat("9", 257), "", "from", nil},
			{"GET", msgs + "?sort=asc", "", "sort", nil},
			{"PATCH", one, `{"body":"hello"}`, "body", nil},
			{"PATCH", one, `{}`, "body", nil},
			{"PATCH", one, `{"status":"read"}`, "status", nil},
			{"PATCH", one, `{"Body":""}`, "Body", nil},
			{"PATCH", one, `{"body":"","body":""}`, "body", nil},
			{"PATCH", one, `{"price_micros":null}`, "price_micros", nil},
			{"PATCH", one, `{"price_micros":1.5}`, "price_micros", nil},
			{"PATCH", one, `{"price_micros":"100"}`, "price_micros", nil},
			{"PATCH", one, `{"price_unit":"usd"}`, "price_unit", nil},
			{"PATCH", one, `{"price_unit":7}`, "price_unit", nil},
			{"PATCH", one, `{"body":""`, "body", nil},
			{"PATCH", one, `{"body":""} x`, "body", nil},
			{"PATCH", one, `[]`, "body", nil},
			{"PATCH", one, `{"body":""}`, "If-Match", []string{"If-Match", "3"}},
			{"PUT", ret, `{"days":0}`, "days", nil},
			{"PUT", ret, `{"days":3651}`, "days", nil},
			{"PUT", ret, `{"days":1.5}`, "days", nil},
			{"PUT", ret, `{"days":"30"}`, "days", nil},
			{"PUT", ret, `{}`, "days", nil},
			{"PUT", ret, `{"days":30,"hours":1}`, "hours", nil},
		} {
			r := c.do(tc.method, tc.path, adminTok, tc.body, tc.hdr...)
			if r.status != 400 {
				t.Errorf("%s %s %s: %d, want 400: %s", tc.method, tc.path, tc.body, r.status, r.body)
				continue
			}
			p := r.problem(t)
			if !slices.ContainsFunc(p.InvalidParams, func(ip api.InvalidParam) bool { return ip.Name == tc.param && ip.Reason != "" }) {
				t.Errorf("%s %s %s: invalid_params %+v, want %s", tc.method, tc.path, tc.body, p.InvalidParams, tc.param)
			}
		}
		// Every problem found is reported at once.
		p := c.do("GET", msgs+"?page_size=0&status=nope&start=x", adminTok, "").want(t, "three", 400).problem(t)
		if len(p.InvalidParams) != 3 {
			t.Errorf("invalid_params %+v, want page_size, status and start", p.InvalidParams)
		}
	})

	t.Run("other 4xx", func(t *testing.T) {
		c := &apiClient{t: t, base: c.base, v: c.v}
		c.do("GET", msgs+"/"+randomSID("SM"), readerTok, "").want(t, "unknown message", 404)
		c.do("GET", "/v1/accounts/"+other+"/messages/"+sids[0], adminTok, "").want(t, "another account's message", 404)
		c.do("PATCH", "/v1/accounts/"+other+"/messages/"+sids[0], adminTok, `{"body":""}`).want(t, "patch via another account", 404)
		c.do("GET", "/v2/things", readerTok, "").want(t, "unknown path", 404)
		c.do("GET", msgs+"/"+sids[0]+"/extra", readerTok, "").want(t, "unknown subpath", 404)
		r := c.do("POST", msgs+"/"+sids[0], adminTok, `{"body":""}`).want(t, "POST", 405)
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "PATCH") || !strings.Contains(allow, "DELETE") {
			t.Errorf("405 Allow %q", allow)
		}
		c.do("DELETE", "/v1/accounts/"+account+"/retention", adminTok, "").want(t, "DELETE retention", 405)

		etag := c.do("GET", msgs+"/"+sids[0], readerTok, "").want(t, "get", 200).header.Get("ETag")
		r = c.do("PATCH", msgs+"/"+sids[0], writerTok, `{"price_micros":-7000,"price_unit":"EUR"}`, "If-Match", etag).want(t, "patch", 200)
		if r.header.Get("ETag") == etag {
			t.Fatal("the ETag did not change")
		}
		c.do("PATCH", msgs+"/"+sids[0], writerTok, `{"price_micros":-8000}`, "If-Match", etag).want(t, "stale If-Match", 412)
		c.do("PATCH", msgs+"/"+sids[0], writerTok, `{"price_micros":-8000}`, "If-Match", r.header.Get("ETag")).want(t, "fresh If-Match", 200)

		big := `{"body":"` + strings.Repeat("x", 70<<10) + `"}`
		c.do("PATCH", msgs+"/"+sids[0], writerTok, big).want(t, "large PATCH", 413)
		c.do("PUT", "/v1/accounts/"+account+"/retention", retentionTok, `{"days":30`+strings.Repeat(" ", 70<<10)+`}`).want(t, "large PUT", 413)
		c.do("PATCH", msgs+"/"+sids[0], writerTok, `{"body":""}`, "Content-Type", "text/plain").want(t, "text PATCH", 415)
		c.do("PUT", "/v1/accounts/"+account+"/retention", retentionTok, `{"days":30}`, "Content-Type", "application/merge-patch+json").want(t, "merge-patch PUT", 415)
	})

	t.Run("corrections survive later events", func(t *testing.T) {
		c := &apiClient{t: t, base: c.base, v: c.v}
		redacted, repriced, deleted := sids[1], sids[2], sids[3]
		var m postflight.Message
		c.do("PATCH", msgs+"/"+redacted, writerTok, `{"body":""}`, "Content-Type", "application/merge-patch+json").
			want(t, "redact", 200).decode(t, &m)
		if m.Body == nil || *m.Body != "" {
			t.Fatalf("redacted body %v", m.Body)
		}
		c.do("PATCH", msgs+"/"+repriced, writerTok, `{"price_micros":1234,"price_unit":"GBP"}`).want(t, "reprice", 200)
		c.do("DELETE", msgs+"/"+deleted, writerTok, "").want(t, "delete", 204)
		c.do("DELETE", msgs+"/"+deleted, writerTok, "").want(t, "delete again", 204)
		c.do("GET", msgs+"/"+deleted, readerTok, "").want(t, "deleted", 404)
		c.do("PATCH", msgs+"/"+deleted, writerTok, `{"body":""}`).want(t, "patch deleted", 404)
		tombstonedBefore := metricValue(t, c, "postflight_store_writes_total", `outcome="tombstoned"`)

		// Later events, through Kafka: a new body, a new price, a status.
		later := func(sid string, seq int64) *postflight.Event {
			ev := newEvent(account, sid, seq, postflight.StatusRead, created[sid])
			body, price, unit := "a body that must not come back", int64(999), "USD"
			ev.Body, ev.PriceMicros, ev.PriceUnit = &body, &price, &unit
			return ev
		}
		produce(t, s.brokers,
			record(t, later(redacted, 4), ingest.SchemaIDv2),
			record(t, later(repriced, 4), ingest.SchemaIDv2),
			record(t, later(deleted, 5), ingest.SchemaIDv2))
		for _, sid := range []string{redacted, repriced} {
			eventually(t, 30*time.Second, "the later event of "+sid, func() bool {
				c.do("GET", msgs+"/"+sid, readerTok, "").want(t, "get", 200).decode(t, &m)
				return m.Sequence == 4
			})
			if m.Status != postflight.StatusRead {
				t.Errorf("%s: status %v after the later event", sid, m.Status)
			}
			switch sid {
			case redacted:
				if m.Body == nil || *m.Body != "" {
					t.Errorf("the redacted body came back: %q", *m.Body)
				}
			case repriced:
				if m.PriceMicros == nil || *m.PriceMicros != 1234 || m.PriceUnit == nil || *m.PriceUnit != "GBP" {
					t.Errorf("the corrected price was overwritten: %v %v", m.PriceMicros, m.PriceUnit)
				}
			}
		}
		eventually(t, 30*time.Second, "the deleted message's later event to be ingested", func() bool {
			return metricValue(t, c, "postflight_store_writes_total", `outcome="tombstoned"`) > tombstonedBefore
		})
		c.do("GET", msgs+"/"+deleted, readerTok, "").want(t, "deleted after a later event", 404)
		var page listPage
		c.do("GET", msgs, readerTok, "").want(t, "list", 200).decode(t, &page)
		for _, lm := range page.Messages {
			if lm.SID == deleted {
				t.Fatal("the deleted message is listed")
			}
		}
	})

	t.Run("retention", func(t *testing.T) {
		c := &apiClient{t: t, base: c.base, v: c.v}
		ret := "/v1/accounts/" + account + "/retention"
		c.do("GET", msgs+"/"+old, readerTok, "").want(t, "old message", 200)
		var r struct{ Days int }
		c.do("PUT", ret, retentionTok, `{"days":5}`).want(t, "put", 200).decode(t, &r)
		if r.Days != 5 {
			t.Fatalf("put answered %d days", r.Days)
		}
		// Hidden at once, before any TTL runs.
		c.do("GET", msgs+"/"+old, readerTok, "").want(t, "old message after the change", 404)
		var page listPage
		c.do("GET", msgs+"?start="+now.Add(-20*24*time.Hour).Format(time.RFC3339), readerTok, "").want(t, "list", 200).decode(t, &page)
		for _, m := range page.Messages {
			if m.SID == old {
				t.Fatal("the old message is still listed")
			}
		}
		c.do("GET", ret, readerTok, "").want(t, "get", 200).decode(t, &r)
		if r.Days != 5 {
			t.Fatalf("retention reads %d days", r.Days)
		}

		// The re-stamp job rewrites the TTL of the existing records: read
		// from the table until every one carries the new policy's expiry.
		db := testenv.DynamoDBClient(t, s.flags.dynamodbEndpoint)
		wrongTTLs := func() (wrong []string) {
			for _, sid := range append(slices.Clone(sids), old) {
				if sid == sids[3] {
					continue // the tombstone keeps its own expiry
				}
				want := created[sid].Add(5*24*time.Hour + ttlGrace).Unix()
				x, ok := ttl(t, db, s.flags.table, account, sid)
				switch {
				case !ok && sid == old:
					// Expired under the new policy: DynamoDB (Local) TTL removed it.
				case !ok || x != want:
					wrong = append(wrong, fmt.Sprintf("message %s: TTL %d (%v), want %d", sid, x, ok, want))
				}
			}
			return wrong
		}
		deadline := time.Now().Add(30 * time.Second)
		for w := wrongTTLs(); len(w) > 0; w = wrongTTLs() {
			if time.Now().After(deadline) {
				t.Fatalf("the re-stamp job left, after 30s:\n%s", strings.Join(w, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Records ingested after the change carry the new TTL.
		fresh := randomSID("SM")
		created[fresh] = now.Add(-time.Minute)
		produce(t, s.brokers, record(t, newEvent(account, fresh, 3, postflight.StatusDelivered, created[fresh]), ingest.SchemaIDv2))
		eventually(t, 30*time.Second, "a fresh message", func() bool {
			return c.do("GET", msgs+"/"+fresh, readerTok, "").status == 200
		})
		if x, _ := ttl(t, db, s.flags.table, account, fresh); x != created[fresh].Add(5*24*time.Hour+ttlGrace).Unix() {
			t.Errorf("a new record's TTL %d, want date_created + 5 days + the grace", x)
		}
		if got := metricValue(t, c, "postflight_store_retention_restamped_total"); got < float64(len(sids)-1) {
			t.Errorf("restamped counter %v", got)
		}
	})
}

// Rate limits: per token and per account, a 429 with Retry-After once the
// bucket is empty, on a stack configured by flags.
func TestAPIRateLimits(t *testing.T) {
	account, other := randomSID("AC"), randomSID("AC")
	s := startStack(t, account, func(f *serveFlags) {
		f.authFile = writeAPIAuthFile(t, account, other)
		f.ratePerToken, f.burstPerToken = 1, 4
		f.ratePerAccount, f.burstPerAccount = 1, 2
	})
	c := &apiClient{t: t, base: s.api, v: openapitest.New(t)}
	ret := func(acc string) string { return "/v1/accounts/" + acc + "/retention" }
	// Two requests drain the account's bucket; the third is refused by the
	// account limit (and refunded to the token's bucket).
	c.do("GET", ret(account), adminTok, "").want(t, "1st", 200)
	c.do("GET", ret(account), readerTok, "").want(t, "2nd", 200)
	r := c.do("GET", ret(account), adminTok, "").want(t, "3rd on the account", 429)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "account") {
		t.Fatalf("detail %q does not name the account limit", p.Detail)
	}
	// The admin token still holds 3 of its 4: spread over other accounts,
	// the fourth request is refused by the token limit.
	for i := range 3 {
		c.do("GET", ret(randomSID("AC")), adminTok, "").want(t, fmt.Sprint("token request ", i), 200)
	}
	r = c.do("GET", ret(randomSID("AC")), adminTok, "").want(t, "over the token limit", 429)
	if p := r.problem(t); !strings.Contains(p.Detail, "token") || r.header.Get("Retry-After") == "" {
		t.Fatalf("detail %q, Retry-After %q", p.Detail, r.header.Get("Retry-After"))
	}
	// A 401 is still a 401, and unauthenticated routes are not limited.
	c.do("GET", ret(account), "pf_nobody", "").want(t, "unknown token", 401)
	c.do("GET", "/healthz", "", "").want(t, "healthz", 200)
	if m := regexp.MustCompile(`postflight_api_throttled_total\{[^}]*limit="(token|account)"`).FindAllString(
		string(c.do("GET", "/metrics", "", "").body), -1); len(m) != 2 {
		t.Fatalf("throttled metrics %v, want a token and an account series", m)
	}
}

// A DynamoDB that accepts requests and never answers: each read gets a 503
// with Retry-After once the store's attempt timeout passes, long before the
// request's own deadline, and the problem says which of the two ran out
// (before, it said "the request deadline passed" for both).
func TestAPIDynamoDBNotAnswering(t *testing.T) {
	account := randomSID("AC")
	px, err := faultproxy.Start(testenv.DynamoDBEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	s := startStack(t, account, func(f *serveFlags) {
		f.role = "api"
		f.authFile = writeAPIAuthFile(t, account, randomSID("AC"))
		f.dynamodbEndpoint = px.URL()
		f.dynamodbAttemptTimeout = time.Second
		f.requestTimeout = time.Minute
	})
	c := &apiClient{t: t, base: s.api, v: openapitest.New(t)}
	msg := "/v1/accounts/" + account + "/messages/" + randomSID("SM")
	c.do("GET", msg, readerTok, "").want(t, "a read while DynamoDB answers", 404)

	px.Inject(faultproxy.Fault{Kind: faultproxy.Hang})
	start := time.Now()
	r := c.do("GET", msg, readerTok, "").want(t, "a read while DynamoDB hangs", 503)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("answered after %v: the attempt timeout (1s, with the SDK's retries) did not bound it", took)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	p := r.problem(t)
	if strings.Contains(p.Detail, "request deadline") || !strings.Contains(p.Detail, "did not answer") {
		t.Errorf("detail %q: want DynamoDB's attempt timeout named, not the request deadline", p.Detail)
	}
	px.Heal()
}
