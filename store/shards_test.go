package store_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

// shardClock is a settable clock shared by the Stores of one test, so that
// a test can step through lead times without sleeping.
type shardClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *shardClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *shardClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// openShardStores returns two processes on one fresh table: a writer, whose
// account configuration is only what its last RefreshAccounts loaded (as in
// ingest between refreshes), and an admin that changes shard counts and
// reads (as the API, reading fresh configuration).
func openShardStores(t *testing.T, cfg store.Config) (writer, admin *store.Store) {
	t.Helper()
	db := testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t))
	cfg.Table = testenv.TableName(t)
	cfg.HotShardUnits = -1 // these tests change shard counts themselves
	admin = openStore(t, db, cfg, nil, nil)
	cfg.AttemptTimeout = testenv.AttemptTimeout
	writer, err := store.New(db, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return writer, admin
}

// writeAll writes msgs through s in batches; every write must apply.
func writeAll(t *testing.T, s *store.Store, msgs []*postflight.Message) {
	t.Helper()
	for len(msgs) > 0 {
		n := min(len(msgs), store.MaxBatch)
		res := make([]postflight.WriteResult, n)
		s.WriteBatch(context.Background(), msgs[:n], res)
		for i, r := range res {
			if r.Outcome != postflight.Applied {
				t.Fatalf("write of %s: %v %v", msgs[i].SID, r.Outcome, r.Err)
			}
		}
		msgs = msgs[n:]
	}
}

// listAll pages through [start, end) and checks that every page but the
// last is full. between, if not nil, runs between pages.
func listAll(t *testing.T, s *store.Store, account string, start, end time.Time, size int, between func()) []postflight.Message {
	t.Helper()
	q := store.ListQuery{Account: account, Start: start, End: end, PageSize: size}
	var got []postflight.Message
	for pages := 0; ; pages++ {
		page, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if page.More && len(page.Messages) != size {
			t.Fatalf("page %d of [%v, %v): %d messages, page size %d", pages, start, end, len(page.Messages), size)
		}
		got = append(got, page.Messages...)
		if !page.More {
			return got
		}
		q.After = page.Last
		if between != nil {
			between()
		}
	}
}

// wantListed checks that got is exactly the messages of all created in
// [start, end), newest first (date_created, then SID), each once.
func wantListed(t *testing.T, what string, got []postflight.Message, all []*postflight.Message, start, end time.Time) {
	t.Helper()
	var want []string
	for _, m := range all {
		if !m.DateCreated.Before(start) && m.DateCreated.Before(end) {
			want = append(want, keydesign.IndexSK(m.DateCreated, m.SID))
		}
	}
	slices.Sort(want)
	slices.Reverse(want)
	keys := make([]string, len(got))
	for i, m := range got {
		keys[i] = keydesign.IndexSK(m.DateCreated, m.SID)
	}
	if slices.Equal(keys, want) {
		return
	}
	wantSet := map[string]bool{}
	for _, k := range want {
		wantSet[k] = true
	}
	seen := map[string]bool{}
	for i, k := range keys {
		switch {
		case seen[k]:
			t.Fatalf("%s: %s listed twice", what, k)
		case !wantSet[k]:
			t.Fatalf("%s: %s listed but not in the range", what, k)
		case i > 0 && k >= keys[i-1]:
			t.Fatalf("%s: out of order at %d: %s after %s", what, i, k, keys[i-1])
		}
		seen[k] = true
	}
	var missing []string
	for _, k := range want {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	t.Fatalf("%s: listed %d of %d messages; missing %v", what, len(keys), len(want), missing)
}

// TestShardCountChangesMidStream raises an account's shard count four times
// while messages stream in (the writer picking the changes up a refresh
// late), then lowers it with a decrease dated past the lead time and keeps
// writing across that date. After every round and at the end, the account's
// list is complete, ordered and paged exactly, and every message can be read.
func TestShardCountChangesMidStream(t *testing.T) {
	clock := &shardClock{t: time.Now().UTC().Truncate(time.Millisecond)}
	cfg := store.Config{ConfigRefresh: time.Minute, MaxClockSkew: 2 * time.Minute, Now: clock.Now}
	writer, admin := openShardStores(t, cfg)
	ctx := context.Background()
	scfg := admin.Config()
	lead := scfg.ShardLead() // 2 × 1m + 2m
	acc := sid("AC")
	r := mrand.New(mrand.NewPCG(7, 7))
	t0 := clock.Now()
	var all []*postflight.Message
	stream := func(round int) {
		now := clock.advance(30 * time.Second)
		if round%2 == 0 { // the writer refreshes every other round: up to a minute late
			if err := writer.RefreshAccounts(ctx); err != nil {
				t.Fatal(err)
			}
		}
		batch := make([]*postflight.Message, 12)
		for i := range batch {
			// Created up to 10 minutes ago, or up to MaxClockSkew ahead.
			created := now.Add(time.Duration(r.Int64N(int64(12*time.Minute))) - 10*time.Minute)
			batch[i] = msg(acc, 1, postflight.StatusDelivered, created)
		}
		writeAll(t, writer, batch)
		all = append(all, batch...)
	}
	end := func() time.Time { return clock.Now().Add(cfg.MaxClockSkew + time.Millisecond) }

	raises := []int{2, 4, 8, 16}
	for round := range 12 {
		if round%3 == 1 {
			if _, err := admin.SetShards(ctx, acc, time.Time{}, raises[0]); err != nil {
				t.Fatalf("raise to %d: %v", raises[0], err)
			}
			raises = raises[1:]
		}
		stream(round)
		wantListed(t, fmt.Sprint("after round ", round), listAll(t, admin, acc, t0.Add(-time.Hour), end(), 25, nil), all, t0.Add(-time.Hour), end())
	}
	if n := admin.Account(acc).Schedule.At(clock.Now()); n != 16 {
		t.Fatalf("%d shards after the raises, want 16", n)
	}

	// A decrease inside the lead time is refused; one past it is taken.
	if _, err := admin.SetShards(ctx, acc, clock.Now().Add(lead/2), 4); !errors.Is(err, keydesign.ErrTooSoon) {
		t.Fatalf("decrease inside the lead: %v", err)
	}
	down := clock.Now().Add(lead + time.Minute)
	if _, err := admin.SetShards(ctx, acc, down, 4); err != nil {
		t.Fatalf("decrease past the lead: %v", err)
	}
	for round := 12; clock.Now().Before(down.Add(6 * time.Minute)); round++ {
		stream(round)
	}
	acc2, err := admin.FreshAccount(ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, e := range acc2.Schedule.Epochs {
		counts = append(counts, e.Shards)
	}
	if !slices.Equal(counts, []int{2, 4, 8, 16, 4}) || !acc2.Schedule.Epochs[4].From.Equal(down) {
		t.Fatalf("schedule %+v", acc2.Schedule)
	}

	// The whole stream at several page sizes, with another raise between
	// pages; then a window around every epoch boundary.
	start := t0.Add(-time.Hour)
	wantListed(t, "everything", listAll(t, admin, acc, start, end(), 1000, nil), all, start, end())
	wantListed(t, "everything by 13", listAll(t, admin, acc, start, end(), 13, nil), all, start, end())
	raised := false
	wantListed(t, "everything by 9, raised between pages", listAll(t, admin, acc, start, end(), 9, func() {
		if !raised {
			raised = true
			if _, err := admin.SetShards(ctx, acc, time.Time{}, 32); err != nil {
				t.Fatal(err)
			}
		}
	}), all, start, end())
	for _, e := range acc2.Schedule.Epochs {
		lo, hi := e.From.Add(-45*time.Second), e.From.Add(45*time.Second)
		wantListed(t, "around "+e.From.String(), listAll(t, admin, acc, lo, hi, 3, nil), all, lo, hi)
	}
	for _, m := range all {
		got, err := admin.Get(ctx, acc, m.SID)
		if err != nil || got.SID != m.SID || !got.DateCreated.Equal(m.DateCreated) {
			t.Fatalf("get %s: %v %+v", m.SID, err, got.SID)
		}
	}
}
