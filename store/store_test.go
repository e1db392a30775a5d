package store_test

// Integration tests: every test here runs against a real DynamoDB Local
// (internal/testenv starts one per test binary) with a fresh table.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/postflight/postflight"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
	"go.opentelemetry.io/otel/metric"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newStore returns a store on a fresh table of the shared DynamoDB Local.
func newStore(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	s := openStore(t, testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t)), cfg, nil, nil)
	if err := s.CreateTable(context.Background()); err != nil { // idempotent
		t.Fatal(err)
	}
	return s
}

// openStore builds a store on db (the shared DynamoDB Local, or a proxy in
// front of it) with cfg, log and mp, creates its table and drops it when the
// test ends. An empty cfg.Table is a fresh name, a zero cfg.AttemptTimeout
// the tests' (testenv.AttemptTimeout).
func openStore(t *testing.T, db *dynamodb.Client, cfg store.Config, log *slog.Logger, mp metric.MeterProvider) *store.Store {
	t.Helper()
	if cfg.Table == "" {
		cfg.Table = testenv.TableName(t)
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = testenv.AttemptTimeout
	}
	s, err := store.New(db, cfg, log, mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Dropped directly, not through a proxy the test may have broken.
	testenv.DropTable(t, testenv.DynamoDBClient(t, testenv.DynamoDBEndpoint(t)), cfg.Table)
	return s
}

func sid(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func msg(account string, seq int64, status postflight.Status, created time.Time) *postflight.Message {
	body := fmt.Sprintf("hello %d", seq)
	return &postflight.Message{
		SID: sid("SM"), AccountSID: account, Status: status, Channel: postflight.ChannelSMS,
		Direction: postflight.DirectionOutboundAPI, From: "+15550001111", To: "+15550002222",
		Body: &body, NumSegments: 1, DateCreated: created.UTC().Truncate(time.Millisecond),
		DateUpdated: created.UTC().Truncate(time.Millisecond).Add(time.Duration(seq) * time.Second), Sequence: seq,
	}
}

func write(t *testing.T, s *store.Store, msgs ...*postflight.Message) []postflight.WriteResult {
	t.Helper()
	res := make([]postflight.WriteResult, len(msgs))
	s.WriteBatch(context.Background(), msgs, res)
	return res
}

func wantOutcomes(t *testing.T, res []postflight.WriteResult, want ...postflight.WriteOutcome) {
	t.Helper()
	for i, w := range want {
		if res[i].Outcome != w {
			t.Errorf("message %d: outcome %v (%v), want %v", i, res[i].Outcome, res[i].Err, w)
		}
	}
}

func withSeq(m *postflight.Message, seq int64, st postflight.Status) *postflight.Message {
	c := *m
	c.Sequence, c.Status = seq, st
	body := fmt.Sprintf("body of %d", seq)
	c.Body = &body
	c.DateUpdated = c.DateCreated.Add(time.Duration(seq) * time.Second)
	return &c
}

func TestHighestSequenceWins(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	m := msg(acc, 5, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	wantOutcomes(t, write(t, s, m), postflight.Superseded)                                      // replay
	wantOutcomes(t, write(t, s, withSeq(m, 3, postflight.StatusFailed)), postflight.Superseded) // older
	wantOutcomes(t, write(t, s, withSeq(m, 9, postflight.StatusRead)), postflight.Applied)      // newer
	got, err := s.Get(ctx, acc, m.SID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sequence != 9 || got.Status != postflight.StatusRead || *got.Body != "body of 9" {
		t.Fatalf("got seq %d status %v body %q, want 9 read", got.Sequence, got.Status, *got.Body)
	}
	if _, err := s.Get(ctx, sid("AC"), m.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("other account reads the message: %v", err)
	}
}

func TestOptionalFieldsRoundTrip(t *testing.T) {
	s := newStore(t, store.Config{})
	acc := sid("AC")
	m := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Minute))
	price, unit, code := int64(-7500), "USD", int32(30007)
	ms, cs := "MG"+strings.Repeat("a", 32), "HX"+strings.Repeat("b", 32)
	sent := m.DateCreated.Add(time.Second)
	long := strings.Repeat("a long WhatsApp body that compresses well. ", 40)
	m.Body, m.PriceMicros, m.PriceUnit, m.ErrorCode = &long, &price, &unit, &code
	m.MessagingServiceSID, m.ContentSID, m.DateSent = &ms, &cs, &sent
	m.Tags = map[string]string{"campaign": "black-friday", "team": "growth"}
	m.NumMedia = 2
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	got, err := s.Get(context.Background(), acc, m.SID)
	if err != nil {
		t.Fatal(err)
	}
	got.Revision = 0
	if fmt.Sprintf("%+v", deref(got)) != fmt.Sprintf("%+v", deref(*m)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", deref(got), deref(*m))
	}
	// A later event without the optional fields removes them.
	n := withSeq(m, 2, postflight.StatusRead)
	n.PriceMicros, n.PriceUnit, n.ErrorCode, n.Tags, n.DateSent = nil, nil, nil, nil, nil
	wantOutcomes(t, write(t, s, n), postflight.Applied)
	got, _ = s.Get(context.Background(), acc, m.SID)
	if got.PriceMicros != nil || got.Tags != nil || got.DateSent != nil || *got.Body != "body of 2" {
		t.Fatalf("stale optional fields survived: %+v", deref(got))
	}
}

func deref(m postflight.Message) string {
	s := fmt.Sprintf("%s %s %v %v %v %s %s %d %d %v %v %v", m.SID, m.AccountSID, m.Status, m.Channel, m.Direction, m.From, m.To, m.NumSegments, m.NumMedia, m.Tags, m.DateCreated, m.DateUpdated)
	for _, p := range []*string{m.Body, m.PriceUnit, m.MessagingServiceSID, m.ContentSID} {
		if p != nil {
			s += " " + *p
		} else {
			s += " <nil>"
		}
	}
	if m.PriceMicros != nil {
		s += fmt.Sprint(" ", *m.PriceMicros)
	}
	if m.ErrorCode != nil {
		s += fmt.Sprint(" ", *m.ErrorCode)
	}
	if m.DateSent != nil {
		s += " " + m.DateSent.String()
	}
	return s
}

func TestTombstoneWinsOverLaterEvents(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	m := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	if err := s.Delete(ctx, acc, m.SID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, acc, m.SID); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	wantOutcomes(t, write(t, s, withSeq(m, 99, postflight.StatusRead)), postflight.Tombstoned)
	wantOutcomes(t, write(t, s, m), postflight.Tombstoned)
	if _, err := s.Get(ctx, acc, m.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("resurrected: %v", err)
	}
	// A tombstone written before the first event blocks it too.
	early := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	if err := s.Delete(ctx, acc, early.SID); err != nil {
		t.Fatal(err)
	}
	wantOutcomes(t, write(t, s, early), postflight.Tombstoned)
	page, err := s.List(ctx, store.ListQuery{Account: acc, Start: time.Now().Add(-48 * time.Hour), End: time.Now(), PageSize: 10})
	if err != nil || len(page.Messages) != 0 {
		t.Fatalf("list after delete: %v, %d messages", err, len(page.Messages))
	}
}

func TestRedactionAndPriceCorrectionArePinned(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	m := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	price, unit := int64(-100), "USD"
	m.PriceMicros, m.PriceUnit = &price, &unit
	wantOutcomes(t, write(t, s, m), postflight.Applied)
	fixed, eur := int64(-90), "EUR"
	got, err := s.Update(ctx, acc, m.SID, store.Patch{Redact: true, PriceMicros: &fixed, PriceUnit: &eur}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Body != "" || *got.PriceMicros != -90 {
		t.Fatalf("patch result %+v", deref(got))
	}
	stale := got.Revision - 1
	if _, err := s.Update(ctx, acc, m.SID, store.Patch{Redact: true}, &stale); !errors.Is(err, postflight.ErrPreconditionFailed) {
		t.Fatalf("stale If-Match: %v", err)
	}
	later := withSeq(m, 7, postflight.StatusRead) // carries a body and the old price
	wantOutcomes(t, write(t, s, later), postflight.Applied)
	got, _ = s.Get(ctx, acc, m.SID)
	if got.Sequence != 7 || got.Status != postflight.StatusRead {
		t.Fatalf("later event not applied: %+v", deref(got))
	}
	if got.Body == nil || *got.Body != "" || *got.PriceMicros != -90 || *got.PriceUnit != "EUR" {
		t.Fatalf("pinned fields overwritten: %+v", deref(got))
	}
	if _, err := s.Update(ctx, acc, sid("SM"), store.Patch{Redact: true}, nil); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("patch of a missing message: %v", err)
	}
}

func TestRejectedAndExpiredItemsDoNotFailTheBatch(t *testing.T) {
	s := newStore(t, store.Config{})
	acc := sid("AC")
	huge := msg(acc, 1, postflight.StatusDelivered, time.Now())
	raw := make([]byte, 450_000) // random: does not compress below 400 KB
	_, _ = rand.Read(raw)
	b := base64.StdEncoding.EncodeToString(raw)
	huge.Body = &b
	old := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-401*24*time.Hour))
	ok := msg(acc, 1, postflight.StatusDelivered, time.Now())
	res := write(t, s, huge, old, ok)
	wantOutcomes(t, res, postflight.Rejected, postflight.Expired, postflight.Applied)
	if res[0].Err == nil {
		t.Fatal("rejected without a reason")
	}
}

func TestConcurrentWritersKeepHighestSequence(t *testing.T) {
	s := newStore(t, store.Config{})
	acc := sid("AC")
	const messages, writers = 20, 6
	base := make([]*postflight.Message, messages)
	for i := range base {
		base[i] = msg(acc, 0, postflight.StatusDelivered, time.Now().Add(-time.Minute))
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(w), 1))
			for round := range 5 {
				batch := make([]*postflight.Message, 0, messages)
				for _, m := range base {
					batch = append(batch, withSeq(m, int64(r.IntN(50)+round), postflight.StatusDelivered))
				}
				batch = append(batch[:0:0], batch...)
				res := make([]postflight.WriteResult, len(batch))
				for len(batch) > 0 {
					n := min(len(batch), store.MaxBatch)
					s.WriteBatch(context.Background(), batch[:n], res[:n])
					batch = batch[n:]
				}
			}
			// The winner of every message: seq 100 from writer 0 only.
			if w == 0 {
				var top []*postflight.Message
				for _, m := range base {
					top = append(top, withSeq(m, 100, postflight.StatusRead))
				}
				res := make([]postflight.WriteResult, len(top))
				s.WriteBatch(context.Background(), top, res)
			}
		}()
	}
	wg.Wait()
	for _, m := range base {
		got, err := s.Get(context.Background(), acc, m.SID)
		if err != nil || got.Sequence != 100 || got.Status != postflight.StatusRead {
			t.Fatalf("message %s: %v seq %d status %v", m.SID, err, got.Sequence, got.Status)
		}
	}
}

func TestListPagesNewestFirstAcrossShards(t *testing.T) {
	s := newStore(t, store.Config{DefaultShards: 4})
	ctx := context.Background()
	acc := sid("AC")
	now := time.Now().UTC().Truncate(time.Millisecond)
	var all []*postflight.Message
	for i := range 57 {
		m := msg(acc, 1, postflight.StatusDelivered, now.Add(-time.Duration(i%20)*time.Minute)) // ties on date_created
		if i%3 == 0 {
			m.Status, m.To = postflight.StatusFailed, "+15559990000"
		}
		all = append(all, m)
	}
	for len(all) > 0 {
		n := min(len(all), store.MaxBatch)
		for _, r := range write(t, s, all[:n]...) {
			if r.Outcome != postflight.Applied {
				t.Fatal(r)
			}
		}
		all = all[n:]
	}
	if _, err := s.SetShards(ctx, acc, time.Now(), 8); err != nil { // raise mid-way: old data stays readable
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		q     store.ListQuery
		count int
	}{
		{"all", store.ListQuery{}, 57},
		{"failed", store.ListQuery{Statuses: []postflight.Status{postflight.StatusFailed}}, 19},
		{"to", store.ListQuery{To: "+15559990000"}, 19},
		{"delivered-or-failed", store.ListQuery{Statuses: []postflight.Status{postflight.StatusFailed, postflight.StatusDelivered}}, 57},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Account, q.Start, q.End, q.PageSize = acc, now.Add(-time.Hour), now.Add(time.Millisecond), 10
			var got []postflight.Message
			for {
				page, err := s.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if page.More && len(page.Messages) != q.PageSize {
					t.Fatalf("non-final page of %d", len(page.Messages))
				}
				got = append(got, page.Messages...)
				if !page.More {
					break
				}
				q.After = page.Last
			}
			if len(got) != tc.count {
				t.Fatalf("%d messages, want %d", len(got), tc.count)
			}
			seen := map[string]bool{}
			for i, m := range got {
				if seen[m.SID] {
					t.Fatalf("duplicate %s", m.SID)
				}
				seen[m.SID] = true
				if i > 0 {
					prev := keydesign.IndexSK(got[i-1].DateCreated, got[i-1].SID)
					if cur := keydesign.IndexSK(m.DateCreated, m.SID); cur >= prev {
						t.Fatalf("out of order at %d", i)
					}
				}
			}
		})
	}
	// Half-open range: a message created exactly at End is excluded.
	page, err := s.List(ctx, store.ListQuery{Account: acc, Start: now.Add(-time.Hour), End: now, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if !m.DateCreated.Before(now) {
			t.Fatalf("message at %v included in [.., %v)", m.DateCreated, now)
		}
	}
}

func TestRetentionHidesOldRecordsAtOnce(t *testing.T) {
	s := newStore(t, store.Config{})
	ctx := context.Background()
	acc := sid("AC")
	old := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-10*24*time.Hour))
	fresh := msg(acc, 1, postflight.StatusDelivered, time.Now().Add(-time.Hour))
	wantOutcomes(t, write(t, s, old, fresh), postflight.Applied, postflight.Applied)
	if _, err := s.SetRetention(ctx, acc, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, acc, old.SID); !errors.Is(err, postflight.ErrNotFound) {
		t.Fatalf("old record visible: %v", err)
	}
	page, err := s.List(ctx, store.ListQuery{Account: acc, Start: time.Now().Add(-30 * 24 * time.Hour), End: time.Now(), PageSize: 10})
	if err != nil || len(page.Messages) != 1 || page.Messages[0].SID != fresh.SID {
		t.Fatalf("list: %v %+v", err, page.Messages)
	}
	if _, err := s.SetRetention(ctx, acc, 0); err == nil {
		t.Fatal("retention 0 accepted")
	}
}

// fakeClock is a store clock (Config.Now) that stands at start, to the
// millisecond, until the test moves it.
type fakeClock struct {
	start  time.Time
	offset atomic.Int64
}

func newFakeClock() *fakeClock { return &fakeClock{start: time.Now().UTC().Truncate(time.Millisecond)} }

// Now is start plus the last Set.
func (c *fakeClock) Now() time.Time { return c.start.Add(time.Duration(c.offset.Load())) }

// Set moves the clock to start + d.
func (c *fakeClock) Set(d time.Duration) { c.offset.Store(int64(d)) }

// startProxy starts a fault proxy in front of ep, closed when the test ends.
func startProxy(t *testing.T, ep string) *faultproxy.Proxy {
	t.Helper()
	px, err := faultproxy.Start(ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	return px
}
