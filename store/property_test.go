package store_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/store"
)

// TestPropertyListAndGetOnDynamoDB is keydesign's property test
// (keydesign/property_test.go) on the real store and DynamoDB Local, small:
// a random default shard count and random shard changes through SetShards
// (raises now, raises and decreases dated ahead, some refused), messages
// streamed through a writer that refreshes its configuration at random
// within the allowed staleness, created at random in the past or up to the
// allowed skew ahead; then random ranges (epoch boundaries and message times
// among the bounds), random page sizes, sometimes a raise between pages.
// Every message is found by Get, and by every list covering it exactly
// once, in order, with exact page sizes.
func TestPropertyListAndGetOnDynamoDB(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { storeListProperty(t, seed) })
	}
}

func storeListProperty(t *testing.T, seed uint64) {
	r := mrand.New(mrand.NewPCG(seed, 0xd1ce))
	clock := &shardClock{t: time.Now().UTC().Truncate(time.Millisecond)}
	counts := []int{1, 2, 3, 4, 8, 16}
	cfg := store.Config{
		ConfigRefresh: time.Minute, MaxClockSkew: 2 * time.Minute, Now: clock.Now,
		DefaultShards: counts[r.IntN(4)],
	}
	writer, admin := openShardStores(t, cfg)
	ctx := context.Background()
	scfg := admin.Config()
	lead := scfg.ShardLead()
	acc, other := sid("AC"), sid("AC")
	t0 := clock.Now()
	var all []*postflight.Message
	var changes []time.Time
	lastRefresh, staleness := t0, time.Duration(0)
	for step := 0; step < 50; step++ {
		now := clock.advance(time.Duration(5+r.IntN(55)) * time.Second)
		if r.IntN(6) == 0 {
			from := now
			if r.IntN(2) == 0 {
				from = now.Add(time.Duration(r.Int64N(int64(2 * lead))))
			}
			n := counts[r.IntN(len(counts))]
			if _, err := admin.SetShards(ctx, acc, from, n); err == nil {
				changes = append(changes, from)
			} else if n > admin.Account(acc).Schedule.At(from) && !strings.Contains(err.Error(), "in use") {
				// Only decreases inside the lead time and replacements of
				// epochs writers may already use are refused.
				t.Fatalf("raise to %d from %v refused: %v", n, from, err)
			}
		}
		// The writer refreshes at a random moment within ConfigRefresh.
		if now.Sub(lastRefresh) >= staleness {
			if err := writer.RefreshAccounts(ctx); err != nil {
				t.Fatal(err)
			}
			lastRefresh, staleness = now, time.Duration(r.Int64N(int64(cfg.ConfigRefresh)))
		}
		batch := make([]*postflight.Message, r.IntN(5))
		for i := range batch {
			created := now.Add(time.Duration(r.Int64N(int64(cfg.MaxClockSkew+5*time.Minute))) - 5*time.Minute)
			if r.IntN(5) == 0 && len(all) > 0 { // the same millisecond as another message
				created = all[r.IntN(len(all))].DateCreated
			}
			batch[i] = msg(acc, 1, postflight.StatusDelivered, created)
		}
		if r.IntN(3) == 0 { // another account's message, never to be listed with ours
			writeAll(t, writer, []*postflight.Message{msg(other, 1, postflight.StatusDelivered, now)})
		}
		writeAll(t, writer, batch)
		all = append(all, batch...)
	}

	t.Logf("default %d shards, %d changes taken, %d messages", cfg.DefaultShards, len(changes), len(all))
	for _, m := range all {
		got, err := admin.Get(ctx, acc, m.SID)
		if err != nil || got.SID != m.SID || !got.DateCreated.Equal(m.DateCreated) {
			t.Fatalf("get %s: %v", m.SID, err)
		}
	}
	bounds := []time.Time{t0.Add(-10 * time.Minute), clock.Now().Add(cfg.MaxClockSkew + time.Millisecond)}
	for _, c := range changes {
		bounds = append(bounds, c, c.Add(time.Millisecond))
	}
	for range 8 {
		m := all[r.IntN(len(all))]
		bounds = append(bounds, m.DateCreated, m.DateCreated.Add(time.Millisecond))
	}
	for q := range 8 {
		start, end := bounds[0], bounds[1]
		if q > 0 {
			start, end = bounds[r.IntN(len(bounds))], bounds[r.IntN(len(bounds))]
			if end.Before(start) {
				start, end = end, start
			}
		}
		size := 1 + r.IntN(15)
		if q == 0 {
			size = 4 + r.IntN(10)
		}
		var between func()
		if r.IntN(3) == 0 {
			between = func() {
				now := clock.advance(time.Second)
				if r.IntN(3) == 0 {
					_, _ = admin.SetShards(ctx, acc, now, min(2*admin.Account(acc).Schedule.At(now), 16))
				}
			}
		}
		what := fmt.Sprintf("query %d [%v, %v) by %d", q, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), size)
		wantListed(t, what, listAll(t, admin, acc, start, end, size, between), all, start, end)
	}
}
