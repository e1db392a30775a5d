package keydesign

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Epoch says that messages created at or after From are spread over Shards
// index shards (until the next epoch).
type Epoch struct {
	From   time.Time `json:"from"`
	Shards int       `json:"shards"`
}

// Schedule is one account's shard-count history. Before the first epoch the
// account has Default shards. Epochs are sorted by From, strictly increasing.
// A Schedule is a value: methods never modify the receiver's slice.
type Schedule struct {
	Default int     `json:"default"`
	Epochs  []Epoch `json:"epochs,omitempty"`
}

// Validate checks the invariants every stored schedule keeps.
func (s Schedule) Validate() error {
	if s.Default < 1 || s.Default > MaxShards {
		return fmt.Errorf("default shards %d out of range [1,%d]", s.Default, MaxShards)
	}
	for i, e := range s.Epochs {
		if e.Shards < 1 || e.Shards > MaxShards {
			return fmt.Errorf("epoch %d: shards %d out of range [1,%d]", i, e.Shards, MaxShards)
		}
		if i > 0 && !e.From.After(s.Epochs[i-1].From) {
			return fmt.Errorf("epoch %d: from %s not after the previous epoch", i, e.From.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// At returns the shard count for a message created at t.
func (s Schedule) At(t time.Time) int {
	n := s.Default
	for _, e := range s.Epochs {
		if e.From.After(t) {
			break
		}
		n = e.Shards
	}
	return n
}

// Over returns the number of shards a read of [start, end) must query: the
// largest count of any epoch overlapping the range.
func (s Schedule) Over(start, end time.Time) int {
	n := s.At(start)
	for _, e := range s.Epochs {
		if !e.From.After(start) {
			continue
		}
		if !e.From.Before(end) {
			break
		}
		n = max(n, e.Shards)
	}
	return n
}

// ErrTooSoon is returned by Change for a decrease dated inside the lead time.
var ErrTooSoon = errors.New("a shard decrease must be dated at least the lead time ahead")

// Change returns the schedule with the shard count set to n from time from
// on. Epochs from that time on are replaced. A decrease (relative to the
// count in force at from) must be dated at least lead after now; an increase
// may be dated now. Changing to the count already in force returns s as is.
func (s Schedule) Change(now, from time.Time, lead time.Duration, n int) (Schedule, error) {
	if n < 1 || n > MaxShards {
		return s, fmt.Errorf("shards %d out of range [1,%d]", n, MaxShards)
	}
	if from.Before(now) {
		return s, fmt.Errorf("epoch from %s is in the past: stored data would move", from.Format(time.RFC3339Nano))
	}
	cur := s.At(from)
	if n < cur && from.Before(now.Add(lead)) {
		return s, ErrTooSoon
	}
	// Replacing a future epoch is safe only while it is itself beyond every
	// writer's reach: more than lead ahead of now.
	i, _ := slices.BinarySearchFunc(s.Epochs, from, func(e Epoch, t time.Time) int { return e.From.Compare(t) })
	for _, e := range s.Epochs[i:] {
		if e.From.Before(now.Add(lead)) {
			return s, fmt.Errorf("epoch at %s is already in use and cannot be replaced", e.From.Format(time.RFC3339Nano))
		}
	}
	if cur == n && i == len(s.Epochs) {
		return s, nil
	}
	out := Schedule{Default: s.Default, Epochs: append(slices.Clone(s.Epochs[:i]), Epoch{From: from, Shards: n})}
	return out, out.Validate()
}

// ShardsFor returns the shard count that keeps each shard at or under
// perShard write units/s for an account writing unitsPerSec: a power of two
// (so an account's counts nest), between 1 and MaxShards.
func ShardsFor(unitsPerSec, perShard float64) int {
	n := 1
	for n < MaxShards && unitsPerSec > perShard*float64(n) {
		n *= 2
	}
	return n
}

// WriteUnits is the write units DynamoDB charges to write an item of the
// given size: one per started KiB.
func WriteUnits(itemBytes int) int {
	if itemBytes <= 0 {
		return 1
	}
	return (itemBytes + 1023) / 1024
}
