package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// proxiedStore returns a store on a fresh table, written through a fault
// proxy in front of the shared DynamoDB Local, and the proxy.
func proxiedStore(t *testing.T) (*store.Store, *faultproxy.Proxy) {
	t.Helper()
	ep := testenv.DynamoDBEndpoint(t)
	px := startProxy(t, ep)
	s := openStore(t, testenv.DynamoDBClient(t, px.URL()), store.Config{AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	return s, px
}

// TestClientFaultIsolated (issue 11, item 6): DynamoDB answering 400
// ValidationException for any request that holds one chosen item (as it does
// for an item over 400 KB after encoding) costs that item alone: the batch
// is split until the offending statement is alone, it is Rejected with
// DynamoDB's message, and every other message of the batch is written.
func TestClientFaultIsolated(t *testing.T) {
	t.Parallel()
	s, px := proxiedStore(t)
	account := sid("AC")
	msgs := make([]*postflight.Message, 25)
	for i := range msgs {
		msgs[i] = msg(account, 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	}
	bad := msgs[17]
	px.Inject(faultproxy.Fault{Kind: faultproxy.Validation, Ops: []string{"BatchExecuteStatement"}, Match: []byte(bad.SID)})
	res := write(t, s, msgs...)
	for i, r := range res {
		switch {
		case msgs[i] == bad:
			if r.Outcome != postflight.Rejected || r.Err == nil || !strings.Contains(r.Err.Error(), "maximum allowed size") {
				t.Errorf("the offending message: %v (%v), want rejected with DynamoDB's message", r.Outcome, r.Err)
			}
		case r.Outcome != postflight.Applied:
			t.Errorf("message %d: %v (%v), want applied: only the offending statement may fail", i, r.Outcome, r.Err)
		}
	}
	t.Logf("requests: %+v", px.Counts())
}

// TestStatementFaultsRetriedAlone (issue 11, item 6): per-statement
// throttling and InternalServerError inside a 200 answer fail only those
// statements (Throttled, Unavailable); the rest of the batch is written, and
// a retry of the failed ones alone succeeds.
func TestStatementFaultsRetriedAlone(t *testing.T) {
	t.Parallel()
	s, px := proxiedStore(t)
	account := sid("AC")
	msgs := make([]*postflight.Message, 10)
	for i := range msgs {
		msgs[i] = msg(account, 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	}
	for _, tc := range []struct {
		kind faultproxy.Kind
		want postflight.WriteOutcome
	}{{faultproxy.StatementThrottle, postflight.Throttled}, {faultproxy.StatementInternalError, postflight.Unavailable}} {
		for i := range msgs {
			msgs[i] = withSeq(msgs[i], msgs[i].Sequence+1, postflight.StatusRead)
		}
		target := msgs[4]
		px.Inject(faultproxy.Fault{Kind: tc.kind, Ops: []string{"BatchExecuteStatement"}, Match: []byte(target.SID), Count: 1})
		res := write(t, s, msgs...)
		for i, r := range res {
			want := postflight.Applied
			if msgs[i] == target {
				want = tc.want
			}
			if r.Outcome != want {
				t.Errorf("%v: message %d: %v (%v), want %v", tc.kind, i, r.Outcome, r.Err, want)
			}
		}
		wantOutcomes(t, write(t, s, target), postflight.Applied)
	}
}

// TestAccessDeniedIsMisconfigured (issue 11, item 6): access denied is this
// process's problem, not the item's: Misconfigured (ingest pauses and says
// so), neither a dead letter nor a breaker failure.
func TestAccessDeniedIsMisconfigured(t *testing.T) {
	t.Parallel()
	s, px := proxiedStore(t)
	m := msg(sid("AC"), 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	px.Inject(faultproxy.Fault{Kind: faultproxy.AccessDenied})
	wantOutcomes(t, write(t, s, m), postflight.Misconfigured)
	px.Heal()
	wantOutcomes(t, write(t, s, m), postflight.Applied)
}
