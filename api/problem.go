package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/postflight/postflight"
)

// ContentTypeProblem is the media type of every error response (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem details object, the body of every error
// response. Type defaults to "about:blank", in which case Title is the HTTP
// status phrase; Detail explains this occurrence and is never empty on the
// wire. Build one with the helpers below (badRequest, notFound, …) and send
// it with writeProblem.
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail"`
	Instance      string         `json:"instance,omitempty"`
	InvalidParams []InvalidParam `json:"invalid_params,omitempty"`

	// Header holds extra response headers that belong to the problem
	// (WWW-Authenticate, Retry-After, Allow). It is not part of the body.
	Header http.Header `json:"-"`
}

// InvalidParam names one rejected request parameter (path, query, header or
// body field) and says why, as in RFC 9457's example extension.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Error lets a Problem travel as an error (e.g. from a request parser to the
// handler that writes it).
func (p Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Title)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// newProblem returns an about:blank problem for status with the status
// phrase as title.
func newProblem(status int, detail string) Problem {
	return Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// withHeader returns p with header key set to value.
func (p Problem) withHeader(key, value string) Problem {
	h := p.Header.Clone()
	if h == nil {
		h = make(http.Header, 1)
	}
	h.Set(key, value)
	p.Header = h
	return p
}

// writeProblem writes p as the whole response: its headers, Content-Type
// application/problem+json, the status and the JSON body. Empty Type, Title
// and Detail are filled from the status, so the body always carries type,
// title, status and detail. A Status outside 400–599 is a programming error
// and is sent as 500.
func writeProblem(w http.ResponseWriter, p Problem) {
	if p.Status < 400 || p.Status > 599 {
		p = internalError()
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Detail == "" {
		p.Detail = p.Title
	}
	h := w.Header()
	for k, vs := range p.Header {
		h[k] = append([]string(nil), vs...)
	}
	body, err := json.Marshal(p)
	if err != nil {
		// Only strings and ints: cannot happen.
		panic(fmt.Sprintf("api: marshal problem: %v", err))
	}
	body = append(body, '\n')
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body) // the client went away: nothing more to do
}

// badRequest is a 400 with an explanation and, for parameter errors, the
// parameters at fault.
func badRequest(detail string, params ...InvalidParam) Problem {
	p := newProblem(http.StatusBadRequest, detail)
	p.InvalidParams = params
	return p
}

// invalidParams collects the *postflight.FieldError values in err (which may
// be an errors.Join tree) as invalid_params entries. Other errors are left
// out: their text is not meant for clients.
func invalidParams(err error) []InvalidParam {
	var out []InvalidParam
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*postflight.FieldError); ok { //nolint:errorlint // walking the tree by hand
			out = append(out, InvalidParam{Name: fe.Field, Reason: fe.Reason})
			return
		}
		switch u := err.(type) { //nolint:errorlint // walking the tree by hand
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// badRequestFrom turns a validation error into a 400 listing every
// *postflight.FieldError it holds. If it holds none, the 400 says only that
// the request is invalid.
func badRequestFrom(err error) Problem {
	params := invalidParams(err)
	if len(params) == 0 {
		return badRequest("the request is invalid")
	}
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.Name
	}
	return badRequest("invalid parameters: "+strings.Join(names, ", "), params...)
}

// notFound is a 404. It does not say whether the message never existed, was
// deleted, is past retention, or belongs to another account.
func notFound() Problem {
	return newProblem(http.StatusNotFound, "no such resource")
}

// unauthorized is a 401 with the RFC 6750 challenge: the request carried no
// bearer token, or one that is not in the auth file.
func unauthorized() Problem {
	return newProblem(http.StatusUnauthorized, "a valid bearer token is required").
		withHeader("WWW-Authenticate", `Bearer realm="postflight"`)
}

// forbidden is a 403: the token is valid but lacks the scope or the account.
func forbidden(detail string) Problem {
	return newProblem(http.StatusForbidden, detail)
}

// tooManyRequests is a 429 telling the client to retry after retryAfter
// (rounded up to whole seconds, at least 1).
func tooManyRequests(retryAfter time.Duration) Problem {
	s := retryAfterSeconds(retryAfter)
	return newProblem(http.StatusTooManyRequests, fmt.Sprintf("too many requests; retry in %d s", s)).
		withHeader("Retry-After", strconv.FormatInt(s, 10))
}

// serviceUnavailable is a 503 (the store is down or its circuit breaker is
// open). A positive retryAfter adds a Retry-After header.
func serviceUnavailable(retryAfter time.Duration) Problem {
	p := newProblem(http.StatusServiceUnavailable, "the service is temporarily unavailable")
	if retryAfter > 0 {
		p = p.withHeader("Retry-After", strconv.FormatInt(retryAfterSeconds(retryAfter), 10))
	}
	return p
}

func retryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// preconditionFailed is a 412: If-Match does not match the current ETag.
func preconditionFailed() Problem {
	return newProblem(http.StatusPreconditionFailed, "If-Match does not match the current ETag of the resource")
}

// conflict is a 409: concurrent changes to the resource kept winning over
// the store's optimistic retries. Retrying the request is safe.
func conflict() Problem {
	return newProblem(http.StatusConflict, "the resource was changed concurrently; retry the request").
		withHeader("Retry-After", "1")
}

// unsupportedMediaType is a 415 naming the request media types accepted.
func unsupportedMediaType(accepted ...string) Problem {
	detail := "unsupported request Content-Type"
	if len(accepted) > 0 {
		detail += "; use " + strings.Join(accepted, " or ")
	}
	return newProblem(http.StatusUnsupportedMediaType, detail)
}

// payloadTooLarge is a 413 for a request body over limit bytes.
func payloadTooLarge(limit int64) Problem {
	return newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit))
}

// methodNotAllowed is a 405 with the Allow header listing allowed.
func methodNotAllowed(allowed ...string) Problem {
	return newProblem(http.StatusMethodNotAllowed, "method not allowed").
		withHeader("Allow", strings.Join(allowed, ", "))
}

// internalError is a 500 whose detail is fixed: the cause is for the log,
// never for the client. Log it where it happens, with the request's context.
func internalError() Problem {
	return newProblem(http.StatusInternalServerError, "internal error")
}

// recoverPanics wraps next so that a panic in it is logged to log (with the
// stack) and answered with a 500 problem instead of a dropped connection. If
// next had already started its response, the connection is aborted with
// http.ErrAbortHandler, so the client sees a truncated response rather than
// a well-formed wrong one. http.ErrAbortHandler panics pass through
// untouched. Safe for concurrent use, like any http.Handler.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			log.ErrorContext(r.Context(), "panic in HTTP handler",
				"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rw.wrote {
				panic(http.ErrAbortHandler)
			}
			for k := range w.Header() {
				delete(w.Header(), k)
			}
			writeProblem(w, internalError())
		}()
		next.ServeHTTP(rw, r)
	})
}

// trackingWriter records whether the response has started. Unwrap lets
// http.ResponseController reach the underlying writer (Flush, deadlines).
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *trackingWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
