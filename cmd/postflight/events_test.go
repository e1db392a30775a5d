package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight/api/openapitest"
)

// TestPostEvents publishes through POST /v1/events on the real serve wiring
// (Kafka, ingest, DynamoDB Local) and reads the messages back through GET:
// what the API accepted is exactly what ingest stored.
func TestPostEvents(t *testing.T) {
	account, other := randomSID("AC"), randomSID("AC")
	s := startStack(t, account, func(f *serveFlags) { f.authFile = writeAPIAuthFile(t, account, other) })
	c := &apiClient{t: t, base: s.api, v: openapitest.New(t)}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(sid string, seq int, status string, extra string) string {
		return fmt.Sprintf(`{"event_id":%q,"account_sid":%q,"message_sid":%q,"sequence":%d,"status":%q,"channel":"whatsapp",`+
			`"direction":"outbound_api","from":"+15550000001","to":"+15550000002","body":"hello %d","num_segments":1,`+
			`"date_created":%q,"event_time":%q,"price_micros":null%s}`,
			randomUUID(), account, sid, seq, status, seq, now.Add(-time.Minute).Format(time.RFC3339Nano),
			now.Add(time.Duration(seq)*time.Millisecond).Format(time.RFC3339Nano), extra)
	}
	a, b := randomSID("SM"), randomSID("SM")

	var acks struct {
		Events []struct {
			MessageSID string `json:"message_sid"`
			Partition  int32  `json:"partition"`
			Offset     int64  `json:"offset"`
		} `json:"events"`
	}
	c.do("POST", "/v1/events", writerTok, ev(a, 2, "delivered", `,"tags":{"k":"v"}`)).want(t, "one event", 202).decode(t, &acks)
	if len(acks.Events) != 1 || acks.Events[0].MessageSID != a {
		t.Fatalf("acks %+v", acks)
	}
	batch := strings.Join([]string{ev(b, 1, "sent", ""), ev(b, 4, "read", ""), ev(a, 1, "queued", "")}, "\n")
	c.do("POST", "/v1/events", writerTok, batch, "Content-Type", "application/x-ndjson").want(t, "ndjson", 202).decode(t, &acks)
	if len(acks.Events) != 3 || acks.Events[0].Partition != acks.Events[1].Partition || acks.Events[1].Offset != acks.Events[0].Offset+1 {
		t.Fatalf("acks %+v: one message's events land in order on one partition", acks)
	}

	// Rejected whole: nothing of it may reach the store.
	c2 := randomSID("SM")
	bad := ev(c2, 5, "delivered", "") + "\n" + strings.Replace(ev(c2, 6, "read", ""), `"channel":"whatsapp"`, `"channel":"fax"`, 1)
	p := c.do("POST", "/v1/events", writerTok, bad, "Content-Type", "application/x-ndjson").want(t, "invalid batch", 400).problem(t)
	if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "events[1].channel" {
		t.Fatalf("invalid_params %+v", p.InvalidParams)
	}
	c.do("POST", "/v1/events", otherTok, ev(a, 9, "read", ""), "Content-Type", "application/json").want(t, "other account's token", 403)

	type msg struct {
		Status   string            `json:"status"`
		Sequence int64             `json:"sequence"`
		Body     string            `json:"body"`
		Channel  string            `json:"channel"`
		Tags     map[string]string `json:"tags"`
	}
	for sid, want := range map[string]msg{
		a: {Status: "delivered", Sequence: 2, Body: "hello 2", Channel: "whatsapp", Tags: map[string]string{"k": "v"}},
		b: {Status: "read", Sequence: 4, Body: "hello 4", Channel: "whatsapp"},
	} {
		var got msg
		eventually(t, 30*time.Second, "message "+sid, func() bool {
			r := c.do("GET", "/v1/accounts/"+account+"/messages/"+sid, readerTok, "")
			if r.status != 200 {
				return false
			}
			r.decode(t, &got)
			return got.Sequence == want.Sequence
		})
		if gb, _ := json.Marshal(got); string(gb) != func() string { wb, _ := json.Marshal(want); return string(wb) }() {
			t.Errorf("%s: stored %s, want %+v", sid, gb, want)
		}
	}
	c.do("GET", "/v1/accounts/"+account+"/messages/"+c2, readerTok, "").want(t, "the rejected batch's message", 404)
}
