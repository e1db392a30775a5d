package store_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// rawItem reads a message item as stored (TTL and revision included).
func rawItem(t *testing.T, db *dynamodb.Client, table, account, sid string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &table,
		Key: map[string]types.AttributeValue{
			"p": &types.AttributeValueMemberS{Value: sid}, "s": &types.AttributeValueMemberS{Value: account},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func numAttr(t *testing.T, item map[string]types.AttributeValue, name string) int64 {
	t.Helper()
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("item has no number %q: %v", name, item)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// runStore runs s.Run until the test ends (or the returned stop is called)
// and checks that it returns.
func runStore(t *testing.T, s *store.Store) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	}
	t.Cleanup(stop)
	return stop
}

func allApplied(t *testing.T, res []postflight.WriteResult) {
	t.Helper()
	for i, r := range res {
		if r.Outcome != postflight.Applied {
			t.Fatalf("message %d: outcome %v (%v)", i, r.Outcome, r.Err)
		}
	}
}

func jobDone(t *testing.T, s *store.Store, acc string) bool {
	_, pending, err := s.RestampStatus(context.Background(), acc)
	if err != nil {
		t.Fatal(err)
	}
	return !pending
}

// After a retention change the job re-stamps x = date_created + days on every
// record of every shard of every epoch, leaves tombstones and other accounts
// alone, keeps revisions (ETags), and a second change supersedes the first.
func TestRetentionRestamp(t *testing.T) {
	s := newStore(t, store.Config{DefaultShards: 4, Restamp: store.RestampConfig{Delay: time.Millisecond, Page: 7}})
	ctx := context.Background()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	table := s.Config().Table
	acc, other := sid("AC"), sid("AC")
	// A later epoch with more shards: messages created from now on spread
	// over 8, older ones stay on 4.
	if _, err := s.SetShards(ctx, acc, time.Now(), 8); err != nil {
		t.Fatal(err)
	}
	var msgs []*postflight.Message
	for i := range 60 {
		created := time.Now().Add(-time.Duration(i) * 6 * time.Hour)
		if i%6 == 0 {
			created = time.Now().Add(time.Duration(i+1) * time.Second) // the 8-shard epoch
		}
		msgs = append(msgs, msg(acc, 1, postflight.StatusDelivered, created))
	}
	for i := 0; i < len(msgs); i += 25 {
		allApplied(t, write(t, s, msgs[i:min(i+25, len(msgs))]...))
	}
	otherMsg := msg(other, 1, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	allApplied(t, write(t, s, otherMsg))
	dead := msgs[5]
	if err := s.Delete(ctx, acc, dead.SID); err != nil {
		t.Fatal(err)
	}
	deadX := numAttr(t, rawItem(t, db, table, acc, dead.SID), "x")
	revs := map[string]int64{}
	for _, m := range msgs {
		revs[m.SID] = numAttr(t, rawItem(t, db, table, acc, m.SID), "v")
	}

	// Two changes before the job runs: the second supersedes the first.
	if _, err := s.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRetention(ctx, acc, 9); err != nil {
		t.Fatal(err)
	}
	st, pending, err := s.RestampStatus(ctx, acc)
	if err != nil || !pending || st.Days != 9 || st.Done != 0 {
		t.Fatalf("status %+v pending %v err %v; want a fresh 9-day job", st, pending, err)
	}
	runStore(t, s)
	waitFor(t, 30*time.Second, "the re-stamp job", func() bool { return jobDone(t, s, acc) })
	for _, m := range msgs {
		item := rawItem(t, db, table, acc, m.SID)
		if m == dead {
			if x := numAttr(t, item, "x"); x != deadX {
				t.Errorf("tombstone re-stamped: x %d, want %d", x, deadX)
			}
			continue
		}
		want := m.DateCreated.Add(9*24*time.Hour + store.TTLGrace).Unix()
		if item == nil && want < time.Now().Unix() {
			continue // expired under the new policy, and DynamoDB (Local) TTL already removed it
		}
		if x := numAttr(t, item, "x"); x != want {
			t.Errorf("message created %s: x %d, want %d", m.DateCreated, x, want)
		}
		if v := numAttr(t, item, "v"); v != revs[m.SID] {
			t.Errorf("revision changed from %d to %d", revs[m.SID], v)
		}
	}
	wantOther := otherMsg.DateCreated.Add(400*24*time.Hour + store.TTLGrace).Unix()
	if x := numAttr(t, rawItem(t, db, table, other, otherMsg.SID), "x"); x != wantOther {
		t.Errorf("another account's record re-stamped: x %d, want %d", x, wantOther)
	}
	// Records past the new policy are hidden at once.
	if _, err := s.Get(ctx, acc, msgs[59].SID); err == nil {
		t.Error("a record older than the policy is visible")
	}
}

// A job stopped half-way (graceful shutdown) resumes from its checkpoint in
// another process, which does not scan the re-stamped part again.
func TestRetentionRestampResumes(t *testing.T) {
	slow := store.RestampConfig{Delay: time.Millisecond, Page: 10, Rate: 20}
	a := newStore(t, store.Config{Restamp: slow})
	ctx := context.Background()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	table := a.Config().Table
	acc := sid("AC")
	const n = 100
	msgs := writeMinuteApart(t, a, acc, n)
	if _, err := a.SetRetention(ctx, acc, 20); err != nil {
		t.Fatal(err)
	}
	stopA := runStore(t, a)
	waitRestamped(t, a, acc, 20)
	stopA()
	st, pending, err := a.RestampStatus(ctx, acc)
	if err != nil || !pending || st.Done >= n {
		t.Fatalf("after stopping: %+v pending %v err %v; want a job half done", st, pending, err)
	}
	doneByA := st.Done

	reader := sdkmetric.NewManualReader()
	b, err := store.New(db, store.Config{Table: table, AttemptTimeout: testenv.AttemptTimeout, Restamp: store.RestampConfig{Delay: time.Millisecond, Page: 10, Rate: -1}},
		nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, b)
	waitFor(t, 30*time.Second, "the resumed job", func() bool { return jobDone(t, b, acc) })
	for _, m := range msgs {
		want := m.DateCreated.Add(20*24*time.Hour + store.TTLGrace).Unix()
		if x := numAttr(t, rawItem(t, db, table, acc, m.SID), "x"); x != want {
			t.Fatalf("x %d, want %d", x, want)
		}
	}
	scanned := counter(t, reader, "postflight.store.retention.scanned")
	restamped := counter(t, reader, "postflight.store.retention.restamped")
	if scanned != n-doneByA || restamped < 1 || restamped > scanned {
		t.Errorf("the second process scanned %d and re-stamped %d items; A had done %d of %d: want it to resume, not restart",
			scanned, restamped, doneByA, n)
	}
}

func counter(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// A reload whose query read the configuration from before a change made
// through this process (it ran concurrently) must not undo the change in
// the cache: the API promises that a shorter retention hides records at once.
func TestReloadDoesNotUndoANewerChange(t *testing.T) {
	var clock atomic.Int64 // unix ns; the test moves it, not the machine's speed
	clock.Store(time.Now().UnixNano())
	s := newStore(t, store.Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	acc := sid("AC")
	if _, err := s.SetRetention(ctx, acc, 5); err != nil {
		t.Fatal(err)
	}
	// Put back what a query that started before the change would have read.
	table := s.Config().Table
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]types.AttributeValue{
		"p": &types.AttributeValueMemberS{Value: "cfg"}, "s": &types.AttributeValueMemberS{Value: acc},
		"r": &types.AttributeValueMemberN{Value: "400"}, "v": &types.AttributeValueMemberN{Value: "0"},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Account(acc).RetentionDays; got != 5 {
		t.Fatalf("after a stale reload: %d days, want 5", got)
	}
	c, err := s.FreshAccount(ctx, acc)
	if err != nil || c.RetentionDays != 5 {
		t.Fatalf("FreshAccount: %+v %v", c, err)
	}
	// Once the cached value is older than ConfigMaxAge, FreshAccount reads
	// again, and the older stored version must not win over the newer one
	// cached (before: it returned what it read, but only on a machine slow
	// enough to take more than ConfigMaxAge between the change and the read).
	clock.Add(int64(2 * s.Config().ConfigMaxAge))
	c, err = s.FreshAccount(ctx, acc)
	if err != nil || c.RetentionDays != 5 {
		t.Fatalf("FreshAccount after ConfigMaxAge: %+v %v", c, err)
	}
}

// A graceful stop releases the job's lease even when the answer to the last
// checkpoint was lost (the write reached DynamoDB, the caller saw only its
// context end) and DynamoDB then fails the first release attempts: the next
// process must resume at once, not wait out the lease. Before the fix the
// release compared against the value before the lost checkpoint, failed
// silently, and the next owner waited a whole lease (issue 17).
func TestRetentionStopReleasesLeaseAfterLostCheckpoint(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	px := startProxy(t, ep)
	db := testenv.DynamoDBClient(t, ep)
	table := testenv.TableName(t)
	a := openStore(t, testenv.DynamoDBClient(t, px.URL()), store.Config{Table: table,
		// The production attempt deadline: the lost answer ends the checkpoint after it.
		AttemptTimeout: 5 * time.Second,
		Restamp:        store.RestampConfig{Delay: time.Millisecond, Page: 10, Rate: 20}}, nil, nil)
	ctx := context.Background()
	acc := sid("AC")
	const n = 100
	writeMinuteApart(t, a, acc, n)
	if _, err := a.SetRetention(ctx, acc, 20); err != nil {
		t.Fatal(err)
	}
	stopA := runStore(t, a)
	waitRestamped(t, a, acc, 20)
	// The next checkpoint lands, but its answer never comes back.
	px.Inject(faultproxy.Fault{Kind: faultproxy.LoseAnswer, Count: 1, Ops: []string{"UpdateItem"}})
	// The proxy counts the fault before it forwards the request: wait until
	// the write has landed too (read past the proxy), or stopping A could
	// cancel it on its way and leave nothing lost.
	waitFor(t, 20*time.Second, "a checkpoint whose answer is lost", func() bool {
		return px.Faulted(faultproxy.LoseAnswer) == 1 && storedJob(t, db, table, acc).Done >= 30
	})
	// And DynamoDB fails the first attempts to release the lease.
	px.Inject(faultproxy.Fault{Kind: faultproxy.Unavailable, Count: 4, Ops: []string{"UpdateItem"}})
	stopA()

	job := storedJob(t, db, table, acc)
	if job.Owner != "" || job.Lease != 0 {
		t.Fatalf("after a graceful stop the job is still leased: %+v", job)
	}
	if job.Done < 30 {
		t.Errorf("released job shows %d items done; the checkpoint whose answer was lost had 30 or more", job.Done)
	}
	if px.Active() {
		t.Errorf("the release was not retried past DynamoDB's failures: %+v", px.Counts())
	}
}

// storedJob reads an account's re-stamp job as stored (owner and lease included).
func storedJob(t *testing.T, db *dynamodb.Client, table, account string) (j struct {
	Done  int64  `json:"done"`
	Owner string `json:"owner"`
	Lease int64  `json:"lease"`
}) {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &table,
		Key: map[string]types.AttributeValue{
			"p": &types.AttributeValueMemberS{Value: "cfg"}, "s": &types.AttributeValueMemberS{Value: account},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, ok := out.Item["rs"].(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("no re-stamp job stored: %v", out.Item)
	}
	if err := json.Unmarshal([]byte(rs.Value), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// An owner renews its lease by time, not once per page: with a rate so low
// that one page takes longer than the lease, a second process never takes the
// job over from the live owner (before, it did, and the two kept superseding
// each other).
func TestRetentionLowRateKeepsLease(t *testing.T) {
	// 50 items in one page at 10 items/s: the second batch of 25 waits 2.5s
	// for the limiter, more than twice the 1s lease.
	slow := store.RestampConfig{Delay: time.Millisecond, Page: 50, Rate: 10, Lease: time.Second}
	ra, rb := sdkmetric.NewManualReader(), sdkmetric.NewManualReader()
	table := newStore(t, store.Config{Restamp: slow}).Config().Table // creates the table
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	a, err := store.New(db, store.Config{Table: table, Restamp: slow}, nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(ra)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.New(db, store.Config{Table: table, Restamp: slow}, nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(rb)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acc := sid("AC")
	msgs := writeMinuteApart(t, a, acc, 50)
	if _, err := a.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	runStore(t, a)
	waitFor(t, 20*time.Second, "A to take the job", func() bool { return storedJob(t, db, table, acc).Owner != "" })
	runStore(t, b)
	waitFor(t, 60*time.Second, "the job", func() bool { return jobDone(t, a, acc) })
	for _, m := range msgs {
		want := m.DateCreated.Add(30*24*time.Hour + store.TTLGrace).Unix()
		if x := numAttr(t, rawItem(t, db, table, acc, m.SID), "x"); x != want {
			t.Fatalf("x %d, want %d", x, want)
		}
	}
	for name, r := range map[string]*sdkmetric.ManualReader{"A": ra, "B": rb} {
		if n := outcomes(t, r, "superseded"); n != 0 {
			t.Errorf("process %s saw the job taken over %d times: the live owner's lease lapsed", name, n)
		}
	}
	if n := outcomes(t, ra, "done") + outcomes(t, rb, "done"); n != 1 {
		t.Errorf("%d processes finished the job, want 1", n)
	}
}

// outcomes counts the retention jobs that ended with outcome.
func outcomes(t *testing.T, reader *sdkmetric.ManualReader, outcome string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "postflight.store.retention.jobs" {
				for _, dp := range sum.DataPoints {
					if v, ok := dp.Attributes.Value("outcome"); ok && v.AsString() == outcome {
						n += dp.Value
					}
				}
			}
		}
	}
	return n
}

// writeMinuteApart stores n delivered messages of account, created a minute
// apart going back from now (n a multiple of 25), and returns them.
func writeMinuteApart(t *testing.T, s *store.Store, account string, n int) []*postflight.Message {
	t.Helper()
	var msgs []*postflight.Message
	for i := range n {
		msgs = append(msgs, msg(account, 1, postflight.StatusDelivered, time.Now().Add(-time.Duration(i)*time.Minute)))
	}
	for i := 0; i < n; i += 25 {
		allApplied(t, write(t, s, msgs[i:i+25]...))
	}
	return msgs
}

// waitRestamped waits until the account's re-stamp job has checkpointed at
// least done items.
func waitRestamped(t *testing.T, s *store.Store, account string, done int64) {
	t.Helper()
	waitFor(t, 20*time.Second, "a checkpoint", func() bool {
		st, _, err := s.RestampStatus(context.Background(), account)
		if err != nil {
			t.Fatal(err)
		}
		return st.Done >= done
	})
}
