package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
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
		want := m.DateCreated.Add(9 * 24 * time.Hour).Unix()
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
	wantOther := otherMsg.DateCreated.Add(400 * 24 * time.Hour).Unix()
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
	var msgs []*postflight.Message
	for i := range n {
		msgs = append(msgs, msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Duration(i)*time.Minute)))
	}
	for i := 0; i < n; i += 25 {
		allApplied(t, write(t, a, msgs[i:i+25]...))
	}
	if _, err := a.SetRetention(ctx, acc, 20); err != nil {
		t.Fatal(err)
	}
	stopA := runStore(t, a)
	waitFor(t, 20*time.Second, "a checkpoint", func() bool {
		st, _, err := a.RestampStatus(ctx, acc)
		if err != nil {
			t.Fatal(err)
		}
		return st.Done >= 20
	})
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
		want := m.DateCreated.Add(20 * 24 * time.Hour).Unix()
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
	s := newStore(t, store.Config{})
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
}
