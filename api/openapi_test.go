package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/postflight/postflight"
)

// loadSpec loads and validates the embedded spec. (Package api cannot use
// api/openapitest, which imports it; external tests should.)
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPISpec())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid spec: %v", err)
	}
	return doc
}

func TestOpenAPISpecValid(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	var v any
	if err := json.Unmarshal(openAPISpec, &v); err != nil {
		t.Errorf("not JSON: %v", err)
	}
}

// designRoutes is every route of DESIGN.md §3.
var designRoutes = []string{
	"GET /v1/accounts/{account_sid}/messages",
	"GET /v1/accounts/{account_sid}/messages/{sid}",
	"PATCH /v1/accounts/{account_sid}/messages/{sid}",
	"DELETE /v1/accounts/{account_sid}/messages/{sid}",
	"GET /v1/accounts/{account_sid}/retention",
	"PUT /v1/accounts/{account_sid}/retention",
	"POST /v1/events",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /openapi.json",
}

func specOperations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPIRoutes(t *testing.T) {
	ops := specOperations(loadSpec(t))
	var got []string
	for k := range ops {
		got = append(got, k)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(designRoutes))
	if !slices.Equal(got, want) {
		t.Errorf("spec operations\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOpenAPIResponses(t *testing.T) {
	doc := loadSpec(t)
	ops := specOperations(doc)
	need := map[string][]int{
		"GET /v1/accounts/{account_sid}/messages":          {200},
		"GET /v1/accounts/{account_sid}/messages/{sid}":    {200, 404},
		"PATCH /v1/accounts/{account_sid}/messages/{sid}":  {200, 404, 412, 413, 415},
		"DELETE /v1/accounts/{account_sid}/messages/{sid}": {204, 404},
		"GET /v1/accounts/{account_sid}/retention":         {200},
		"PUT /v1/accounts/{account_sid}/retention":         {200, 413, 415},
		"POST /v1/events": {202, 413, 415},
	}
	for key, op := range ops {
		if !strings.Contains(key, " /v1/") {
			// Operational endpoints: no authentication.
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s: want security [] (unauthenticated)", key)
			}
			continue
		}
		if op.Security != nil {
			t.Errorf("%s: overrides the global bearerAuth requirement", key)
		}
		for _, code := range append(need[key], 400, 401, 403, 429, 500, 503) {
			ref := op.Responses.Status(code)
			if ref == nil {
				t.Errorf("%s: no %d response", key, code)
				continue
			}
			r := ref.Value
			if code < 400 {
				continue
			}
			mt := r.Content.Get(ContentTypeProblem)
			if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Problem" || len(r.Content) != 1 {
				t.Errorf("%s %d: want only application/problem+json with the Problem schema", key, code)
			}
			header := map[int]string{401: "WWW-Authenticate", 429: "Retry-After", 503: "Retry-After"}[code]
			if header != "" && r.Headers[header] == nil {
				t.Errorf("%s %d: no %s header", key, code, header)
			}
		}
	}
	if doc.Security == nil || len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("global security %v, want bearerAuth", doc.Security)
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Error("no http bearer security scheme")
	}
}

// jsonFields returns the JSON member names of struct type typ and which are
// required (no omitempty).
func jsonFields(typ reflect.Type) (all, required []string) {
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	slices.Sort(all)
	slices.Sort(required)
	return all, required
}

func schemaFields(s *openapi3.Schema) (all, required []string) {
	for name := range s.Properties {
		all = append(all, name)
	}
	slices.Sort(all)
	required = slices.Sorted(slices.Values(s.Required))
	return all, required
}

// The spec's schemas list exactly the members the Go types marshal.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := loadSpec(t)
	for name, typ := range map[string]reflect.Type{
		"Message":      reflect.TypeFor[postflight.Message](),
		"Problem":      reflect.TypeFor[Problem](),
		"InvalidParam": reflect.TypeFor[InvalidParam](),
	} {
		gAll, gReq := jsonFields(typ)
		sAll, sReq := schemaFields(doc.Components.Schemas[name].Value)
		if !slices.Equal(gAll, sAll) {
			t.Errorf("%s: Go members %v, spec properties %v", name, gAll, sAll)
		}
		if !slices.Equal(gReq, sReq) {
			t.Errorf("%s: Go always-present members %v, spec required %v", name, gReq, sReq)
		}
	}
}

func TestOpenAPIMessageSchema(t *testing.T) {
	doc := loadSpec(t)
	schema := doc.Components.Schemas["Message"].Value
	str := func(s string) *string { return &s }
	i64 := func(n int64) *int64 { return &n }
	i32 := func(n int32) *int32 { return &n }
	sent := time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC)
	full := postflight.Message{
		SID: "MM0123456789abcdef0123456789abcdef", AccountSID: acc1, Status: postflight.StatusUndelivered,
		Channel: postflight.ChannelWhatsApp, Direction: postflight.DirectionOutboundReply,
		From: "whatsapp:+15017122661", To: "whatsapp:+15558675310", Body: str(""),
		NumSegments: 2, NumMedia: 1, PriceMicros: i64(-12500), PriceUnit: str("EUR"), ErrorCode: i32(30008),
		MessagingServiceSID: str("MG0123456789abcdef0123456789abcdef"), ContentSID: str("HX0123456789abcdef0123456789abcdef"),
		Tags: map[string]string{"k": "v"}, DateCreated: sent.Add(-time.Second), DateSent: &sent,
		DateUpdated: sent.Add(1500 * time.Millisecond), Sequence: 9, Revision: 4,
	}
	minimal := postflight.Message{SID: sid1, AccountSID: acc2, Status: postflight.StatusRead, From: "a", To: "b",
		DateCreated: sent, DateUpdated: sent}
	check := func(name string, m postflight.Message, ok bool) {
		t.Helper()
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		err = schema.VisitJSON(v)
		if ok && err != nil {
			t.Errorf("%s: %s does not match the schema: %v", name, b, err)
		}
		if !ok && err == nil {
			t.Errorf("%s: %s matches the schema", name, b)
		}
	}
	check("full", full, true)
	check("minimal", minimal, true)
	for _, s := range []postflight.Status{postflight.StatusDelivered, postflight.StatusUndelivered, postflight.StatusFailed,
		postflight.StatusReceived, postflight.StatusRead, postflight.StatusCanceled} {
		m := minimal
		m.Status = s
		check("final status "+s.String(), m, true)
	}
	bad := minimal
	bad.Status = postflight.StatusQueued
	check("non-final status", bad, false)
	bad = minimal
	bad.AccountSID = "AC0123"
	check("short account", bad, false)
	bad = minimal
	bad.SID = strings.ToUpper(sid1)
	check("uppercase sid", bad, false)
	bad = minimal
	bad.DateCreated = sent.In(time.FixedZone("x", 3600))
	check("not UTC", bad, false)

	// Every status name is in the Status enum, in order.
	var names []any
	for s := postflight.StatusAccepted; s.Valid(); s++ {
		names = append(names, s.String())
	}
	if got := doc.Components.Schemas["Status"].Value.Enum; !reflect.DeepEqual(got, names) {
		t.Errorf("Status enum %v, want %v", got, names)
	}
}

// specChecker validates responses written by this package's code against
// the operation their request matches.
type specChecker struct {
	t   *testing.T
	doc *openapi3.T
}

func (c specChecker) check(req *http.Request, rec *httptest.ResponseRecorder) {
	c.t.Helper()
	router, err := gorillamux.NewRouter(c.doc)
	if err != nil {
		c.t.Fatal(err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Errorf("%s %s → %d %s: %v", req.Method, req.URL, rec.Code, rec.Body, err)
	}
}

// Every problem helper's output matches the spec's responses.
func TestProblemsMatchSpec(t *testing.T) {
	c := specChecker{t, loadSpec(t)}
	req := httptest.NewRequest("PATCH", "/v1/accounts/"+acc1+"/messages/"+sid1, nil)
	for _, p := range []Problem{
		badRequest("x", InvalidParam{"price_unit", "want USD"}), badRequestFrom(&postflight.FieldError{Field: "a", Reason: "b"}),
		unauthorized(), forbidden("no"), notFound(), preconditionFailed(), payloadTooLarge(1), unsupportedMediaType("application/json"),
		tooManyRequests(time.Second), internalError(), serviceUnavailable(time.Second), serviceUnavailable(0),
	} {
		rec := httptest.NewRecorder()
		writeProblem(rec, p)
		c.check(req, rec)
	}
}

// requireScope's 401, 400 and 403 match the spec.
func TestRequireScopeMatchesSpec(t *testing.T) {
	c := specChecker{t, loadSpec(t)}
	a, _ := newTestAuthenticator(t)
	mux := authMux(a)
	for _, tt := range []struct {
		path, auth string
		status     int
	}{
		{"/v1/accounts/" + acc1 + "/messages", "", 401},
		{"/v1/accounts/AC1/messages", "Bearer " + tokBilling, 400},
		{"/v1/accounts/" + acc2 + "/messages", "Bearer " + tokSupport, 403},
	} {
		req := httptest.NewRequest("GET", tt.path, nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, rec.Code, tt.status)
		}
		c.check(req, rec)
	}
}

func TestHandleOpenAPI(t *testing.T) {
	rec := httptest.NewRecorder()
	handleOpenAPI(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || !bytes.Equal(rec.Body.Bytes(), openAPISpec) {
		t.Fatalf("%d %q, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	c := specChecker{t, loadSpec(t)}
	c.check(httptest.NewRequest("GET", "/openapi.json", nil), rec)

	req := httptest.NewRequest("GET", "/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	handleOpenAPI(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", rec.Code)
	}

	spec := OpenAPISpec()
	spec[0] = 'X'
	if OpenAPISpec()[0] == 'X' {
		t.Error("OpenAPISpec returns the embedded bytes, not a copy")
	}
}
