package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
)

// recordProblem writes p and returns the recorder and the decoded body.
func recordProblem(t *testing.T, p Problem) (*httptest.ResponseRecorder, Problem) {
	t.Helper()
	rec := httptest.NewRecorder()
	writeProblem(rec, p)
	var got Problem
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return rec, got
}

func TestProblemHelpers(t *testing.T) {
	tests := []struct {
		name    string
		p       Problem
		status  int
		title   string
		detail  string            // substring
		headers map[string]string // exact values
	}{
		{name: "badRequest", p: badRequest("page_size is out of range", InvalidParam{"page_size", "want 1-1000"}),
			status: 400, title: "Bad Request", detail: "page_size is out of range"},
		{name: "notFound", p: notFound(), status: 404, title: "Not Found"},
		{name: "unauthorized", p: unauthorized(), status: 401, title: "Unauthorized",
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="postflight"`}},
		{name: "forbidden", p: forbidden("the token lacks the \"admin\" scope"), status: 403, title: "Forbidden", detail: `"admin" scope`},
		{name: "tooManyRequests rounds up", p: tooManyRequests(1500 * time.Millisecond), status: 429, title: "Too Many Requests",
			detail: "2 s", headers: map[string]string{"Retry-After": "2"}},
		{name: "tooManyRequests at least 1 s", p: tooManyRequests(0), status: 429,
			headers: map[string]string{"Retry-After": "1"}},
		{name: "tooManyRequests whole seconds", p: tooManyRequests(10 * time.Second), status: 429,
			headers: map[string]string{"Retry-After": "10"}},
		{name: "serviceUnavailable", p: serviceUnavailable(3 * time.Second), status: 503, title: "Service Unavailable",
			headers: map[string]string{"Retry-After": "3"}},
		{name: "serviceUnavailable without Retry-After", p: serviceUnavailable(0), status: 503,
			headers: map[string]string{"Retry-After": ""}},
		{name: "preconditionFailed", p: preconditionFailed(), status: 412, title: "Precondition Failed", detail: "If-Match"},
		{name: "unsupportedMediaType", p: unsupportedMediaType("application/merge-patch+json", "application/json"), status: 415,
			title: "Unsupported Media Type", detail: "application/merge-patch+json or application/json"},
		{name: "payloadTooLarge", p: payloadTooLarge(65536), status: 413, title: "Request Entity Too Large", detail: "65536 bytes"},
		{name: "methodNotAllowed", p: methodNotAllowed("GET", "PUT"), status: 405, title: "Method Not Allowed",
			headers: map[string]string{"Allow": "GET, PUT"}},
		{name: "internalError", p: internalError(), status: 500, title: "Internal Server Error", detail: "internal error"},
		{name: "bare status gets defaults", p: Problem{Status: 409}, status: 409, title: "Conflict", detail: "Conflict"},
		{name: "status outside 4xx/5xx becomes 500", p: Problem{Status: 200, Detail: "oops"}, status: 500, title: "Internal Server Error", detail: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, got := recordProblem(t, tt.p)
			if rec.Code != tt.status || got.Status != tt.status {
				t.Errorf("status %d, body status %d, want %d", rec.Code, got.Status, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if got.Type != "about:blank" {
				t.Errorf("type %q", got.Type)
			}
			if tt.title != "" && got.Title != tt.title {
				t.Errorf("title %q, want %q", got.Title, tt.title)
			}
			if got.Title == "" || got.Detail == "" {
				t.Errorf("empty title or detail: %+v", got)
			}
			if !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", got.Detail, tt.detail)
			}
			for k, v := range tt.headers {
				if h := rec.Header().Get(k); h != v {
					t.Errorf("%s: %q, want %q", k, h, v)
				}
			}
			if tt.status != 400 && got.InvalidParams != nil {
				t.Errorf("invalid_params on a %d", tt.status)
			}
			if strings.Contains(rec.Body.String(), "invalid_params") != (len(got.InvalidParams) > 0) {
				t.Errorf("invalid_params present but empty: %s", rec.Body)
			}
		})
	}
}

func TestProblemJSONShape(t *testing.T) {
	rec, _ := recordProblem(t, badRequest("bad", InvalidParam{Name: "start", Reason: "not RFC 3339"}))
	want := `{"type":"about:blank","title":"Bad Request","status":400,"detail":"bad","invalid_params":[{"name":"start","reason":"not RFC 3339"}]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n%s\nwant\n%s", rec.Body, want)
	}
	if rec.Header().Get("Content-Length") != fmt.Sprint(len(want)) {
		t.Errorf("Content-Length %q", rec.Header().Get("Content-Length"))
	}
}

func TestWriteProblemDropsETag(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("ETag", `"3"`)
	writeProblem(rec, notFound())
	if rec.Header().Get("ETag") != "" {
		t.Error("an error response carries the resource's ETag")
	}
}

func TestProblemHeadersNotShared(t *testing.T) {
	p := tooManyRequests(time.Second)
	q := p.withHeader("Retry-After", "9")
	if p.Header.Get("Retry-After") != "1" || q.Header.Get("Retry-After") != "9" {
		t.Errorf("withHeader changed its receiver: %v %v", p.Header, q.Header)
	}
}

func TestBadRequestFrom(t *testing.T) {
	err := errors.Join(
		&postflight.FieldError{Field: "price_micros", Reason: "want an integer"},
		fmt.Errorf("wrapped: %w", &postflight.FieldError{Field: "price_unit", Reason: "want USD"}),
		errors.New("dynamodb: secret table name"),
	)
	p := badRequestFrom(err)
	if p.Status != 400 {
		t.Fatalf("status %d", p.Status)
	}
	want := []InvalidParam{{"price_micros", "want an integer"}, {"price_unit", "want USD"}}
	if fmt.Sprint(p.InvalidParams) != fmt.Sprint(want) {
		t.Errorf("invalid_params %v, want %v", p.InvalidParams, want)
	}
	if !strings.Contains(p.Detail, "price_micros, price_unit") {
		t.Errorf("detail %q", p.Detail)
	}
	// A non-field error's text never reaches the client.
	p = badRequestFrom(errors.New("dynamodb: secret table name"))
	if strings.Contains(p.Detail, "secret") || len(p.InvalidParams) != 0 {
		t.Errorf("leaked: %+v", p)
	}
	if got := invalidParams(nil); got != nil {
		t.Errorf("invalidParams(nil) = %v", got)
	}
}

func TestProblemError(t *testing.T) {
	var err error = forbidden("no")
	var p Problem
	if !errors.As(err, &p) || p.Status != 403 {
		t.Fatalf("errors.As: %v", err)
	}
	if got := err.Error(); got != "403 Forbidden: no" {
		t.Errorf("Error() = %q", got)
	}
}

func TestRecoverPanics(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))

	t.Run("panic before writing", func(t *testing.T) {
		logBuf.Reset()
		h := recoverPanics(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"1"`)
			w.Header().Set("Content-Type", "application/json")
			panic("connect to db with password hunter2")
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
		if rec.Code != 500 {
			t.Fatalf("status %d", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != ContentTypeProblem {
			t.Errorf("Content-Type %q", ct)
		}
		if rec.Header().Get("ETag") != "" {
			t.Error("the handler's headers survived the panic")
		}
		if strings.Contains(rec.Body.String(), "hunter2") {
			t.Errorf("panic value leaked to the client: %s", rec.Body)
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 500 {
			t.Errorf("body %s: %v", rec.Body, err)
		}
		logged := logBuf.String()
		for _, want := range []string{"panic in HTTP handler", "hunter2", "path=/v1/x", "recoverPanics", "level=ERROR"} {
			if !strings.Contains(logged, want) {
				t.Errorf("log lacks %q: %s", want, logged)
			}
		}
	})

	t.Run("panic after writing aborts", func(t *testing.T) {
		logBuf.Reset()
		h := recoverPanics(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"messages":[`))
			panic(errors.New("boom"))
		}))
		v := servePanicking(h)
		if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
		if !strings.Contains(logBuf.String(), "boom") {
			t.Errorf("panic not logged: %s", logBuf.String())
		}
	})

	t.Run("ErrAbortHandler passes through unlogged", func(t *testing.T) {
		logBuf.Reset()
		h := recoverPanics(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}))
		if v := servePanicking(h); v != http.ErrAbortHandler { //nolint:errorlint // identity is the point
			t.Errorf("recovered %v", v)
		}
		if logBuf.Len() != 0 {
			t.Errorf("logged: %s", logBuf.String())
		}
	})

	t.Run("no panic", func(t *testing.T) {
		h := recoverPanics(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "1")
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write([]byte("tea"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush through the wrapper: %v", err)
			}
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusTeapot || rec.Body.String() != "tea" || rec.Header().Get("X-Test") != "1" || !rec.Flushed {
			t.Errorf("response altered: %d %q %v flushed=%v", rec.Code, rec.Body, rec.Header(), rec.Flushed)
		}
	})
}

// servePanicking serves a request and returns what h panicked with.
func servePanicking(h http.Handler) (v any) {
	defer func() { v = recover() }()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	return nil
}
