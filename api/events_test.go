package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/api/openapitest"
)

// fakePublisher stands in for Kafka (the HTTP contract is under test here;
// cmd/postflight's TestPostEvents publishes to a real broker and reads the
// records back through ingest and the API). Validation is the real one.
type fakePublisher struct {
	mu   sync.Mutex
	got  [][]postflight.Event
	fail error
}

var _ api.Publisher = (*fakePublisher)(nil)

func (f *fakePublisher) Validate(evs []postflight.Event) error {
	return postflight.ValidateEvents(evs, now, 15*time.Minute)
}

func (f *fakePublisher) Publish(ctx context.Context, evs []postflight.Event) ([]postflight.PublishAck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.got = append(f.got, evs)
	acks := make([]postflight.PublishAck, len(evs))
	for i, ev := range evs {
		acks[i] = postflight.PublishAck{MessageSID: ev.MessageSID, Partition: 3, Offset: int64(100 + i)}
	}
	return acks, nil
}

const other = "AC0123456789abcdef0123456789abcd99"

func eventJSON(seq int, mods ...string) string {
	fields := map[string]any{
		"event_id": fmt.Sprintf("123e4567-e89b-42d3-a456-4266141740%02d", seq), "account_sid": acc, "message_sid": sid,
		"sequence": seq, "status": "delivered", "channel": "sms", "direction": "outbound_api",
		"from": "+15550000001", "to": "+15550000002", "body": "hi", "price_micros": nil,
		"date_created": now.Add(-time.Hour).Format(time.RFC3339), "event_time": now.Add(-time.Minute).Format(time.RFC3339Nano),
		"tags": map[string]string{"campaign": "spring"},
	}
	for i := 0; i+1 < len(mods); i += 2 {
		if mods[i+1] == "<omit>" {
			delete(fields, mods[i])
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(mods[i+1]), &v); err != nil {
			v = mods[i+1]
		}
		fields[mods[i]] = v
	}
	b, _ := json.Marshal(fields)
	return string(b)
}

func TestPostEvents(t *testing.T) {
	v := openapitest.New(t)
	tokens, err := api.ParseTokens(fmt.Appendf(nil, `{"tokens":[
	 {"name":"writer","sha256":%q,"accounts":[%q],"scopes":["write"]},
	 {"name":"reader","sha256":%q,"accounts":["*"],"scopes":["read"]}]}`,
		api.HashToken("w"), acc, api.HashToken("r")))
	if err != nil {
		t.Fatal(err)
	}
	auth := api.NewStaticAuthenticator(tokens)
	mk := func(pub api.Publisher) (http.Handler, *fakePublisher) {
		fp, _ := pub.(*fakePublisher)
		cfg := api.Config{Now: func() time.Time { return now }}
		if pub != nil {
			cfg.Events = pub
		}
		s, err := api.New(cfg, &fakeStore{}, auth, nil, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s.Handler(), fp
	}
	send := func(h http.Handler, tok, ct, body string) (*http.Response, []byte) {
		req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return v.Serve(t, h, req)
	}
	problem := func(b []byte) api.Problem {
		var p api.Problem
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("not a problem: %s", b)
		}
		return p
	}

	t.Run("one", func(t *testing.T) {
		h, fp := mk(&fakePublisher{})
		resp, b := send(h, "w", "application/json", eventJSON(3))
		if resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if want := fmt.Sprintf(`{"events":[{"message_sid":%q,"partition":3,"offset":100}]}`, sid); strings.TrimSpace(string(b)) != want {
			t.Errorf("body %s, want %s", b, want)
		}
		ev := fp.got[0][0]
		if ev.Sequence != 3 || ev.Status != postflight.StatusDelivered || ev.NumSegments != 1 || ev.Tags["campaign"] != "spring" ||
			ev.PriceMicros != nil || !ev.EventTime.Equal(now.Add(-time.Minute)) {
			t.Errorf("published %+v", ev)
		}
	})
	t.Run("ndjson", func(t *testing.T) {
		h, fp := mk(&fakePublisher{})
		body := eventJSON(1, "status", "sent") + "\n\n" + eventJSON(2) + "\r\n"
		resp, b := send(h, "w", "application/x-ndjson", body)
		if resp.StatusCode != 202 || len(fp.got) != 1 || len(fp.got[0]) != 2 || fp.got[0][0].Status != postflight.StatusSent {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("invalid batch names every event and field", func(t *testing.T) {
		h, fp := mk(&fakePublisher{})
		body := strings.Join([]string{
			eventJSON(1),
			eventJSON(2, "account_sid", "AC1", "Status", "read"),
			eventJSON(3, "status", "DELIVERED", "sequence", "<omit>"),
			eventJSON(4),
			eventJSON(5, "num_media", "-1", "date_created", "yesterday"),
			`[1]`,
		}, "\n")
		resp, b := send(h, "w", "application/x-ndjson", body)
		if resp.StatusCode != 400 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		var names []string
		for _, p := range problem(b).InvalidParams {
			names = append(names, p.Name)
		}
		want := []string{"events[1].Status", "events[1].account_sid", "events[2].sequence", "events[2].status", "events[4].date_created", "events[4].num_media", "events[5]"}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Errorf("invalid_params %v, want %v", names, want)
		}
		if len(fp.got) != 0 {
			t.Error("an invalid batch must publish nothing")
		}
	})
	// A tag whose value is not a string is refused, null included (found by
	// schemathesis: json.Unmarshal leaves a null map value as "" without an
	// error, and the event was published with an empty tag).
	t.Run("tags are strings", func(t *testing.T) {
		for _, tags := range []string{`{"campaign":null}`, `{"campaign":1}`, `[]`, `"x"`} {
			h, fp := mk(&fakePublisher{})
			resp, b := send(h, "w", "application/json", eventJSON(1, "tags", tags))
			if p := problem(b); resp.StatusCode != 400 || len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "events[0].tags" || len(fp.got) != 0 {
				t.Errorf("tags %s: %d %s", tags, resp.StatusCode, b)
			}
		}
	})
	t.Run("ingest's validation", func(t *testing.T) {
		h, _ := mk(&fakePublisher{})
		resp, b := send(h, "w", "application/json", eventJSON(1, "event_time", now.Add(time.Hour).Format(time.RFC3339)))
		if p := problem(b); resp.StatusCode != 400 || len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "events[0].event_time" {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("errors", func(t *testing.T) {
		h, _ := mk(&fakePublisher{})
		down, _ := mk(&fakePublisher{fail: errors.New("kafka: not enough replicas")})
		none, _ := mk(nil)
		many := strings.Repeat(eventJSON(1)+"\n", api.MaxEventsPerBatch+1)
		for _, c := range []struct {
			name     string
			h        http.Handler
			tok, ct  string
			body     string
			want     int
			wantText string
		}{
			{"no token", h, "", "application/json", eventJSON(1), 401, ""},
			{"read scope", h, "r", "application/json", eventJSON(1), 403, "scope"},
			{"other account", h, "w", "application/x-ndjson", eventJSON(1) + "\n" + eventJSON(2, "account_sid", other), 403, "events[1]"},
			{"content type", h, "w", "text/plain", eventJSON(1), 415, ""},
			{"too large", h, "w", "application/x-ndjson", strings.Repeat(" ", api.MaxEventsBodyBytes+1), 413, ""},
			{"too many", h, "w", "application/x-ndjson", many, 400, "at most"},
			{"empty", h, "w", "application/x-ndjson", "\n\n", 400, "no events"},
			{"two objects as json", h, "w", "application/json", eventJSON(1) + eventJSON(2), 400, ""},
			{"kafka down", down, "w", "application/json", eventJSON(1), 503, "again is safe"},
			{"no producer", none, "w", "application/json", eventJSON(1), 503, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				resp, b := send(c.h, c.tok, c.ct, c.body)
				if resp.StatusCode != c.want || !strings.Contains(problem(b).Detail, c.wantText) {
					t.Fatalf("%d %s, want %d with %q", resp.StatusCode, b, c.want, c.wantText)
				}
			})
		}
	})
}
