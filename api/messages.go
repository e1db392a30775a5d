package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

type messagePage struct {
	Messages      []postflight.Message `json:"messages"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	p, err := parseList(r.PathValue("account_sid"), r.URL.Query())
	if err != nil {
		writeProblem(w, badRequestFrom(err))
		return
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	fp := p.fingerprint()
	var cursor *keydesign.Cursor
	if p.token != "" {
		c, err := keydesign.DecodeToken(s.cfg.PageTokenKey, p.token, fp, now, s.cfg.PageTokenTTL)
		if err != nil {
			writeProblem(w, badRequest("page_token is not valid for this query", InvalidParam{Name: "page_token", Reason: tokenReason(err)}))
			return
		}
		cursor = &c
		p.q.After, now = c.After, c.Issued
	}
	key := p.flightKey(cursor)
	if err := p.resolveRange(now, s.cfg.DefaultRange, s.cfg.MaxRange); err != nil {
		writeProblem(w, badRequestFrom(err))
		return
	}
	body, joined, err := s.lists.do(r.Context(), key, func(ctx context.Context) ([]byte, error) {
		return s.readPage(ctx, p, fp, now)
	})
	if joined {
		s.m.coalesced.Add(r.Context(), 1)
	}
	switch {
	case errors.Is(err, errListBusy):
		s.m.throttled.Add(r.Context(), 1, metric.WithAttributes(attribute.String("limit", "list_inflight")))
		pr := serviceUnavailable(time.Second)
		pr.Detail = "too many list requests in flight; retry shortly"
		writeProblem(w, pr)
	case errors.Is(err, errShuttingDown):
		pr := serviceUnavailable(time.Second)
		pr.Detail = "the server is shutting down"
		writeProblem(w, pr)
	case err != nil:
		s.storeError(w, r, err)
	default:
		writeJSONBody(w, http.StatusOK, body)
	}
}

// readPage reads one page from the store and returns the response body.
// now is the time the range was resolved at, carried in the next page token.
func (s *Server) readPage(ctx context.Context, p listParams, fp uint64, now time.Time) ([]byte, error) {
	page, err := s.st.List(ctx, p.q)
	if err != nil {
		return nil, err
	}
	out := messagePage{Messages: page.Messages}
	if out.Messages == nil {
		out.Messages = []postflight.Message{}
	}
	if page.More {
		tok, err := keydesign.EncodeToken(s.cfg.PageTokenKey, keydesign.Cursor{Fingerprint: fp, After: page.Last, Issued: now})
		if err != nil {
			return nil, err
		}
		out.NextPageToken = tok
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func tokenReason(err error) string {
	switch {
	case errors.Is(err, keydesign.ErrTokenExpired):
		return "expired; start the list again"
	case errors.Is(err, keydesign.ErrTokenMismatch):
		return "issued for a different query"
	default:
		return "malformed or altered"
	}
}

// messageSID reads and validates the {sid} path value.
func messageSID(w http.ResponseWriter, r *http.Request) (string, bool) {
	sid := r.PathValue("sid")
	if !postflight.ValidMessageSID(sid) {
		writeProblem(w, badRequest("sid is not a valid message SID", InvalidParam{Name: "sid", Reason: "want SM or MM and 32 lowercase hex digits"}))
		return "", false
	}
	return sid, true
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	sid, ok := messageSID(w, r)
	if !ok {
		return
	}
	m, err := s.st.Get(r.Context(), r.PathValue("account_sid"), sid)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(m))
	writeJSON(w, http.StatusOK, m)
}

func etag(m postflight.Message) string { return `"` + strconv.FormatInt(m.Revision, 10) + `"` }

// patchBody is the JSON merge patch a PATCH accepts.
type patchBody struct {
	Body        *string      `json:"body"`
	PriceMicros *json.Number `json:"price_micros"`
	PriceUnit   *string      `json:"price_unit"`
}

func (s *Server) patchMessage(w http.ResponseWriter, r *http.Request) {
	sid, ok := messageSID(w, r)
	if !ok {
		return
	}
	var b patchBody
	if p := decodeBody(w, r, s.cfg.MaxBodyBytes, &b, "application/merge-patch+json", "application/json"); p != nil {
		writeProblem(w, *p)
		return
	}
	patch, err := b.validate()
	if err != nil {
		writeProblem(w, badRequestFrom(err))
		return
	}
	account := r.PathValue("account_sid")
	ifRev, err := s.ifMatch(r, account, sid)
	if err != nil {
		if p, ok := err.(Problem); ok { //nolint:errorlint // ifMatch returns a Problem itself
			writeProblem(w, p)
		} else {
			s.storeError(w, r, err)
		}
		return
	}
	m, err := s.st.Update(r.Context(), account, sid, patch, ifRev)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(m))
	writeJSON(w, http.StatusOK, m)
}

// ifMatch turns the If-Match header (RFC 9110 §13.1.1) into the revision
// the update is conditional on: nil without the header or with "*". The
// comparison is strong: a weak tag (W/"3") never matches, so a list of only
// weak tags is a 412 at once. Of a list of several strong tags, the one that
// is the message's current revision is used (the update stays conditional
// on it, so a change in between is still a 412).
func (s *Server) ifMatch(r *http.Request, account, sid string) (*int64, error) {
	h := strings.Join(r.Header.Values("If-Match"), ",")
	if strings.TrimSpace(h) == "" || strings.TrimSpace(h) == "*" {
		return nil, nil
	}
	var strong []int64
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimSpace(tag)
		weak := strings.HasPrefix(tag, "W/")
		rev, ok := parseETag(strings.TrimPrefix(tag, "W/"))
		if !ok {
			return nil, badRequest("If-Match must be ETags this API returned", InvalidParam{Name: "If-Match", Reason: `want a quoted revision such as "3"`})
		}
		if !weak {
			strong = append(strong, rev)
		}
	}
	switch len(strong) {
	case 0:
		return nil, preconditionFailed()
	case 1:
		return &strong[0], nil
	}
	cur, err := s.st.Get(r.Context(), account, sid)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(strong, cur.Revision) {
		return nil, preconditionFailed()
	}
	return &cur.Revision, nil
}

// parseETag reads one strong entity tag this API issued: a quoted revision.
func parseETag(h string) (int64, bool) {
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' {
		return 0, false
	}
	n, err := strconv.ParseInt(h[1:len(h)-1], 10, 64)
	return n, err == nil && n >= 0
}

func (b *patchBody) validate() (postflight.Patch, error) {
	var p postflight.Patch
	var errs []error
	bad := func(f, reason string) { errs = append(errs, &postflight.FieldError{Field: f, Reason: reason}) }
	if b.Body == nil && b.PriceMicros == nil && b.PriceUnit == nil {
		bad("body", "nothing to change: send body, price_micros or price_unit")
	}
	if b.Body != nil {
		if *b.Body != "" {
			bad("body", `only redaction is supported: the body may only be set to ""`)
		}
		p.Redact = true
	}
	if b.PriceMicros != nil {
		n, err := strconv.ParseInt(b.PriceMicros.String(), 10, 64)
		if err != nil {
			bad("price_micros", "want an integer number of millionths")
		} else {
			p.PriceMicros = &n
		}
	}
	if b.PriceUnit != nil {
		u := *b.PriceUnit
		if len(u) != 3 || strings.ToUpper(u) != u || strings.Trim(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			bad("price_unit", "want an ISO 4217 code such as USD")
		} else {
			p.PriceUnit = &u
		}
	}
	return p, errors.Join(errs...)
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) {
	sid, ok := messageSID(w, r)
	if !ok {
		return
	}
	if err := s.st.Delete(r.Context(), r.PathValue("account_sid"), sid); err != nil {
		s.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// storeError answers an error from the store. Unknown errors are a 503 when
// DynamoDB is the likely cause (it is retryable), never a 500 with details.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, postflight.ErrNotFound):
		writeProblem(w, notFound())
	case errors.Is(err, postflight.ErrPreconditionFailed):
		writeProblem(w, preconditionFailed())
	case errors.Is(err, postflight.ErrConflict):
		writeProblem(w, conflict())
	case r.Context().Err() != nil:
		p := serviceUnavailable(time.Second)
		p.Detail = "the request deadline passed"
		writeProblem(w, p)
	case errors.Is(err, postflight.ErrUnavailable) && errors.Is(err, context.DeadlineExceeded):
		// The store's attempt timeout, not the request's deadline: DynamoDB
		// took the request and did not answer in time.
		s.log.Warn("store did not answer in time", "path", r.URL.Path, "err", err)
		p := serviceUnavailable(time.Second)
		p.Detail = "the store did not answer in time"
		writeProblem(w, p)
	case errors.Is(err, postflight.ErrCorruptRecord):
		// The store counted and logged it, with the item's keys.
		p := internalError()
		p.Detail = "the stored record could not be read"
		writeProblem(w, p)
	case errors.Is(err, postflight.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("store unavailable", "path", r.URL.Path, "err", err)
		writeProblem(w, serviceUnavailable(time.Second))
	default:
		s.log.Error("store error", "path", r.URL.Path, "err", err)
		writeProblem(w, internalError())
	}
}
