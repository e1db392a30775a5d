package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/replay"
	"github.com/postflight/postflight/store"
)

// TestReconcile runs replay, reconcile and reconcile --repair as the CLI
// on kfake and DynamoDB Local. The store is filled by replay, then changed
// behind Postflight's back: one record deleted, one made stale, one written
// for a message that was never final; one message is deleted through the
// API (a tombstone) and one redacted (a pinned correction); and one,
// below the retention floor a lower-then-raised retention left, is removed
// as TTL would. Reconcile reports exactly the first three, each once (the
// record below the floor is expired, as replay and reads treat it); --repair fixes them, and a
// second reconcile is clean with equal digests. A small window makes every
// message's events straddle windows.
func TestReconcile(t *testing.T) {
	ep := testenv.DynamoDBEndpoint(t)
	brokers, _ := testenv.Kafka(t, "message-events", "message-events.dlq")
	table := testenv.TableName(t)
	db := testenv.DynamoDBClient(t, ep)
	st, err := store.New(db, store.Config{Table: table}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	account := randomSID("AC")
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	const n = 60
	sids := make([]string, n)
	var first, last []*sarama.ProducerMessage
	for i := range sids {
		sids[i] = randomSID("SM")
		first = append(first, record(t, newEvent(account, sids[i], 1, postflight.StatusSent, created), 2))
		last = append(last, record(t, newEvent(account, sids[i], 3, postflight.StatusDelivered, created), 2))
	}
	neverFinal := randomSID("SM")
	first = append(first, record(t, newEvent(account, neverFinal, 2, postflight.StatusSending, created), 2))
	belowFloor, belowFloorStale := randomSID("SM"), randomSID("SM")
	last = append(last, record(t, newEvent(account, belowFloor, 3, postflight.StatusDelivered, created.Add(-40*24*time.Hour)), 2),
		record(t, newEvent(account, belowFloorStale, 3, postflight.StatusDelivered, created.Add(-40*24*time.Hour)), 2))
	otherAccount := randomSID("AC")
	first = append(first, record(t, newEvent(otherAccount, randomSID("SM"), 3, postflight.StatusRead, created), 2))
	produce(t, brokers, append(first, last...)...)

	base := []string{"--brokers", strings.Join(brokers, ","), "--table", table, "--dynamodb-endpoint", ep}
	cli := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append(args, base...), func(string) string { return "" }, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, _, err := cli("replay")
	if err != nil || !strings.Contains(out, fmt.Sprintf("written        %d", n+3)) {
		t.Fatalf("replay: %v\n%s", err, out)
	}

	deleted, stale, tomb, redacted := sids[0], sids[1], sids[2], sids[3]
	writeMsg := func(ev *postflight.Event) {
		m := ev.Message()
		res := make([]postflight.WriteResult, 1)
		st.WriteBatch(ctx, []*postflight.Message{&m}, res)
		if res[0].Outcome != postflight.Applied {
			t.Fatalf("write %s: %v", ev.MessageSID, res[0])
		}
	}
	// belowFloorStale: stale (an older sequence stored), then below the
	// floor: hidden, and not something --repair can write again, so it is
	// expired, not stale (before, it was reported stale on every run).
	if _, err := st.RemoveRecord(ctx, store.Key{Account: account, SID: belowFloorStale}, 3); err != nil {
		t.Fatal(err)
	}
	writeMsg(newEvent(account, belowFloorStale, 2, postflight.StatusDelivered, created.Add(-40*24*time.Hour)))
	// 30 days, then 60: the floor is 30 days back, and belowFloor (40 days
	// old) may be gone: reads hide it, ingest and replay refuse its events.
	for _, days := range []int{30, 60} {
		if _, err := st.SetRetention(ctx, account, days); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]types.AttributeValue{
		keydesign.AttrPK: &types.AttributeValueMemberS{Value: belowFloor}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: account}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]types.AttributeValue{
		keydesign.AttrPK: &types.AttributeValueMemberS{Value: deleted}, keydesign.AttrSK: &types.AttributeValueMemberS{Value: account}}}); err != nil {
		t.Fatal(err)
	}
	// Stale: removed, then written with an older sequence.
	if _, err := st.RemoveRecord(ctx, store.Key{Account: account, SID: stale}, 3); err != nil {
		t.Fatal(err)
	}
	writeMsg(newEvent(account, stale, 2, postflight.StatusDelivered, created))
	writeMsg(newEvent(account, neverFinal, 2, postflight.StatusDelivered, created))
	if err := st.Delete(ctx, account, tomb); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, account, redacted, store.Patch{Redact: true}, nil); err != nil {
		t.Fatal(err)
	}

	reconcile := func(extra ...string) (map[string]replay.Difference, reconcileSummary, error) {
		t.Helper()
		jf := filepath.Join(t.TempDir(), "summary.json")
		out, errOut, err := cli(append([]string{"reconcile", "--account", account, "--window", "10", "--json", jf}, extra...)...)
		diffs := map[string]replay.Difference{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var d replay.Difference
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("not NDJSON: %q", line)
			}
			if _, dup := diffs[d.MessageSID]; dup {
				t.Errorf("%s reported twice", d.MessageSID)
			}
			diffs[d.MessageSID] = d
		}
		var sum reconcileSummary
		b, rerr := os.ReadFile(jf)
		if rerr != nil || json.Unmarshal(b, &sum) != nil {
			t.Fatalf("summary: %v (%s)", rerr, errOut)
		}
		t.Logf("%s", errOut)
		return diffs, sum, err
	}
	diffs, sum, err := reconcile()
	if !errors.Is(err, errDiffer) {
		t.Fatalf("reconcile: %v, want the differences error", err)
	}
	want := map[string]replay.Kind{deleted: replay.Missing, stale: replay.Stale, neverFinal: replay.Unexpected}
	if len(diffs) != len(want) {
		t.Errorf("differences %v, want %v", diffs, want)
	}
	for sid, k := range want {
		if diffs[sid].Kind != k {
			t.Errorf("%s: %+v, want %s", sid, diffs[sid], k)
		}
	}
	if d := diffs[stale]; d.Expected == nil || *d.Expected != 3 || d.Stored == nil || *d.Stored != 2 {
		t.Errorf("stale: %+v", d)
	}
	if sum.Tombstoned != 1 || sum.Missing != 1 || sum.Stale != 1 || sum.Unexpected != 1 || sum.Expired != 2 || sum.StreamDigest == sum.StoreDigest {
		t.Errorf("summary %+v", sum)
	}

	if _, sum, err = reconcile("--repair"); !errors.Is(err, errDiffer) || sum.Repair == nil || sum.Repair.Rewritten != 2 || sum.Repair.Removed != 1 {
		t.Fatalf("repair: %v, %+v", err, sum.Repair)
	}
	diffs, sum, err = reconcile()
	if err != nil || len(diffs) != 0 || sum.StreamDigest != sum.StoreDigest || sum.Matched != n-1 || sum.Tombstoned != 1 {
		t.Fatalf("after repair: %v, %v, %+v", err, diffs, sum)
	}
	if m, err := st.Get(ctx, account, redacted); err != nil || m.Body == nil || *m.Body != "" {
		t.Errorf("the redaction must survive repair: %+v %v", m, err)
	}
}
