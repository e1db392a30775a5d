package store_test

import (
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// TestAttemptDeadline (issue 11, item 3): through a proxy whose connections
// accept a request and never answer, the hand-sent batch, the conditional
// write's resolve (GetItem) and a read each give up after the attempt
// timeout with a transient outcome instead of holding the caller until TCP
// gives up; once the proxy answers again the same calls succeed.
func TestAttemptDeadline(t *testing.T) {
	t.Parallel()
	ep := testenv.DynamoDBEndpoint(t)
	px := startProxy(t, ep)
	table := testenv.TableName(t)
	direct := openStore(t, testenv.DynamoDBClient(t, ep), store.Config{Table: table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	const attempt = 300 * time.Millisecond
	s, err := store.New(testenv.DynamoDBClient(t, px.URL()), store.Config{Table: table, AttemptTimeout: attempt}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	// bounded runs f and fails the test if it has not returned within a
	// generous multiple of the attempt timeout (the proxy never answers,
	// so without a deadline it would not return at all).
	bounded := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: still waiting 30s after the proxy stopped answering (attempt timeout %v)", what, attempt)
		}
	}

	account := sid("AC")
	m := msg(account, 2, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	px.Inject(faultproxy.Fault{Kind: faultproxy.Hang, Ops: []string{"BatchExecuteStatement"}})
	res := make([]postflight.WriteResult, 1)
	bounded("WriteBatch", func() { s.WriteBatch(t.Context(), []*postflight.Message{m}, res) })
	if o := res[0].Outcome; o != postflight.Unavailable {
		t.Errorf("batch against a silent endpoint: %v (%v), want unavailable (retried)", o, res[0].Err)
	}
	if !store.IsTransient(res[0].Err) {
		t.Errorf("IsTransient(%v) = false for an attempt timeout", res[0].Err)
	}

	// The resolve path: a higher sequence stored directly makes the
	// INSERT and then the UPDATE's condition fail, and resolve reads it.
	wantOutcomes(t, write(t, direct, withSeq(m, 5, postflight.StatusRead)), postflight.Applied)
	px.Inject(faultproxy.Fault{Kind: faultproxy.Hang, Ops: []string{"GetItem"}})
	bounded("WriteBatch (resolve)", func() { s.WriteBatch(t.Context(), []*postflight.Message{m}, res) })
	if o := res[0].Outcome; o != postflight.Unavailable {
		t.Errorf("resolve against a silent GetItem: %v (%v), want unavailable", o, res[0].Err)
	}
	bounded("Get", func() {
		if _, err := s.Get(t.Context(), account, m.SID); err == nil {
			t.Error("Get through a silent endpoint succeeded")
		}
	})

	px.Heal()
	bounded("WriteBatch after healing", func() { s.WriteBatch(t.Context(), []*postflight.Message{m}, res) })
	if o := res[0].Outcome; o != postflight.Superseded {
		t.Errorf("after healing: %v (%v), want superseded", o, res[0].Err)
	}
	t.Logf("proxy: %+v", px.Counts())
}
