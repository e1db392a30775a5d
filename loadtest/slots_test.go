package loadtest

import (
	"testing"
	"time"
)

func TestSlotPlan(t *testing.T) {
	tests := []struct {
		name                  string
		slots                 int64
		span                  int
		gap                   int64
		wantGap, wantMessages int64
	}{
		{"room for the gap", 1000, 6, 10, 10, 950},
		{"gap shrinks in a short schedule", 20, 6, 10, 2, 10},
		{"one emission", 50, 1, 7, 7, 50},
		{"tiny", 3, 6, 5, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := newSlotPlan(tt.slots, tt.span, tt.gap)
			if sp.gap != tt.wantGap || sp.messages != tt.wantMessages {
				t.Fatalf("gap %d messages %d, want %d and %d", sp.gap, sp.messages, tt.wantGap, tt.wantMessages)
			}
			// each yields exactly the emissions the plan places in a slot,
			// and every emission of every message is inside the schedule.
			got := map[[2]int64]int64{}
			for s := range sp.slots {
				sp.each(s, func(m int64, e int) {
					key := [2]int64{m, int64(e)}
					if _, dup := got[key]; dup {
						t.Fatalf("emission %v in two slots", key)
					}
					got[key] = s
				})
			}
			if want := sp.messages * int64(sp.span); int64(len(got)) != want {
				t.Fatalf("%d emissions placed, want %d", len(got), want)
			}
			for key, s := range got {
				if s != sp.slotOf(key[0], int(key[1])) {
					t.Fatalf("emission %v in slot %d, slotOf says %d", key, s, sp.slotOf(key[0], int(key[1])))
				}
			}
		})
	}
	if g := gapSlots(100*time.Millisecond, 25_000); g != 2500 {
		t.Errorf("gapSlots = %d, want 2500", g)
	}
	if g := gapSlots(0, 25_000); g != 1 {
		t.Errorf("gapSlots of no gap = %d, want 1", g)
	}
}

func TestPlanCache(t *testing.T) {
	calls := 0
	c := newPlanCache(8, func(m int64) *MessagePlan { calls++; return &MessagePlan{Index: m} })
	for range 3 {
		for m := range int64(8) {
			if p := c.get(m); p.Index != m {
				t.Fatalf("get(%d) = plan %d", m, p.Index)
			}
		}
	}
	if calls != 8 {
		t.Errorf("%d plans generated for 8 messages read 3 times", calls)
	}
	if p := c.get(9); p.Index != 9 || calls != 9 {
		t.Errorf("evicting: plan %d after %d calls", p.Index, calls)
	}
}

// TestScheduleOffset: Offset(j) is the pacer cursor's j-th intended start.
func TestScheduleOffset(t *testing.T) {
	s := Schedule{{Duration: time.Second, Rate: 7}, {Duration: 500 * time.Millisecond, Rate: 0}, {Duration: 2 * time.Second, Rate: 100}}
	c := cursor{s: s}
	var j int64
	for {
		want, ok := c.next()
		if !ok {
			break
		}
		if got, ok := s.Offset(j); !ok || got != want {
			t.Fatalf("Offset(%d) = %v %v, want %v", j, got, ok, want)
		}
		j++
	}
	if j != s.Ops() {
		t.Fatalf("%d offsets, want %d", j, s.Ops())
	}
	if _, ok := s.Offset(j); ok {
		t.Error("Offset past the end is ok")
	}
	if _, ok := s.Offset(-1); ok {
		t.Error("Offset(-1) is ok")
	}
}
