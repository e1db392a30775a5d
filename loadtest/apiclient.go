package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/postflight/postflight"
)

// apiClient calls the service's REST API (DESIGN.md §3) with a bearer
// token. It is safe for concurrent use.
type apiClient struct {
	hc    *http.Client
	base  string // no trailing slash
	token string
}

func newAPIClient(hc *http.Client, base, token string) *apiClient {
	return &apiClient{hc: hc, base: strings.TrimRight(base, "/"), token: token}
}

// httpError is an answer other than 200.
type httpError struct {
	Status int
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// get fetches path (with query q) and decodes a 200 answer's JSON into out,
// or discards the body when out is nil.
func (c *apiClient) get(ctx context.Context, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return &httpError{Status: resp.StatusCode}
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func messagePath(account, sid string) string {
	return "/v1/accounts/" + url.PathEscape(account) + "/messages/" + url.PathEscape(sid)
}

func listPath(account string) string { return "/v1/accounts/" + url.PathEscape(account) + "/messages" }

// apiTime formats a list bound: RFC 3339 in UTC with milliseconds.
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// errorKind names an operation's failure for the report's errors: the HTTP
// status class ("404" for a get of a missing message, "429" for the API's
// rate limit), "timeout", or "network".
func errorKind(err error) string {
	var he *httpError
	var ne net.Error
	switch {
	case errors.As(err, &he):
		switch {
		case he.Status == http.StatusNotFound:
			return "404"
		case he.Status == http.StatusTooManyRequests: // the API's rate limit
			return "429"
		case he.Status >= 500:
			return "5xx"
		case he.Status >= 400:
			return "4xx"
		}
		return fmt.Sprint(he.Status)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "network"
}

// apiTarget follows probes through the API.
type apiTarget struct{ c *apiClient }

func (a apiTarget) get(ctx context.Context, account, sid string) (postflight.Message, bool, error) {
	var m postflight.Message
	err := a.c.get(ctx, messagePath(account, sid), nil, &m)
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return m, false, nil
	}
	return m, err == nil, err
}

func (a apiTarget) listed(ctx context.Context, account, sid string, created time.Time) (bool, error) {
	q := url.Values{
		"start":     {apiTime(created)},
		"end":       {apiTime(created.Add(time.Millisecond))},
		"page_size": {"1000"},
	}
	for range 10 {
		var page struct {
			Messages []struct {
				SID string `json:"sid"`
			} `json:"messages"`
			NextPageToken string `json:"next_page_token"`
		}
		if err := a.c.get(ctx, listPath(account), q, &page); err != nil {
			return false, err
		}
		for _, m := range page.Messages {
			if m.SID == sid {
				return true, nil
			}
		}
		if page.NextPageToken == "" {
			return false, nil
		}
		q.Set("page_token", page.NextPageToken)
	}
	return false, nil
}
