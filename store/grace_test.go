package store_test

import (
	"context"
	"errors"
	"math"
	"sort"
	"strconv"
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
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

const day = 24 * time.Hour

// sweep does what DynamoDB's TTL may do at any moment: it deletes every item
// whose expiry x has passed at now (the store's clock). DynamoDB Local
// sweeps by the machine's clock only, so the tests that move the store's
// clock sweep by hand. It returns how many items it deleted.
func sweep(t *testing.T, db *dynamodb.Client, table string, now time.Time) int {
	t.Helper()
	ctx := context.Background()
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{
		TableName:                 &table,
		FilterExpression:          aws.String("#x <= :now"),
		ProjectionExpression:      aws.String("#p, #s"),
		ExpressionAttributeNames:  map[string]string{"#x": "x", "#p": keydesign.AttrPK, "#s": keydesign.AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}},
		ConsistentRead:            aws.Bool(true),
	})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: item}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

// A raise of the retention must not lose a record the new policy keeps: the
// re-stamp job reaches a record some time after the raise (Delay, then its
// place in the walk at --restamp-rate), and until then the record carries the
// old policy's expiry. Here the job has not reached any record yet when the
// old expiries of the records just inside the old policy pass and TTL sweeps.
// Before the fix x was date_created + the old days exactly, so those records
// were deleted (and a replay would write them again, past the floor).
func TestRaiseKeepsRecordsUntilTheJobReachesThem(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	clk := newFakeClock()
	start, now := clk.start, clk.Now
	s := openStore(t, db, store.Config{Now: now, DefaultShards: 4,
		Restamp: store.RestampConfig{Delay: time.Millisecond, Page: 7, Rate: -1}}, nil, nil)
	table := s.Config().Table
	ctx := context.Background()
	acc := sid("AC")
	if _, err := s.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	// Twelve records inside the 30 days whose old expiries fall within two
	// hours of the raise, one past the 30 days already (hidden, still on
	// disk until TTL gets to it), and a recent one.
	var kept []*postflight.Message
	for i := range 12 {
		kept = append(kept, msg(acc, 1, postflight.StatusDelivered, start.Add(-30*day+time.Duration(i+1)*10*time.Minute)))
	}
	recent := msg(acc, 1, postflight.StatusDelivered, start.Add(-time.Hour))
	kept = append(kept, recent)
	past := msg(acc, 1, postflight.StatusDelivered, start.Add(-30*day+time.Minute))
	for _, m := range kept {
		wantOutcomes(t, write(t, s, m), postflight.Applied)
	}
	wantOutcomes(t, write(t, s, past), postflight.Applied)
	clk.Set(2 * time.Minute) // past goes past the 30 days
	if _, err := s.Get(ctx, acc, past.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("a record past the retention: %v", err)
	}

	if _, err := s.SetRetention(ctx, acc, 60); err != nil {
		t.Fatal(err)
	}
	// A record the old policy had already hidden stays hidden: TTL may
	// remove it at any moment, and no event may write it again.
	if _, err := s.Get(ctx, acc, past.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Errorf("a record past the old policy reappeared after the raise: %v", err)
	}
	// Three hours on, the job has not reached the records yet (Run is not
	// running), and TTL sweeps what has expired.
	clk.Set(3 * time.Hour)
	sweep(t, db, table, now())
	for _, m := range kept {
		if _, err := s.Get(ctx, acc, m.SID); err != nil {
			t.Errorf("record created %v (%v before the raise), kept by the new 60-day policy: %v",
				m.DateCreated, start.Sub(m.DateCreated), err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// The job then extends them all: the new policy and the grace.
	runStore(t, s)
	waitFor(t, 30*time.Second, "the re-stamp job", func() bool { return jobDone(t, s, acc) })
	for _, m := range kept {
		want := m.DateCreated.Add(60*day + store.TTLGrace).Unix()
		if x := numAttr(t, rawItem(t, db, table, acc, m.SID), "x"); x != want {
			t.Errorf("record created %v: x %d, want %d", m.DateCreated, x, want)
		}
	}
	// Records written now carry the grace too.
	fresh := msg(acc, 1, postflight.StatusDelivered, now().Add(-time.Minute))
	wantOutcomes(t, write(t, s, fresh), postflight.Applied)
	if x, want := numAttr(t, rawItem(t, db, table, acc, fresh.SID), "x"), fresh.DateCreated.Add(60*day+store.TTLGrace).Unix(); x != want {
		t.Errorf("a new record's x %d, want %d", x, want)
	}
	// 61 days on, every kept record is past the policy: hidden at once,
	// though on disk until its grace ends.
	clk.Set(61 * day)
	for _, m := range kept[:12] {
		if _, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrNotFound) {
			t.Errorf("a record past the policy, within its grace: %v", err)
		}
	}
}

// The job walks an account's records oldest first across all its index
// shards, so the records nearest their old expiry are re-stamped first
// whatever shard holds them: at any checkpoint, the records re-stamped are
// the oldest ones. Before, it walked shard 0 to the end, then shard 1, so
// the oldest records of the last shard waited for every other shard.
func TestRestampWalksOldestFirstAcrossShards(t *testing.T) {
	slow := store.RestampConfig{Delay: time.Millisecond, Page: 10, Rate: 20}
	s := newStore(t, store.Config{DefaultShards: 4, Restamp: slow})
	ctx := context.Background()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	table := s.Config().Table
	acc := sid("AC")
	msgs := writeMinuteApart(t, s, acc, 100)
	if _, err := s.SetRetention(ctx, acc, 20); err != nil {
		t.Fatal(err)
	}
	stop := runStore(t, s)
	waitRestamped(t, s, acc, 20)
	stop()
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].DateCreated.Before(msgs[j].DateCreated) })
	done := make([]bool, len(msgs))
	n := 0
	for i, m := range msgs {
		done[i] = numAttr(t, rawItem(t, db, table, acc, m.SID), "x") == m.DateCreated.Add(20*day+store.TTLGrace).Unix()
		if done[i] {
			n++
		}
	}
	if n < 20 || n == len(msgs) {
		t.Fatalf("%d of %d records re-stamped; want the job stopped half-way", n, len(msgs))
	}
	for i := range n {
		if !done[i] {
			t.Fatalf("%d records re-stamped, but not the %dth oldest: want the oldest first across shards (re-stamped: %v)", n, i+1, done)
		}
	}
}

// Records written before the grace carry x = date_created + days. They read
// as before (reads never look at x), and a raise's job extends them with the
// grace like any other. One whose old x has already passed when the job
// reaches it (TTL had not got to it yet) is saved, and counted as late: TTL
// could as well have deleted it first.
func TestRaiseExtendsRecordsWrittenWithoutGrace(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	clk := newFakeClock()
	start, now := clk.start, clk.Now
	reader := sdkmetric.NewManualReader()
	s := openStore(t, db, store.Config{Now: now, DefaultShards: 2,
		Restamp: store.RestampConfig{Delay: time.Millisecond, Rate: -1}}, nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	table := s.Config().Table
	ctx := context.Background()
	acc := sid("AC")
	if _, err := s.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	near := msg(acc, 1, postflight.StatusDelivered, start.Add(-30*day+30*time.Minute))
	far := msg(acc, 1, postflight.StatusDelivered, start.Add(-10*day))
	wantOutcomes(t, write(t, s, near, far), postflight.Applied, postflight.Applied)
	for _, m := range []*postflight.Message{near, far} {
		withoutGrace(t, db, table, m, 30)
		if _, err := s.Get(ctx, acc, m.SID); err != nil {
			t.Fatalf("a record written without the grace: %v", err)
		}
	}
	if _, err := s.SetRetention(ctx, acc, 60); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Hour) // near's old x passed half an hour ago; TTL has not swept yet
	runStore(t, s)
	waitFor(t, 30*time.Second, "the re-stamp job", func() bool { return jobDone(t, s, acc) })
	for _, m := range []*postflight.Message{near, far} {
		if x, want := numAttr(t, rawItem(t, db, table, acc, m.SID), "x"), m.DateCreated.Add(60*day+store.TTLGrace).Unix(); x != want {
			t.Errorf("record created %v: x %d, want %d", m.DateCreated, x, want)
		}
		if _, err := s.Get(ctx, acc, m.SID); err != nil {
			t.Errorf("record created %v: %v", m.DateCreated, err)
		}
	}
	if n := counter(t, reader, "postflight.store.retention.late"); n != 1 {
		t.Errorf("%d records counted late, want 1 (the one past its old expiry)", n)
	}
	if h := gauge(t, reader, "postflight.store.retention.headroom"); h != store.TTLGrace.Seconds() {
		t.Errorf("headroom after the job %v, want the grace %v", h, store.TTLGrace.Seconds())
	}
}

// gauge returns the value of a float64 gauge served as one point without
// attributes (NaN if it is not served).
func gauge(t *testing.T, reader *sdkmetric.ManualReader, name string) float64 {
	t.Helper()
	return gaugePoint(t, reader, name, func(dps []metricdata.DataPoint[float64]) (float64, bool) {
		if len(dps) != 1 {
			return 0, false
		}
		return dps[0].Value, true
	})
}

// Lowering the retention and raising it again before the lowering's job
// reached a record: the record was past the lower policy, so it stays
// hidden (below the floor the raise sets) and is not kept on disk for the
// raised policy either: the raise's job brings its x down to the grace
// after the raise, no later than the lower policy would have had it
// removed. Records inside the lower policy are kept as the raise says.
func TestLowerThenRaiseKeepsTheLowerPolicysHorizon(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	clk := newFakeClock()
	start, now := clk.start, clk.Now
	s := openStore(t, db, store.Config{Now: now, DefaultShards: 2,
		Restamp: store.RestampConfig{Delay: time.Millisecond, Rate: -1}}, nil, nil)
	table := s.Config().Table
	ctx := context.Background()
	acc := sid("AC")
	old := msg(acc, 1, postflight.StatusDelivered, start.Add(-20*day))
	inside := msg(acc, 1, postflight.StatusDelivered, start.Add(-5*day))
	wantOutcomes(t, write(t, s, old, inside), postflight.Applied, postflight.Applied)
	if _, err := s.SetRetention(ctx, acc, 10); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Minute)
	raised := now()
	if _, err := s.SetRetention(ctx, acc, 400); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, acc, old.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Errorf("a record past the lowered policy reappeared after the raise: %v", err)
	}
	clk.Set(2 * time.Minute) // the job is due
	runStore(t, s)
	waitFor(t, 30*time.Second, "the re-stamp job", func() bool { return jobDone(t, s, acc) })
	if x, want := numAttr(t, rawItem(t, db, table, acc, old.SID), "x"), raised.Add(store.TTLGrace).Unix(); x != want {
		t.Errorf("a record below the floor: x %d, want %d (the grace after the raise)", x, want)
	}
	if x, want := numAttr(t, rawItem(t, db, table, acc, inside.SID), "x"), inside.DateCreated.Add(400*day+store.TTLGrace).Unix(); x != want {
		t.Errorf("a record inside the lower policy: x %d, want %d", x, want)
	}
	if _, err := s.Get(ctx, acc, inside.SID); err != nil {
		t.Errorf("a record inside the lower policy: %v", err)
	}
}

// A raise's job that cannot make progress (every write of its pages fails)
// shows: the stalled gauge counts the time since the job became due, per
// account, and the headroom keeps falling with the clock instead of reading
// the full grace between attempts. Before, each failed page reset the
// headroom to the grace, so PostflightRetentionHeadroomLow could never fire
// for a job that was failing, and a job nobody ran raised nothing at all.
func TestStalledJobShows(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	px := startProxy(t, ep)
	clk := newFakeClock()
	start, now := clk.start, clk.Now
	reader := sdkmetric.NewManualReader()
	s := openStore(t, testenv.DynamoDBClient(t, px.URL()), store.Config{Now: now,
		Restamp: store.RestampConfig{Delay: time.Millisecond, Rate: -1, Poll: 100 * time.Millisecond}},
		nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	ctx := context.Background()
	acc := sid("AC")
	if _, err := s.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	near := msg(acc, 1, postflight.StatusDelivered, start.Add(-30*day+30*time.Minute))
	wantOutcomes(t, write(t, s, near), postflight.Applied)
	if _, err := s.SetRetention(ctx, acc, 60); err != nil {
		t.Fatal(err)
	}
	// Every re-stamp write fails from now on.
	px.Inject(faultproxy.Fault{Kind: faultproxy.InternalError, Ops: []string{"BatchExecuteStatement"}})
	t.Cleanup(px.Heal)
	runStore(t, s)
	clk.Set(time.Minute) // the job is due (the store's clock)
	waitFor(t, 30*time.Second, "a failed re-stamp page", func() bool { return px.Faulted(faultproxy.InternalError) > 0 })

	clk.Set(2 * time.Hour)
	if st := gaugeOf(t, reader, "postflight.store.retention.stalled", acc); !(st >= (2*time.Hour).Seconds()-60) {
		t.Errorf("stalled %v s two hours after the job became due, want about 7200", st)
	}
	// near's old x is its date_created + 30 days + the grace: 2 days and
	// 30 minutes after start, 2 days less 90 minutes from now.
	want := (2*day - 90*time.Minute).Seconds()
	if h := gauge(t, reader, "postflight.store.retention.headroom"); math.Abs(h-want) > 60 {
		t.Errorf("headroom %v s while the job fails, want %v (falling with the clock, not the grace)", h, want)
	}
	px.Heal()
	waitFor(t, 30*time.Second, "the re-stamp job once DynamoDB takes writes again", func() bool { return jobDone(t, s, acc) })
	waitFor(t, 10*time.Second, "the stalled series to go", func() bool {
		return math.IsNaN(gaugeOf(t, reader, "postflight.store.retention.stalled", acc))
	})
}

// gaugeOf returns the value of a float64 gauge's point for account (NaN if
// there is none).
func gaugeOf(t *testing.T, reader *sdkmetric.ManualReader, name, account string) float64 {
	t.Helper()
	return gaugePoint(t, reader, name, func(dps []metricdata.DataPoint[float64]) (float64, bool) {
		for _, dp := range dps {
			if v, ok := dp.Attributes.Value("account"); ok && v.AsString() == account {
				return dp.Value, true
			}
		}
		return 0, false
	})
}

// gaugePoint collects reader and returns the value pick finds among the
// points of the float64 gauge name (NaN if it is not served or pick finds
// none).
func gaugePoint(t *testing.T, reader *sdkmetric.ManualReader, name string, pick func([]metricdata.DataPoint[float64]) (float64, bool)) float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == name {
				if v, ok := pick(g.DataPoints); ok {
					return v
				}
			}
		}
	}
	return math.NaN()
}

// Lowering the retention by less than the grace extends records written
// before the grace (their x was date_created + the old days), including
// ones the new policy already hides: those are not at risk, so they count
// neither as late nor toward the headroom. Before, the one here (its old x
// passed, hidden by the lower policy) was counted late and paged.
func TestSmallLoweringOfPreGraceRecordsIsNotLate(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	clk := newFakeClock()
	start, now := clk.start, clk.Now
	reader := sdkmetric.NewManualReader()
	s := openStore(t, db, store.Config{Now: now,
		Restamp: store.RestampConfig{Delay: time.Millisecond, Rate: -1}}, nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	table := s.Config().Table
	ctx := context.Background()
	acc := sid("AC")
	if _, err := s.SetRetention(ctx, acc, 30); err != nil {
		t.Fatal(err)
	}
	old := msg(acc, 1, postflight.StatusDelivered, start.Add(-30*day+10*time.Minute))
	wantOutcomes(t, write(t, s, old), postflight.Applied)
	withoutGrace(t, db, table, old, 30)
	if _, err := s.SetRetention(ctx, acc, 29); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Hour) // its old x passed 50 minutes ago; TTL has not swept it
	runStore(t, s)
	waitFor(t, 30*time.Second, "the re-stamp job", func() bool { return jobDone(t, s, acc) })
	if n := counter(t, reader, "postflight.store.retention.late"); n != 0 {
		t.Errorf("%d records counted late; the only one extended is hidden by the new policy", n)
	}
	if h := gauge(t, reader, "postflight.store.retention.headroom"); h != store.TTLGrace.Seconds() {
		t.Errorf("headroom %v, want the grace %v", h, store.TTLGrace.Seconds())
	}
}

// withoutGrace sets m's TTL as the release before the grace wrote it under
// a policy of days: date_created + days, no grace.
func withoutGrace(t *testing.T, db *dynamodb.Client, table string, m *postflight.Message, days int) {
	t.Helper()
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: &table,
		Key: map[string]types.AttributeValue{
			keydesign.AttrPK: &types.AttributeValueMemberS{Value: m.SID}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: m.AccountSID},
		},
		UpdateExpression: aws.String("SET x = :x"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":x": &types.AttributeValueMemberN{Value: strconv.FormatInt(m.DateCreated.Add(time.Duration(days)*day).Unix(), 10)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}
