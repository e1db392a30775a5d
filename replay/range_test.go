package replay

import (
	"maps"
	"testing"
	"time"
)

func TestParseBound(t *testing.T) {
	for _, c := range []struct {
		in      string
		time    time.Time
		offsets map[int32]int64
		bad     bool
	}{
		{in: ""},
		{in: "2026-12-01T10:00:00Z", time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{in: "2026-12-01T12:00:00.5+02:00", time: time.Date(2026, 12, 1, 10, 0, 0, 5e8, time.UTC)},
		{in: "1200", offsets: map[int32]int64{AllPartitions: 1200}},
		{in: "0:100, 3:9", offsets: map[int32]int64{0: 100, 3: 9}},
		{in: "7,2:5", offsets: map[int32]int64{AllPartitions: 7, 2: 5}},
		{in: "-1", bad: true},
		{in: "x:1", bad: true},
		{in: "1:y", bad: true},
		{in: "yesterday", bad: true},
	} {
		b, err := ParseBound(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		if c.bad {
			continue
		}
		if !b.Time.Equal(c.time) || !maps.Equal(b.Offsets, c.offsets) && len(c.offsets)+len(b.Offsets) > 0 {
			t.Errorf("%q: %+v", c.in, b)
		}
	}
}
