// Package openapitest checks real requests and responses against the
// OpenAPI description the API serves (api.OpenAPISpec), so handler tests
// catch drift between the handlers and the published contract.
//
// It imports package api, so tests that use it must be external test
// packages (package api_test, or any other package's tests): an internal
// test of package api importing it is an import cycle.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/postflight/postflight/api"
)

// Validator matches requests to the spec's operations and validates them and
// their responses. It is read-only after New and safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads and validates the embedded spec, failing t if it is invalid.
func New(t testing.TB) *Validator {
	t.Helper()
	v, err := NewFromSpec(api.OpenAPISpec())
	if err != nil {
		t.Fatalf("openapitest: %v", err)
	}
	return v
}

// NewFromSpec builds a Validator for an OpenAPI document (JSON or YAML). The
// document must pass openapi3's own validation. Its servers are ignored:
// operations match on path alone, whatever the request's host.
func NewFromSpec(spec []byte) (*Validator, error) {
	registerNDJSON.Do(func() { openapi3filter.RegisterBodyDecoder("application/x-ndjson", decodeNDJSON) })
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid spec: %w", err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// registerNDJSON registers, once per process, the NDJSON body decoder in
// kin-openapi's registry (a process-wide table of its own design).
var registerNDJSON sync.Once

// decodeNDJSON reads an application/x-ndjson body as the array of its
// non-blank lines' JSON values, so the spec describes it as an array.
func decodeNDJSON(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("ndjson line %d: %w", len(out), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Doc returns the loaded document. Callers must not modify it.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Check validates req and its response against the spec and reports every
// mismatch with t.Errorf. resp supplies the status and headers; body is the
// complete response body (resp.Body is not read). See Validate for the rules.
func (v *Validator) Check(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if err := v.Validate(req, resp, body); err != nil {
		t.Errorf("openapitest: %s %s → %d: %v", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
}

// Validate returns why req and its response do not match the spec, or nil.
//
//   - A request that matches no operation of the spec must be answered with a
//     404 problem (unknown path) or a 405 problem with Allow (unknown method).
//   - A request the spec deems invalid (path values, query, headers, body)
//     must be answered with a 4xx; its response is still validated.
//   - The response status must be documented for the operation, its
//     documented headers present and valid (ETag, Retry-After,
//     WWW-Authenticate…), its Content-Type one the spec lists, and its body
//     valid against that schema. A status documented without content must
//     have an empty body.
//
// Security requirements are not evaluated: the handlers' own auth is under
// test, not the validator's. The request body is validated only if it can be
// read again, that is if req.GetBody is set (http.NewRequest with a
// bytes.Reader, bytes.Buffer or strings.Reader, or Serve); otherwise, e.g.
// for an httptest.NewRequest whose body the handler consumed, it is skipped.
func (v *Validator) Validate(req *http.Request, resp *http.Response, body []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	skipBody := false
	switch {
	case req.GetBody != nil:
		b, err := req.GetBody()
		if err != nil {
			return fmt.Errorf("reread request body: %w", err)
		}
		r.Body = b
	case req.Body == nil || req.Body == http.NoBody:
		r.Body = http.NoBody
	default:
		skipBody = true
	}

	route, pathParams, err := v.router.FindRoute(r)
	if err != nil {
		return v.validateOffSpec(r, err, resp, body)
	}
	reqInput := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			ExcludeRequestBody:  skipBody,
			SkipSettingDefaults: true,
			MultiError:          true,
		},
	}
	var errs []error
	if err := openapi3filter.ValidateRequest(ctx, reqInput); err != nil {
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			errs = append(errs, fmt.Errorf("the request does not match the spec, yet the response is %d, not a 4xx: %w",
				resp.StatusCode, err))
		}
	}

	respInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(ctx, respInput); err != nil {
		errs = append(errs, fmt.Errorf("response: %w", err))
	}
	if err := checkContent(route.Operation, resp, body); err != nil {
		errs = append(errs, fmt.Errorf("response: %w", err))
	}
	return errors.Join(errs...)
}

// validateOffSpec accepts the only right answers to a request no operation
// matches: a 404 problem for an unknown path, a 405 problem with an Allow
// header for an unknown method on a known path.
func (v *Validator) validateOffSpec(r *http.Request, routeErr error, resp *http.Response, body []byte) error {
	want := http.StatusNotFound
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
		want = http.StatusMethodNotAllowed
	}
	if resp.StatusCode != want {
		return fmt.Errorf("no operation in the spec for %s %s (%w), so want a %d problem, got %d",
			r.Method, r.URL.Path, routeErr, want, resp.StatusCode)
	}
	if want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
		return errors.New("a 405 without an Allow header")
	}
	return v.validateProblem(resp, body)
}

// validateProblem checks a problem+json response against the spec's Problem
// schema.
func (v *Validator) validateProblem(resp *http.Response, body []byte) error {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		return fmt.Errorf("%d: Content-Type %q, want application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ref := v.doc.Components.Schemas["Problem"]
	if ref == nil || ref.Value == nil {
		return errors.New("the spec has no Problem schema")
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("%d: problem body: %w", resp.StatusCode, err)
	}
	if err := ref.Value.VisitJSON(value, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("%d: problem body does not match the Problem schema: %w", resp.StatusCode, err)
	}
	if p, ok := value.(map[string]any); ok {
		if status, ok := p["status"].(float64); !ok || int(status) != resp.StatusCode {
			return fmt.Errorf("%d: problem status %v", resp.StatusCode, p["status"])
		}
	}
	return nil
}

// checkContent covers what ValidateResponse leaves out: a body where the
// spec documents none, and a body without a Content-Type.
func checkContent(op *openapi3.Operation, resp *http.Response, body []byte) error {
	ref := op.Responses.Status(resp.StatusCode)
	if ref == nil {
		ref = op.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return nil // ValidateResponse reported the undocumented status
	}
	if len(ref.Value.Content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("status %d is documented without a body, got %d bytes", resp.StatusCode, len(body))
		}
		return nil
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return fmt.Errorf("status %d: no Content-Type", resp.StatusCode)
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return fmt.Errorf("status %d: Content-Type %q: %w", resp.StatusCode, ct, err)
	}
	return nil
}

// Serve runs req through h with an httptest.ResponseRecorder, Checks the
// exchange (request body included: Serve buffers it first) and returns the
// response and its body.
func (v *Validator) Serve(t testing.TB, h http.Handler, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatalf("openapitest: read request body: %v", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body := rec.Body.Bytes()
	v.Check(t, req, resp, body)
	return resp, body
}
