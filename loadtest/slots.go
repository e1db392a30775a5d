package loadtest

import (
	"math"
	"sync/atomic"
	"time"
)

// slotPlan lays messages' lifecycles over the write schedule in kafka mode.
// Each pacer operation is a slot; message m starts in slot m and sends its
// e-th emission in slot m + e·gap, so a message's events arrive spread over
// time, interleaved with other messages', as a real lifecycle's do. Only
// the first `messages` slots start a message: the rest send the later
// events of messages already started, so every emission falls inside the
// schedule and the event rate stays level to the end.
type slotPlan struct {
	gap      int64 // slots between a message's consecutive emissions, ≥ 1
	span     int   // most emissions of one message
	slots    int64 // slots in the schedule
	messages int64 // messages started
}

// newSlotPlan plans slots slots for messages of up to span emissions, gap
// slots apart. The gap shrinks, if it must, so that at least half of the
// slots start a message.
func newSlotPlan(slots int64, span int, gap int64) slotPlan {
	span = max(span, 1)
	gap = max(gap, 1)
	if tail := int64(span-1) * gap; span > 1 && tail > slots/2 {
		gap = max(1, slots/(2*int64(span-1)))
	}
	return slotPlan{gap: gap, span: span, slots: slots, messages: max(0, slots-int64(span-1)*gap)}
}

// gapSlots converts the time between a message's events into slots at the
// steady-state rate.
func gapSlots(gap time.Duration, rate float64) int64 {
	return max(1, int64(math.Round(gap.Seconds()*rate)))
}

// each calls f for every emission slot s carries: message m, emission e.
func (sp slotPlan) each(slot int64, f func(m int64, e int)) {
	for e := range sp.span {
		m := slot - int64(e)*sp.gap
		if m < 0 {
			return
		}
		if m < sp.messages {
			f(m, e)
		}
	}
}

// slotOf returns the slot of message m's emission e.
func (sp slotPlan) slotOf(m int64, e int) int64 { return m + int64(e)*sp.gap }

// planCache keeps the plans of recently started messages so that the slots
// sending their later emissions need not regenerate them. A plan is a pure
// function of its index, so a miss (or a race) only costs a regeneration.
// It is safe for concurrent use.
type planCache struct {
	plan func(m int64) *MessagePlan
	ring []atomic.Pointer[MessagePlan]
}

func newPlanCache(size int, plan func(m int64) *MessagePlan) *planCache {
	return &planCache{plan: plan, ring: make([]atomic.Pointer[MessagePlan], max(size, 1))}
}

func (c *planCache) get(m int64) *MessagePlan {
	slot := &c.ring[m%int64(len(c.ring))]
	if p := slot.Load(); p != nil && p.Index == m {
		return p
	}
	p := c.plan(m)
	slot.Store(p)
	return p
}
