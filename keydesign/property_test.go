package keydesign

// Property test of the key design as a whole, without DynamoDB: random
// shard-count histories (made only through Schedule.Change, so only the
// changes it allows), random messages written by writers whose view of the
// schedule is up to two refresh intervals stale, an in-memory index (a
// sorted set of sort keys per index partition key), and lists that fan out
// over Over(start, end) shards and merge newest first, page by page, the
// cursor going through a real page token, with the shard count raised
// between pages. Every message must be found by its base key and by every
// range that covers it, exactly once, in order, with exact page sizes.
// store/property_test.go checks the same against DynamoDB Local.

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// simIndex is the index by-date: g → sort keys, kept sorted.
type simIndex map[string][]string

func (ix simIndex) put(g, t string) {
	keys := ix[g]
	i, found := slices.BinarySearch(keys, t)
	if found {
		panic("duplicate index sort key " + t)
	}
	ix[g] = slices.Insert(keys, i, t)
}

// query is DynamoDB's Query on the index: g = pk AND t BETWEEN lo AND hi,
// descending, at most limit keys.
func (ix simIndex) query(pk, lo, hi string, limit int) []string {
	keys := ix[pk]
	i, _ := slices.BinarySearch(keys, lo)
	j := sort.SearchStrings(keys, hi)
	if j < len(keys) && keys[j] == hi {
		j++
	}
	i = max(i, j-limit)
	if i >= j {
		return nil
	}
	out := slices.Clone(keys[i:j])
	slices.Reverse(out)
	return out
}

// listPage is store.List's algorithm on the simulated index: one page of
// [start, end) strictly older than after.
func (ix simIndex) listPage(account string, s Schedule, start, end time.Time, after string, size int) (page []string, more bool) {
	hi := Before(IndexSKBound(end))
	if after != "" {
		if a := Before(after); a < hi {
			hi = a
		}
	}
	lo := IndexSKBound(start)
	if hi < lo {
		return nil, false
	}
	var all []string
	for k := range s.Over(start, end) {
		all = append(all, ix.query(IndexPK(account, k), lo, hi, size+1)...)
	}
	slices.Sort(all)
	slices.Reverse(all)
	if len(all) > size {
		return all[:size], true
	}
	return all, false
}

type simVersion struct {
	at time.Time // committed
	s  Schedule
}

type simMessage struct {
	sid     string
	created time.Time
	sk      string
}

func TestPropertyEveryMessageListedOnceInOrder(t *testing.T) {
	for seed := range uint64(80) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { listProperty(t, seed) })
	}
}

func listProperty(t *testing.T, seed uint64) {
	r := mrand.New(mrand.NewPCG(seed, 0x5eed))
	const (
		refresh = 10 * time.Second
		skew    = time.Minute
		lead    = 2*refresh + skew
		span    = 20 * time.Minute
	)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	counts := []int{1, 2, 3, 4, 5, 8, 16, 32}
	versions := []simVersion{{at: t0.Add(-time.Hour), s: Schedule{Default: counts[r.IntN(4)]}}}
	account, other := "AC"+strings.Repeat("1", 32), "AC"+strings.Repeat("2", 32)
	ix := simIndex{}
	base := map[[2]string]string{} // (p, s) → index sort key
	var msgs []simMessage

	// The timeline: shard changes and writes in time order.
	for now := t0; now.Before(t0.Add(span)); now = now.Add(time.Duration(r.IntN(4000)) * time.Millisecond) {
		if r.IntN(60) == 0 {
			cur := versions[len(versions)-1].s
			n := counts[r.IntN(len(counts))]
			from := now
			if r.IntN(2) == 0 {
				from = now.Add(time.Duration(r.Int64N(int64(2 * lead))))
			}
			next, err := cur.Change(now, from, lead, n)
			switch {
			case err != nil:
				// Refused: a decrease inside the lead or replacing an epoch in use.
				if n >= cur.At(from) && !strings.Contains(err.Error(), "in use") {
					t.Fatalf("raise to %d from %v refused: %v", n, from, err)
				}
			default:
				for c := now.Add(-time.Hour); c.Before(from); c = c.Add(10 * time.Second) {
					if next.At(c) != cur.At(c) {
						t.Fatalf("change from %v moved the count at %v: %d → %d", from, c, cur.At(c), next.At(c))
					}
				}
				versions = append(versions, simVersion{at: now, s: next})
			}
		}
		// A writer whose schedule is up to 2×refresh old writes a message
		// created up to skew in the future (or in the past).
		view := now.Add(-time.Duration(r.Int64N(int64(2*refresh) + 1)))
		var s Schedule
		for _, v := range versions {
			if !v.at.After(view) {
				s = v.s
			}
		}
		created := now.Add(time.Duration(r.Int64N(int64(skew+10*time.Minute))) - 10*time.Minute).Truncate(time.Millisecond)
		if r.IntN(5) == 0 && len(msgs) > 0 { // same millisecond as an earlier message
			created = msgs[r.IntN(len(msgs))].created
		}
		m := simMessage{sid: randSID(r), created: created}
		m.sk = IndexSK(created, m.sid)
		ix.put(IndexPK(account, Shard(m.sid, s.At(created))), m.sk)
		base[[2]string{m.sid, account}] = m.sk
		msgs = append(msgs, m)
		if r.IntN(3) == 0 { // another account's message, which no list of ours may return
			o := randSID(r)
			ix.put(IndexPK(other, Shard(o, 1+r.IntN(8))), IndexSK(created, o))
		}
	}

	// Get: every message by its base key, and not under another account.
	for _, m := range msgs {
		if base[[2]string{m.sid, account}] != m.sk {
			t.Fatalf("get %s: not found", m.sid)
		}
		if _, ok := base[[2]string{m.sid, other}]; ok {
			t.Fatalf("get %s under another account: found", m.sid)
		}
	}

	// Lists, after all writes, with the final schedule, raised between pages.
	final := versions[len(versions)-1]
	key := []byte("property")
	times := []time.Time{t0.Add(-20 * time.Minute), t0.Add(span + 2*time.Minute)}
	for _, v := range versions[1:] {
		for _, e := range v.s.Epochs {
			times = append(times, e.From, e.From.Add(time.Millisecond), e.From.Add(-time.Millisecond))
		}
	}
	for _, m := range msgs[:min(len(msgs), 20)] {
		times = append(times, m.created, m.created.Add(time.Millisecond))
	}
	for q := range 20 {
		start, end := times[r.IntN(len(times))], times[r.IntN(len(times))]
		if q == 0 {
			start, end = times[0], times[1]
		}
		if end.Before(start) {
			start, end = end, start
		}
		var want []string
		for _, m := range msgs {
			if !m.created.Before(start) && m.created.Before(end) {
				want = append(want, m.sk)
			}
		}
		slices.Sort(want)
		slices.Reverse(want)

		size := 1 + r.IntN(12)
		s, readAt := final.s, final.at.Add(span)
		fp := Fingerprint(account, start.String(), end.String())
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("query %d: more pages than messages", q)
			}
			page, more := ix.listPage(account, s, start, end, after, size)
			if more && len(page) != size {
				t.Fatalf("query %d: a non-final page of %d, page size %d", q, len(page), size)
			}
			got = append(got, page...)
			if !more {
				break
			}
			tok, err := EncodeToken(key, Cursor{Fingerprint: fp, After: page[len(page)-1], Issued: readAt})
			if err != nil {
				t.Fatal(err)
			}
			c, err := DecodeToken(key, tok, fp, readAt, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			after = c.After
			if r.IntN(4) == 0 { // a raise between pages: the next page queries more shards
				readAt = readAt.Add(time.Second)
				if up, err := s.Change(readAt, readAt, lead, min(s.At(readAt)*2, MaxShards)); err == nil {
					s = up
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %d [%v, %v) page size %d: listed %d messages, want %d\n got %v\nwant %v",
				q, start, end, size, len(got), len(want), got, want)
		}
	}
}
