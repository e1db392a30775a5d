package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
)

// TestClientFaultCostsOneDeadLetter (issue 11, item 6): DynamoDB answering
// 400 ValidationException for any request holding one chosen message costs
// that message a dead letter carrying DynamoDB's message; every other
// message is stored, the breaker never opens, and the group commits all.
func TestClientFaultCostsOneDeadLetter(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	px := startProxy(t, r.ddb)
	msgs, evs := genStream(streamOpts{messages: 300, seed: 21})
	var bad *msgSpec
	for _, m := range msgs {
		if m.want != nil {
			bad = m
			break
		}
	}
	px.Inject(faultproxy.Fault{Kind: faultproxy.Validation, Ops: []string{"BatchExecuteStatement"}, Match: []byte(bad.sid)})
	r.startConsumer("c1", consumerOpts{endpoint: px.URL()})
	r.produce(records(t, evs), nil)
	r.waitCommitted(2 * time.Minute)

	var good []*msgSpec
	for _, m := range msgs {
		if m != bad {
			good = append(good, m)
		}
	}
	r.verify(good)
	dl := r.deadLetters()
	if len(dl) == 0 {
		t.Fatal("nothing was dead-lettered")
	}
	for _, d := range dl {
		if string(d.key) != bad.sid || !strings.Contains(d.reason, "maximum allowed size") {
			t.Errorf("dead letter %s (key %s): %q, want only %s's with DynamoDB's message", d.source, d.key, d.reason, bad.sid)
		}
	}
	if st := r.logs.breakerStates("c1"); len(st) > 0 {
		t.Errorf("the breaker changed state (%v) over a client fault", st)
	}
	t.Logf("%d dead letters, e.g. %q; proxy %+v", len(dl), dl[0].reason, px.Counts())
}

// TestAccessDeniedPausesLoudly (issue 11, item 6): while DynamoDB denies
// access, ingest dead-letters nothing, fails readiness naming the cause and
// logs an error, and the breaker does not count it; once access is back,
// everything is stored and readiness recovers.
func TestAccessDeniedPausesLoudly(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	px := startProxy(t, r.ddb)
	msgs, evs := genStream(streamOpts{messages: 200, seed: 22})
	px.Inject(faultproxy.Fault{Kind: faultproxy.AccessDenied, Ops: []string{"BatchExecuteStatement"}})
	c := r.startConsumer("c1", consumerOpts{endpoint: px.URL()})
	r.produce(records(t, evs), nil)
	testenv.Eventually(t, time.Minute, "readiness to fail naming access", func() string {
		if err := c.svc.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			return fmt.Sprintf("Ready() = %v; %d requests denied", err, px.Faulted(faultproxy.AccessDenied))
		}
		return ""
	})
	if len(r.logs.find("ingest paused", "c1")) == 0 {
		t.Error("no 'ingest paused' log record")
	}
	px.Heal()
	r.waitCommitted(2 * time.Minute)
	r.verify(msgs)
	r.expectNoDeadLetters()
	if err := c.svc.Ready(t.Context()); err != nil {
		t.Errorf("Ready() after access came back: %v", err)
	}
	if st := r.logs.breakerStates("c1"); len(st) > 0 {
		t.Errorf("the breaker changed state (%v) over access denied", st)
	}
}
