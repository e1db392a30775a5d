package api

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// listParams is a parsed list request.
type listParams struct {
	q        postflight.ListQuery
	token    string
	startSet bool
	endSet   bool
}

const (
	defaultPageSize = 50
	maxPageSize     = 1000
	maxFilterLen    = postflight.MaxAddressLen
)

var listKeys = []string{"start", "end", "to", "from", "status", "page_size", "page_token"}

// parseList validates a list request's query string. Every problem found is
// reported (errors.Join of *postflight.FieldError), so a caller fixes them in
// one round. now resolves the default range; with a page token the token's
// issue time is used instead, so every page of a list sees the same range.
func parseList(account string, v url.Values) (listParams, error) {
	var p listParams
	var errs []error
	bad := func(name, reason string) { errs = append(errs, &postflight.FieldError{Field: name, Reason: reason}) }
	for k := range v {
		if !slices.Contains(listKeys, k) {
			bad(k, "unknown query parameter")
		}
	}
	for _, k := range []string{"start", "end", "to", "from", "page_size", "page_token"} {
		if len(v[k]) > 1 {
			bad(k, "given more than once")
		}
	}
	p.q.Account = account
	parseTime := func(name string) (time.Time, bool) {
		s := v.Get(name)
		if s == "" {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad(name, "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return time.Time{}, false
		}
		if t.Before(postflight.Epoch) || t.After(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
			bad(name, "out of range")
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	p.q.Start, p.startSet = parseTime("start")
	p.q.End, p.endSet = parseTime("end")
	p.q.To, p.q.From = v.Get("to"), v.Get("from")
	for _, f := range []struct{ name, val string }{{"to", p.q.To}, {"from", p.q.From}} {
		if len(f.val) > maxFilterLen || strings.ContainsRune(f.val, 0) {
			bad(f.name, "at most 256 bytes")
		}
	}
	seen := map[postflight.Status]bool{}
	for _, name := range v["status"] { // repeatable: status=delivered&status=read
		st, ok := postflight.ParseStatus(name)
		if !ok {
			bad("status", "unknown status "+strconv.Quote(truncate(name, 32))+"; want lowercase names such as delivered")
			continue
		}
		if !seen[st] {
			seen[st] = true
			p.q.Statuses = append(p.q.Statuses, st)
		}
	}
	slices.Sort(p.q.Statuses)
	p.q.PageSize = defaultPageSize
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			bad("page_size", "want an integer from 1 to 1000")
		} else {
			p.q.PageSize = n
		}
	}
	p.token = v.Get("page_token")
	if len(p.token) > 256 {
		bad("page_token", "malformed")
		p.token = ""
	}
	return p, errors.Join(errs...)
}

// fingerprint binds a page token to the account and the query as given
// (defaults unresolved, page_size excluded: a caller may change page size
// between pages).
func (p *listParams) fingerprint() uint64 {
	parts := []string{p.q.Account, p.q.To, p.q.From}
	for _, t := range []struct {
		set bool
		t   time.Time
	}{{p.startSet, p.q.Start}, {p.endSet, p.q.End}} {
		if t.set {
			parts = append(parts, t.t.Format(time.RFC3339Nano))
		} else {
			parts = append(parts, "-")
		}
	}
	for _, st := range p.q.Statuses {
		parts = append(parts, st.String())
	}
	return keydesign.Fingerprint(parts...)
}

// resolveRange fills in the default range relative to now and checks it.
func (p *listParams) resolveRange(now time.Time, def, maxRange time.Duration) error {
	switch {
	case !p.startSet && !p.endSet:
		p.q.End = now
		p.q.Start = now.Add(-def)
	case !p.startSet:
		p.q.Start = p.q.End.Add(-def)
	case !p.endSet:
		p.q.End = now
		if !p.q.Start.Before(p.q.End) {
			p.q.End = p.q.Start.Add(def)
		}
	}
	// [t, t) is a valid, empty range; only an inverted one is an error.
	if p.q.End.Before(p.q.Start) {
		return &postflight.FieldError{Field: "end", Reason: "must not be before start"}
	}
	if p.q.End.Sub(p.q.Start) > maxRange {
		return &postflight.FieldError{Field: "start", Reason: "the range may span at most " + strconv.Itoa(int(maxRange.Hours()/24)) + " days"}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
