package postflight

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFinalStatuses(t *testing.T) {
	final := map[Status]bool{StatusDelivered: true, StatusUndelivered: true, StatusFailed: true,
		StatusReceived: true, StatusRead: true, StatusCanceled: true}
	for s := StatusAccepted; s < numStatuses; s++ {
		if s.IsFinal() != final[s] {
			t.Errorf("%v.IsFinal() = %v", s, s.IsFinal())
		}
		if got, ok := ParseStatus(s.String()); !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s.String(), got, ok)
		}
	}
	if _, ok := ParseStatus("DELIVERED"); ok {
		t.Error("uppercase status accepted")
	}
}

func TestSIDs(t *testing.T) {
	hex := strings.Repeat("0a", 16)
	for _, tc := range []struct {
		sid          string
		account, msg bool
	}{
		{"AC" + hex, true, false},
		{"SM" + hex, false, true},
		{"MM" + hex, false, true},
		{"SM" + strings.ToUpper(hex), false, false},
		{"SM" + hex[:31], false, false},
		{"XX" + hex, false, false},
		{"", false, false},
	} {
		if ValidAccountSID(tc.sid) != tc.account || ValidMessageSID(tc.sid) != tc.msg {
			t.Errorf("%q: account %v message %v", tc.sid, ValidAccountSID(tc.sid), ValidMessageSID(tc.sid))
		}
	}
}

func validEvent() Event {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return Event{EventID: "4f1c2f1e-8a3b-4c7e-9d2a-0b1c2d3e4f50", AccountSID: "AC" + strings.Repeat("a", 32),
		MessageSID: "SM" + strings.Repeat("b", 32), Sequence: 1, Status: StatusDelivered, From: "+1", To: "+2",
		NumSegments: 1, DateCreated: now, EventTime: now}
}

func TestValidate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bad := "usd"
	for _, tc := range []struct {
		field string
		edit  func(*Event)
	}{
		{"", func(*Event) {}},
		{"event_id", func(e *Event) { e.EventID = "x" }},
		{"account_sid", func(e *Event) { e.AccountSID = "AC1" }},
		{"sequence", func(e *Event) { e.Sequence = -1 }},
		{"to", func(e *Event) { e.To = "" }},
		{"num_media", func(e *Event) { e.NumMedia = -1 }},
		{"price_unit", func(e *Event) { e.PriceUnit = &bad }},
		{"date_created", func(e *Event) { e.DateCreated = now.Add(time.Hour) }},
		{"date_created", func(e *Event) { e.DateCreated = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"tags", func(e *Event) {
			e.Tags = map[string]string{}
			for i := range 11 {
				e.Tags[strings.Repeat("k", i+1)] = "v"
			}
		}},
	} {
		e := validEvent()
		tc.edit(&e)
		err := e.Validate(now, 15*time.Minute)
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("valid event rejected: %v", err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("want a %s error, got %v", tc.field, err)
		}
	}
}

func TestMessageJSON(t *testing.T) {
	e := validEvent()
	m := e.Message()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"status":"delivered"`, `"channel":"sms"`, `"direction":"inbound"`, `"sequence":1`, `"date_updated":"2026-01-01T00:00:00Z"`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	for _, absent := range []string{"body", "price_micros", "tags", "date_sent", "Revision"} {
		if strings.Contains(s, `"`+absent+`"`) {
			t.Errorf("%s has absent optional field %s", s, absent)
		}
	}
}
