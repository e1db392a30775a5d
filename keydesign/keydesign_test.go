package keydesign

import (
	"encoding/hex"
	"errors"
	"hash/fnv"
	"math"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"
)

func randSID(r *mrand.Rand) string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	p := "SM"
	if r.IntN(4) == 0 {
		p = "MM"
	}
	return p + hex.EncodeToString(b)
}

func TestIndexSKOrderAndRoundTrip(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 1000 {
		a := base.Add(time.Duration(r.Int64N(int64(400 * 24 * time.Hour)))).Truncate(time.Millisecond)
		b := base.Add(time.Duration(r.Int64N(int64(400 * 24 * time.Hour)))).Truncate(time.Millisecond)
		sa, sb := randSID(r), randSID(r)
		ka, kb := IndexSK(a, sa), IndexSK(b, sb)
		if (ka < kb) != (a.Before(b) || (a.Equal(b) && sa < sb)) {
			t.Fatalf("order of %s and %s disagrees with (time, sid)", ka, kb)
		}
		ta, sid, err := ParseIndexSK(ka)
		if err != nil || !ta.Equal(a) || sid != sa {
			t.Fatalf("round trip of %s: %v %v %v", ka, ta, sid, err)
		}
	}
}

// Before(bound) must separate keys exactly: k < bound ⇔ k <= Before(bound).
func TestBeforeSeparatesKeys(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 20000 {
		at := base.Add(time.Duration(r.IntN(5)) * time.Millisecond)
		k := IndexSK(at, randSID(r))
		var bound string
		switch r.IntN(3) {
		case 0:
			bound = IndexSKBound(base.Add(time.Duration(r.IntN(5)) * time.Millisecond))
		case 1:
			bound = IndexSK(base.Add(time.Duration(r.IntN(5))*time.Millisecond), randSID(r))
		default:
			bound = k // the cursor itself is excluded
		}
		if (k < bound) != (k <= Before(bound)) {
			t.Fatalf("key %s, bound %s, Before %s", k, bound, Before(bound))
		}
	}
}

func TestShardIsStableAndEven(t *testing.T) {
	r := mrand.New(mrand.NewPCG(5, 6))
	const n, samples = 32, 64000
	counts := make([]int, n)
	for range samples {
		s := randSID(r)
		if a, b := Shard(s, n), Shard(s, n); a != b {
			t.Fatal("unstable shard")
		}
		counts[Shard(s, n)]++
	}
	mean := float64(samples) / n
	for i, c := range counts {
		if math.Abs(float64(c)-mean) > 5*math.Sqrt(mean) {
			t.Fatalf("shard %d has %d of %d, mean %.0f", i, c, samples, mean)
		}
	}
	for range 1000 { // the stored layout depends on it: it must stay FNV-1a 64
		s := randSID(r)
		h := fnv.New64a()
		_, _ = h.Write([]byte(s))
		if Shard(s, 97) != int(h.Sum64()%97) {
			t.Fatalf("Shard(%s) is not FNV-1a 64 mod n", s)
		}
	}
	if Shard("SM0", 1) != 0 || Shard("SM0", 0) != 0 {
		t.Fatal("single shard must be 0")
	}
}

func TestScheduleAtAndOver(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Schedule{Default: 1, Epochs: []Epoch{{From: t0, Shards: 8}, {From: t0.Add(48 * time.Hour), Shards: 4}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		start, end time.Time
		at, over   int
	}{
		{"before", t0.Add(-time.Hour), t0, 1, 1},
		{"spans first", t0.Add(-time.Hour), t0.Add(time.Hour), 1, 8},
		{"inside", t0.Add(time.Hour), t0.Add(2 * time.Hour), 8, 8},
		{"spans decrease", t0.Add(47 * time.Hour), t0.Add(49 * time.Hour), 8, 8},
		{"after", t0.Add(49 * time.Hour), t0.Add(50 * time.Hour), 4, 4},
		{"end exclusive", t0.Add(-time.Hour), t0.Add(0), 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.At(tc.start); got != tc.at {
				t.Errorf("At = %d, want %d", got, tc.at)
			}
			if got := s.Over(tc.start, tc.end); got != tc.over {
				t.Errorf("Over = %d, want %d", got, tc.over)
			}
		})
	}
}

func TestScheduleChange(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	lead := time.Hour
	s := Schedule{Default: 2}
	up, err := s.Change(now, now, lead, 16)
	if err != nil || up.At(now) != 16 || up.At(now.Add(-time.Millisecond)) != 2 {
		t.Fatalf("raise now: %v %+v", err, up)
	}
	if _, err := up.Change(now, now.Add(time.Minute), lead, 4); !errors.Is(err, ErrTooSoon) {
		t.Fatalf("decrease inside the lead: %v", err)
	}
	down, err := up.Change(now, now.Add(2*time.Hour), lead, 4)
	if err != nil || down.At(now.Add(3*time.Hour)) != 4 {
		t.Fatalf("decrease after the lead: %v", err)
	}
	if _, err := down.Change(now, now.Add(-time.Second), lead, 32); err == nil {
		t.Fatal("epoch in the past accepted")
	}
	// Replacing a future epoch beyond the lead is fine; one within it is not.
	if _, err := down.Change(now, now.Add(90*time.Minute), lead, 64); err != nil {
		t.Fatalf("replace a future epoch: %v", err)
	}
	if _, err := down.Change(now.Add(110*time.Minute), now.Add(110*time.Minute), lead, 64); err == nil {
		t.Fatal("replaced an epoch that writers may already use")
	}
	same, err := down.Change(now, now.Add(3*time.Hour), lead, 4)
	if err != nil || len(same.Epochs) != len(down.Epochs) {
		t.Fatalf("no-op change added an epoch: %v %+v", err, same)
	}
}

func TestShardsFor(t *testing.T) {
	for _, tc := range []struct {
		units float64
		want  int
	}{{0, 1}, {500, 1}, {501, 2}, {10_000, 32}, {1e9, MaxShards}} {
		if got := ShardsFor(tc.units, 500); got != tc.want {
			t.Errorf("ShardsFor(%v) = %d, want %d", tc.units, got, tc.want)
		}
	}
}

func TestTokenRoundTripAndRefusals(t *testing.T) {
	key := []byte("k1")
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	after := IndexSK(now.Add(-time.Hour), "MM"+strings.Repeat("0f", 16))
	fp := Fingerprint("AC1", "to", "")
	tok, err := EncodeToken(key, Cursor{Fingerprint: fp, After: after, Issued: now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeToken(key, tok, fp, now.Add(time.Minute), time.Hour)
	if err != nil || c.After != after || !c.Issued.Equal(now) {
		t.Fatalf("round trip: %v %+v", err, c)
	}
	flip := []byte(tok)
	flip[10] ^= 1
	for _, tc := range []struct {
		name string
		key  []byte
		tok  string
		fp   uint64
		now  time.Time
		want error
	}{
		{"tampered", key, string(flip), fp, now, nil},
		{"other key", []byte("k2"), tok, fp, now, ErrTokenTampered},
		{"other query", key, tok, Fingerprint("AC1", "other", ""), now, ErrTokenMismatch},
		{"expired", key, tok, fp, now.Add(2 * time.Hour), ErrTokenExpired},
		{"garbage", key, "!!!", fp, now, ErrTokenMalformed},
		{"empty", key, "", fp, now, ErrTokenMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeToken(tc.key, tc.tok, tc.fp, tc.now, time.Hour)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecodeToken: no token makes the decoder panic or return a cursor that
// fails to re-encode to the same token.
func FuzzDecodeToken(f *testing.F) {
	key := []byte("fuzz")
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tok, _ := EncodeToken(key, Cursor{Fingerprint: 7, After: IndexSK(now, "SM"+strings.Repeat("a", 32)), Issued: now})
	f.Add(tok)
	f.Add("")
	f.Add(strings.Repeat("A", 78))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeToken(key, s, 7, now, time.Hour)
		if err != nil {
			return
		}
		again, err := EncodeToken(key, c)
		if err != nil || again != s {
			t.Fatalf("accepted %q but re-encodes to %q (%v)", s, again, err)
		}
	})
}

func TestFingerprintSeparatesParts(t *testing.T) {
	if Fingerprint("ab", "c") == Fingerprint("a", "bc") {
		t.Fatal("concatenation collision")
	}
}
