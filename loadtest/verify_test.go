package loadtest

import (
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
)

func TestJudge(t *testing.T) {
	g := testGenerator(t, nil)
	var final, never *MessagePlan
	for m := int64(0); final == nil || never == nil; m++ {
		p := g.Message(m, genCreated)
		if p.Final != nil && final == nil && len(p.Final.Tags) == 0 {
			final = p
		}
		if p.Final == nil && never == nil {
			never = p
		}
	}
	stored := func(edit func(*postflight.Message)) *postflight.Message {
		m := *final.Final
		m.Revision = 3 // not compared
		if edit != nil {
			edit(&m)
		}
		return &m
	}
	other := "someone else's words"
	tests := []struct {
		name string
		plan *MessagePlan
		got  *postflight.Message
		want verdict
		why  string
	}{
		{"as expected", final, stored(nil), verdictOK, ""},
		{"missing", final, nil, verdictMissing, "missing"},
		{"behind", final, stored(func(m *postflight.Message) { m.Sequence--; m.Status = postflight.StatusSent }), verdictBehind, "sequence"},
		{"other body", final, stored(func(m *postflight.Message) { m.Body = &other }), verdictWrong, "body"},
		{"no body", final, stored(func(m *postflight.Message) { m.Body = nil }), verdictWrong, "body"},
		{"other status", final, stored(func(m *postflight.Message) { m.Status = postflight.StatusFailed }), verdictWrong, "status"},
		{"ahead", final, stored(func(m *postflight.Message) { m.Sequence++ }), verdictWrong, "sequence"},
		{"tags", final, stored(func(m *postflight.Message) { m.Tags = map[string]string{"a": "b"} }), verdictWrong, "tags"},
		{"date sent", final, stored(func(m *postflight.Message) { d := genCreated.Add(time.Hour); m.DateSent = &d }), verdictWrong, "date_sent"},
		{"never final, absent", never, nil, verdictOK, ""},
		{"never final, stored", never, stored(nil), verdictWrong, "no event of it was final"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(tt.plan, tt.got)
			if got.verdict != tt.want || !strings.Contains(got.why, tt.why) {
				t.Errorf("judge = %d %q, want %d %q", got.verdict, got.why, tt.want, tt.why)
			}
		})
	}
}
