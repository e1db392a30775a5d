package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

// TestShardsCommand runs `postflight shards show|set` against DynamoDB Local.
func TestShardsCommand(t *testing.T) {
	ctx := context.Background()
	ep := testenv.DynamoDBEndpoint(t)
	table := testenv.TableName(t)
	st, err := store.New(testenv.DynamoDBClient(t, ep), store.Config{Table: table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.DropTable(t, testenv.DynamoDBClient(t, ep), table)
	env := map[string]string{"POSTFLIGHT_TABLE": table, "POSTFLIGHT_DYNAMODB_ENDPOINT": ep, "POSTFLIGHT_CONFIG_REFRESH": "5s"}
	getenv := func(k string) string { return env[k] }
	account := "AC" + strings.Repeat("0a", 16)
	shards := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"shards"}, args...), getenv, &out, &errOut)
		return out.String(), err
	}

	out, err := shards("show", "--account", account)
	if err != nil || !strings.Contains(out, "shards now   1") || !strings.Contains(out, "fleet defaults") {
		t.Fatalf("show of a new account: %v\n%s", err, out)
	}
	if out, err = shards("set", "--account", account, "--shards", "8"); err != nil || !strings.Contains(out, "shards now   8") {
		t.Fatalf("raise now: %v\n%s", err, out)
	}
	_, err = shards("set", "--account", account, "--shards", "2", "--from", time.Now().Add(time.Minute).Format(time.RFC3339))
	if !errors.Is(err, keydesign.ErrTooSoon) || !strings.Contains(err.Error(), "date it at or after") {
		t.Fatalf("decrease inside the lead (2×5s + 15m): %v", err)
	}
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if out, err = shards("set", "--account", account, "--shards", "2", "--from", later.Format(time.RFC3339)); err != nil {
		t.Fatalf("decrease after the lead: %v\n%s", err, out)
	}
	if out, err = shards("show", "--account", account); err != nil || !strings.Contains(out, "  8 shards  (in force)") || !strings.Contains(out, "  2 shards  (in ") {
		t.Fatalf("show after raise and decrease: %v\n%s", err, out)
	}
	out, err = shards("show", "--account", account, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v scheduleView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if v.ShardsNow != 8 || v.Version != 2 || len(v.Schedule.Epochs) != 2 || !v.Schedule.Epochs[1].From.Equal(later) || v.Schedule.Epochs[1].Shards != 2 {
		t.Fatalf("schedule after raise and decrease: %+v", v)
	}
	for _, bad := range [][]string{
		{"show"},
		{"show", "--account", "AC123"},
		{"set", "--account", account},
		{"set", "--account", account, "--shards", "512"},
		{"set", "--account", account, "--shards", "4", "--from", "tomorrow"},
		{"show", "--account", account, "--shards", "4"},
		{"resize"},
	} {
		if _, err := shards(bad...); err == nil {
			t.Errorf("shards %v: no error", bad)
		}
	}
}
