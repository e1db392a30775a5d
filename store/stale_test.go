package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// TestStaleConfigStopsWrites (issue 11, item 5): the shard decrease lead
// time and the Expired check assume every process reloaded its account
// configuration within 2 × ConfigRefresh. When reloads keep failing past
// that bound, the store refuses to write (Misconfigured, wrapping
// postflight.ErrStaleConfig) rather than write with configuration that may
// be wrong; once a reload succeeds it writes again.
func TestStaleConfigStopsWrites(t *testing.T) {
	t.Parallel()
	ep := testenv.DynamoDBEndpoint(t)
	px := startProxy(t, ep)
	// Long enough that a reload through the proxy on a busy machine
	// finishes well within it.
	const refresh = 3 * time.Second
	s := openStore(t, testenv.DynamoDBClient(t, px.URL()), store.Config{ConfigRefresh: refresh, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err := s.RefreshAccounts(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	account := sid("AC")
	m := msg(account, 3, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, m), postflight.Applied)

	// Every reload fails from now on (the reload is the only Query).
	px.Inject(faultproxy.Fault{Kind: faultproxy.InternalError, Ops: []string{"Query"}})
	failedFrom := time.Now()
	var res []postflight.WriteResult
	testenv.Eventually(t, time.Minute, "writes to stop on stale configuration", func() string {
		m = withSeq(m, m.Sequence+1, postflight.StatusRead)
		res = write(t, s, m)
		if res[0].Outcome != postflight.Misconfigured || !errors.Is(res[0].Err, postflight.ErrStaleConfig) {
			return fmt.Sprintf("write %v (%v) %v after reloads started failing", res[0].Outcome, res[0].Err, time.Since(failedFrom))
		}
		return ""
	})
	// The last good reload was at most one refresh before the faults.
	if since := time.Since(failedFrom); since < refresh {
		t.Errorf("writes stopped %v after reloads started failing: before the %v bound", since, 2*refresh)
	}
	t.Logf("stopped: %v", res[0].Err)

	px.Heal()
	testenv.Eventually(t, time.Minute, "writes to resume after a reload", func() string {
		m = withSeq(m, m.Sequence+1, postflight.StatusRead)
		if res = write(t, s, m); res[0].Outcome != postflight.Applied {
			return fmt.Sprintf("write %v (%v)", res[0].Outcome, res[0].Err)
		}
		return ""
	})
}
