package ingest_test

import (
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// TestRecentlyStoredMessagesSkipFailingWrites, on DynamoDB Local: after a
// wave of delivered events is stored, a second wave brings each message's
// read event and a redelivered copy of its delivered one. With the memory
// of recently stored messages, every read goes to the store marked stored
// (straight to the UPDATE, no failing INSERT) and no redelivered copy
// reaches the store at all; without it (RecentPerPartition −1, the code
// before the memory), every read would be INSERTed first. Either way the
// store ends with every message read.
func TestRecentlyStoredMessagesSkipFailingWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		recent int
	}{{"memory", 0}, {"no memory", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "")
			created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
			var msgs []*msgSpec
			var wave1, wave2 []*postflight.Event
			for range 200 {
				m := &msgSpec{account: randomSID("AC"), sid: randomSID("SM")}
				delivered := newEvent(m.account, m.sid, 3, postflight.StatusDelivered, created)
				read := newEvent(m.account, m.sid, 4, postflight.StatusRead, created)
				m.events, m.want = []*postflight.Event{delivered, read}, read
				msgs = append(msgs, m)
				wave1 = append(wave1, delivered)
				wave2 = append(wave2, read, delivered)
			}
			c := r.startConsumer("c1", consumerOpts{cfg: ingest.Config{RecentPerPartition: tc.recent}})
			r.produce(records(t, wave1), nil)
			r.waitCommitted(time.Minute)
			r.produce(records(t, wave2), nil)
			r.waitCommitted(time.Minute)
			r.verify(msgs)

			var reads, readsStored, redelivered int
			for _, s := range c.w.sentMsgs() {
				switch s.seq {
				case 4:
					reads++
					if s.stored {
						readsStored++
					}
				case 3:
					redelivered++
				}
			}
			redelivered -= len(msgs) // the first wave's
			t.Logf("%s: reads sent %d (%d marked stored), redelivered copies sent %d", tc.name, reads, readsStored, redelivered)
			if reads != len(msgs) {
				t.Fatalf("%d reads sent, want %d", reads, len(msgs))
			}
			if tc.recent >= 0 && (readsStored != reads || redelivered != 0) {
				t.Errorf("with the memory: %d of %d reads marked stored, %d redelivered copies sent; want all and none", readsStored, reads, redelivered)
			}
			if tc.recent < 0 && readsStored != 0 {
				t.Errorf("without the memory %d reads were marked stored", readsStored)
			}
		})
	}
}
