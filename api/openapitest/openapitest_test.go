package openapitest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postflight/postflight/api"
)

const (
	acc = "AC0123456789abcdef0123456789abcdef"
	sid = "SM0123456789abcdef0123456789abcdef"
)

const goodMessage = `{"sid":"` + sid + `","account_sid":"` + acc + `","status":"delivered","channel":"sms",` +
	`"direction":"outbound_api","from":"+15017122661","to":"+15558675310","body":"hi","num_segments":1,` +
	`"num_media":0,"price_micros":-7500,"price_unit":"USD","tags":{"a":"b"},"date_created":"2025-06-01T12:00:00Z",` +
	`"date_sent":"2025-06-01T12:00:01.5Z","date_updated":"2025-06-01T12:00:04Z","sequence":4}`

const goodProblem = `{"type":"about:blank","title":"Bad Request","status":400,"detail":"bad page_size",` +
	`"invalid_params":[{"name":"page_size","reason":"want 1-1000"}]}`

func response(status int, contentType, body string, header ...string) (*http.Response, []byte) {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody}, []byte(body)
}

func request(t *testing.T, method, target, contentType, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://postflight.test"+target, r)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// withField returns goodMessage with member k set to the JSON v, or removed
// if v is "".
func withField(t *testing.T, k, v string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(goodMessage), &m); err != nil {
		t.Fatal(err)
	}
	if v == "" {
		delete(m, k)
	} else {
		m[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSpecValidates(t *testing.T) {
	v := New(t)
	if err := v.Doc().Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFromSpec([]byte(`{"openapi":"3.0.3","info":{"title":"x"},"paths":{}}`)); err == nil {
		t.Error("a spec without info.version was accepted")
	}
	if _, err := NewFromSpec([]byte(`{`)); err == nil {
		t.Error("malformed JSON was accepted")
	}
}

func TestValidate(t *testing.T) {
	v := New(t)
	msgPath := "/v1/accounts/" + acc + "/messages/" + sid
	listPath := "/v1/accounts/" + acc + "/messages"
	page := `{"messages":[` + goodMessage + `],"next_page_token":"abc"}`
	problem := func(status int, title string) string {
		return `{"type":"about:blank","title":"` + title + `","status":` + itoa(status) + `,"detail":"x"}`
	}
	type tc struct {
		name    string
		req     *http.Request
		status  int
		ct      string
		body    string
		header  []string
		wantErr string // substring; "" means valid
	}
	tests := []tc{
		// Valid exchanges.
		{name: "get message", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: goodMessage, header: []string{"ETag", `"4"`}},
		{name: "list, last page", req: request(t, "GET", listPath+"?status=delivered&status=read&page_size=10&start=2025-01-01T00:00:00Z", "", ""),
			status: 200, ct: "application/json; charset=utf-8", body: `{"messages":[]}`},
		{name: "list with token", req: request(t, "GET", listPath+"?page_token=abc", "", ""), status: 200, ct: "application/json", body: page},
		{name: "patch merge-patch", req: request(t, "PATCH", msgPath, "application/merge-patch+json", `{"body":""}`),
			status: 200, ct: "application/json", body: withField(t, "body", `""`), header: []string{"ETag", `"5"`}},
		{name: "patch json with If-Match", req: withHeader(request(t, "PATCH", msgPath, "application/json", `{"price_micros":5,"price_unit":"EUR"}`), "If-Match", `"4"`),
			status: 200, ct: "application/json", body: goodMessage, header: []string{"ETag", `"5"`}},
		{name: "patch 412", req: withHeader(request(t, "PATCH", msgPath, "application/json", `{"body":""}`), "If-Match", `"3"`),
			status: 412, ct: "application/problem+json", body: problem(412, "Precondition Failed")},
		{name: "delete", req: request(t, "DELETE", msgPath, "", ""), status: 204},
		{name: "404", req: request(t, "GET", msgPath, "", ""), status: 404, ct: "application/problem+json", body: problem(404, "Not Found")},
		{name: "401", req: request(t, "GET", listPath, "", ""), status: 401, ct: "application/problem+json", body: problem(401, "Unauthorized"),
			header: []string{"WWW-Authenticate", `Bearer realm="postflight"`}},
		{name: "429", req: request(t, "GET", listPath, "", ""), status: 429, ct: "application/problem+json", body: problem(429, "Too Many Requests"),
			header: []string{"Retry-After", "3"}},
		{name: "503 without Retry-After", req: request(t, "GET", listPath, "", ""), status: 503, ct: "application/problem+json", body: problem(503, "Service Unavailable")},
		{name: "retention get", req: request(t, "GET", "/v1/accounts/"+acc+"/retention", "", ""), status: 200, ct: "application/json", body: `{"days":400}`},
		{name: "retention put", req: request(t, "PUT", "/v1/accounts/"+acc+"/retention", "application/json", `{"days":30}`), status: 200, ct: "application/json", body: `{"days":30}`},
		{name: "healthz json", req: request(t, "GET", "/healthz", "", ""), status: 200, ct: "application/json", body: `{"status":"ok"}`},
		{name: "healthz text", req: request(t, "GET", "/healthz", "", ""), status: 200, ct: "text/plain; charset=utf-8", body: "ok\n"},
		{name: "readyz 503 problem", req: request(t, "GET", "/readyz", "", ""), status: 503, ct: "application/problem+json", body: problem(503, "Service Unavailable")},
		{name: "metrics", req: request(t, "GET", "/metrics", "", ""), status: 200, ct: "text/plain; version=0.0.4; charset=utf-8", body: "# HELP x y\nx 1\n"},
		{name: "openapi", req: request(t, "GET", "/openapi.json", "", ""), status: 200, ct: "application/json", body: string(api.OpenAPISpec())},
		// An invalid request answered with a 4xx is fine.
		{name: "bad page_size rejected", req: request(t, "GET", listPath+"?page_size=0", "", ""), status: 400, ct: "application/problem+json", body: goodProblem},
		{name: "bad status rejected", req: request(t, "GET", listPath+"?status=DELIVERED", "", ""), status: 400, ct: "application/problem+json", body: goodProblem},
		{name: "bad account rejected", req: request(t, "GET", "/v1/accounts/AC1/messages", "", ""), status: 400, ct: "application/problem+json", body: goodProblem},
		{name: "bad patch rejected", req: request(t, "PATCH", msgPath, "application/json", `{"body":"new text"}`), status: 400, ct: "application/problem+json", body: goodProblem},
		{name: "empty patch rejected", req: request(t, "PATCH", msgPath, "application/json", `{}`), status: 400, ct: "application/problem+json", body: goodProblem},
		{name: "wrong media type rejected", req: request(t, "PATCH", msgPath, "text/plain", `body`), status: 415, ct: "application/problem+json", body: problem(415, "Unsupported Media Type")},
		{name: "retention out of range rejected", req: request(t, "PUT", "/v1/accounts/"+acc+"/retention", "application/json", `{"days":0}`), status: 400, ct: "application/problem+json", body: goodProblem},

		// Invalid responses.
		{name: "uppercase status", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "status", `"DELIVERED"`), header: []string{"ETag", `"4"`}, wantErr: "status"},
		{name: "non-final status", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "status", `"queued"`), header: []string{"ETag", `"4"`}, wantErr: "status"},
		{name: "missing sid", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "sid", ""), header: []string{"ETag", `"4"`}, wantErr: "sid"},
		{name: "extra member", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "revision", "4"), header: []string{"ETag", `"4"`}, wantErr: "revision"},
		{name: "null member", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "price_unit", "null"), header: []string{"ETag", `"4"`}, wantErr: "price_unit"},
		{name: "time not UTC", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "date_created", `"2025-06-01T14:00:00+02:00"`), header: []string{"ETag", `"4"`}, wantErr: "date_created"},
		{name: "bad sid pattern", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: withField(t, "account_sid", `"AC0123"`), header: []string{"ETag", `"4"`}, wantErr: "account_sid"},
		{name: "missing ETag", req: request(t, "GET", msgPath, "", ""), status: 200, ct: "application/json", body: goodMessage, wantErr: `"ETag" missing`},
		{name: "page without messages", req: request(t, "GET", listPath, "", ""), status: 200, ct: "application/json", body: `{"next_page_token":"x"}`, wantErr: "messages"},
		{name: "empty next_page_token", req: request(t, "GET", listPath, "", ""), status: 200, ct: "application/json", body: `{"messages":[],"next_page_token":""}`, wantErr: "next_page_token"},
		{name: "undocumented status", req: request(t, "GET", msgPath, "", ""), status: 418, ct: "application/problem+json", body: problem(418, "I'm a teapot"), wantErr: "status is not supported"},
		{name: "error as text/plain", req: request(t, "GET", msgPath, "", ""), status: 404, ct: "text/plain; charset=utf-8", body: "404 page not found\n", wantErr: "Content-Type"},
		{name: "problem without detail", req: request(t, "GET", msgPath, "", ""), status: 404, ct: "application/problem+json", body: `{"type":"about:blank","title":"Not Found","status":404}`, wantErr: "detail"},
		{name: "401 without challenge", req: request(t, "GET", listPath, "", ""), status: 401, ct: "application/problem+json", body: problem(401, "Unauthorized"), wantErr: "WWW-Authenticate"},
		{name: "429 without Retry-After", req: request(t, "GET", listPath, "", ""), status: 429, ct: "application/problem+json", body: problem(429, "Too Many Requests"), wantErr: "Retry-After"},
		{name: "Retry-After not seconds", req: request(t, "GET", listPath, "", ""), status: 429, ct: "application/problem+json", body: problem(429, "Too Many Requests"), header: []string{"Retry-After", "soon"}, wantErr: "Retry-After"},
		{name: "204 with a body", req: request(t, "DELETE", msgPath, "", ""), status: 204, ct: "application/json", body: `{}`, wantErr: "without a body"},
		{name: "retention out of range", req: request(t, "GET", "/v1/accounts/"+acc+"/retention", "", ""), status: 200, ct: "application/json", body: `{"days":4000}`, wantErr: "days"},
		{name: "no content type", req: request(t, "GET", "/v1/accounts/"+acc+"/retention", "", ""), status: 200, body: `{"days":40}`, wantErr: "Content-Type"},
		// Invalid requests the server accepted.
		{name: "bad page_size accepted", req: request(t, "GET", listPath+"?page_size=1001", "", ""), status: 200, ct: "application/json", body: `{"messages":[]}`, wantErr: "page_size"},
		{name: "bad patch accepted", req: request(t, "PATCH", msgPath, "application/json", `{"body":"x"}`), status: 200, ct: "application/json", body: goodMessage, header: []string{"ETag", `"5"`}, wantErr: "not a 4xx"},
		{name: "bad account answered 500", req: request(t, "GET", "/v1/accounts/ac1/messages", "", ""), status: 500, ct: "application/problem+json", body: problem(500, "Internal Server Error"), wantErr: "not a 4xx"},
		// Requests outside the spec.
		{name: "unknown path", req: request(t, "GET", "/v2/things", "", ""), status: 404, ct: "application/problem+json", body: problem(404, "Not Found")},
		{name: "unknown method", req: request(t, "POST", msgPath, "", ""), status: 405, ct: "application/problem+json", body: problem(405, "Method Not Allowed"), header: []string{"Allow", "GET, PATCH, DELETE"}},
		{name: "unknown path answered 200", req: request(t, "GET", "/v2/things", "", ""), status: 200, ct: "application/json", body: `{}`, wantErr: "no operation"},
		{name: "unknown path as text", req: request(t, "GET", "/v2/things", "", ""), status: 404, ct: "text/plain; charset=utf-8", body: "404 page not found\n", wantErr: "want application/problem+json"},
		{name: "unknown path, bad problem", req: request(t, "GET", "/v2/things", "", ""), status: 404, ct: "application/problem+json", body: `{"title":"Not Found","status":404}`, wantErr: "Problem schema"},
		{name: "unknown path, wrong problem status", req: request(t, "GET", "/v2/things", "", ""), status: 404, ct: "application/problem+json", body: problem(400, "Bad Request"), wantErr: "problem status"},
		{name: "unknown method answered 404", req: request(t, "POST", msgPath, "", ""), status: 404, ct: "application/problem+json", body: problem(404, "Not Found"), wantErr: "want a 405"},
		{name: "405 without Allow", req: request(t, "POST", msgPath, "", ""), status: 405, ct: "application/problem+json", body: problem(405, "Method Not Allowed"), wantErr: "Allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := response(tt.status, tt.ct, tt.body, tt.header...)
			err := v.Validate(tt.req, resp, body)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("no error, want one mentioning %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
		})
	}
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r.Header.Set(k, v)
	return r
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// fakeTB records failures instead of failing the test.
type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Errorf(format string, args ...any) { f.errors = append(f.errors, format) }

func TestCheck(t *testing.T) {
	v := New(t)
	req := request(t, "GET", "/v1/accounts/"+acc+"/retention", "", "")
	resp, body := response(200, "application/json", `{"days":40}`)
	v.Check(t, req, resp, body) // passes

	f := &fakeTB{TB: t}
	resp, body = response(200, "application/json", `{"days":"40"}`)
	v.Check(f, req, resp, body)
	if len(f.errors) != 1 {
		t.Errorf("Check reported %d failures, want 1", len(f.errors))
	}
}

// Serve buffers the request body, so a handler that consumes it does not
// hide a bad request from validation.
func TestServe(t *testing.T) {
	v := New(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"days":30}`)
	})
	req := httptest.NewRequest("PUT", "/v1/accounts/"+acc+"/retention", strings.NewReader(`{"days":30}`))
	req.Header.Set("Content-Type", "application/json")
	resp, body := v.Serve(t, h, req)
	if resp.StatusCode != 200 || string(body) != `{"days":30}` {
		t.Errorf("%d %s", resp.StatusCode, body)
	}

	f := &fakeTB{TB: t}
	req = httptest.NewRequest("PUT", "/v1/accounts/"+acc+"/retention", strings.NewReader(`{"days":0}`))
	req.Header.Set("Content-Type", "application/json")
	v.Serve(f, h, req)
	if len(f.errors) != 1 {
		t.Errorf("a 200 to an invalid body: %d failures, want 1", len(f.errors))
	}

	// Without Serve, an httptest request's consumed body is not validated.
	req = httptest.NewRequest("PUT", "/v1/accounts/"+acc+"/retention", strings.NewReader(`{"days":0}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if err := v.Validate(req, rec.Result(), rec.Body.Bytes()); err != nil {
		t.Errorf("consumed body was validated: %v", err)
	}
}

// A real server and client: absolute URLs and real headers.
func TestRealServer(t *testing.T) {
	v := New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	v.Check(t, req, resp, body)
}
