// Package replay re-reads a range of a Kafka topic with its own reader
// (never the service's consumer group, whose offsets do not move) and
// either writes it again through ingest's decode and the store's
// conditional writes (Replay), or compares the range's final states with
// the store (Reconcile).
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Bound is one end of a range: a record time, or offsets.
type Bound struct {
	Time time.Time // non-zero: the first record at or after Time
	// Offsets by partition; AllPartitions applies to every partition not
	// named. Both empty: the start (or end) of the log.
	Offsets map[int32]int64
}

// AllPartitions is the Offsets key of a bare offset.
const AllPartitions int32 = -1

// ParseBound parses DESIGN §4's T|OFFSET: an RFC 3339 time, a bare offset
// (every partition), or partition:offset pairs separated by commas.
func ParseBound(s string) (Bound, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Bound{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return Bound{Time: t}, nil
	}
	b := Bound{Offsets: map[int32]int64{}}
	for _, part := range strings.Split(s, ",") {
		p, o, found := strings.Cut(strings.TrimSpace(part), ":")
		if !found {
			p, o = "", p
		}
		off, err := strconv.ParseInt(o, 10, 64)
		if err != nil || off < 0 {
			return Bound{}, fmt.Errorf("%q: want an RFC 3339 time, an offset, or partition:offset", s)
		}
		key := AllPartitions
		if found {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 {
				return Bound{}, fmt.Errorf("%q: bad partition %q", s, p)
			}
			key = int32(n)
		}
		b.Offsets[key] = off
	}
	return b, nil
}

func (b Bound) offset(p int32) (int64, bool) {
	if o, ok := b.Offsets[p]; ok {
		return o, true
	}
	o, ok := b.Offsets[AllPartitions]
	return o, ok
}

// Range is a half-open range [From, To) of a topic's records.
type Range struct {
	Topic      string
	From, To   Bound   // zero From: the oldest retained record; zero To: the end when the read starts
	Partitions []int32 // empty: every partition
}

// Part is one partition's resolved range [Start, End) of offsets.
type Part struct {
	Partition  int32
	Start, End int64
}

// Resolve turns r into offsets per partition against the topic as it is
// now: times through the broker's offset index, offsets clamped to what is
// retained. Partitions whose range is empty are left out.
func Resolve(client sarama.Client, r Range) ([]Part, error) {
	all, err := client.Partitions(r.Topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", r.Topic, err)
	}
	parts := all
	if len(r.Partitions) > 0 {
		parts = nil
		for _, p := range r.Partitions {
			if !slices.Contains(all, p) {
				return nil, fmt.Errorf("topic %s has no partition %d", r.Topic, p)
			}
			parts = append(parts, p)
		}
	}
	var out []Part
	for _, p := range parts {
		oldest, err := client.GetOffset(r.Topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("%s/%d oldest offset: %w", r.Topic, p, err)
		}
		newest, err := client.GetOffset(r.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("%s/%d newest offset: %w", r.Topic, p, err)
		}
		at := func(b Bound, def int64) (int64, error) {
			if !b.Time.IsZero() {
				o, err := client.GetOffset(r.Topic, p, b.Time.UnixMilli())
				if err != nil {
					return 0, fmt.Errorf("%s/%d offset at %s: %w", r.Topic, p, b.Time.Format(time.RFC3339), err)
				}
				if o < 0 { // no record at or after the time
					return newest, nil
				}
				return o, nil
			}
			if o, ok := b.offset(p); ok {
				return o, nil
			}
			return def, nil
		}
		start, err := at(r.From, oldest)
		if err != nil {
			return nil, err
		}
		end, err := at(r.To, newest)
		if err != nil {
			return nil, err
		}
		start, end = max(start, oldest), min(end, newest)
		if start < end {
			out = append(out, Part{Partition: p, Start: start, End: end})
		}
	}
	return out, nil
}

// Count returns the records (offsets) in parts.
func Count(parts []Part) int64 {
	var n int64
	for _, p := range parts {
		n += p.End - p.Start
	}
	return n
}

// idleEnd is how long a partition may deliver nothing, its range's data
// being in the log, before the rest is taken to be control records or
// compacted away (which a consumer never sees).
const idleEnd = 10 * time.Second

// readPart hands each record of one partition's range to fn, in offset
// order, waiting on lim (if not nil) before each. It stops at the range's
// end, at fn's first error, or when ctx ends.
func readPart(ctx context.Context, c sarama.Consumer, topic string, p Part, lim *rate.Limiter, fn func(context.Context, *sarama.ConsumerMessage) error) error {
	pc, err := c.ConsumePartition(topic, p.Partition, p.Start)
	if err != nil {
		return fmt.Errorf("read %s/%d from %d: %w", topic, p.Partition, p.Start, err)
	}
	defer pc.AsyncClose()
	idle := time.NewTimer(idleEnd)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-pc.Messages():
			if m.Offset >= p.End {
				return nil
			}
			if lim != nil {
				if err := lim.Wait(ctx); err != nil {
					return err
				}
			}
			if err := fn(ctx, m); err != nil {
				return err
			}
			if m.Offset >= p.End-1 {
				return nil
			}
			idle.Reset(idleEnd)
		case err := <-pc.Errors():
			if errors.Is(err.Err, sarama.ErrOffsetOutOfRange) {
				return fmt.Errorf("read %s/%d: %w (retention removed the range while reading)", topic, p.Partition, err)
			}
			// Other errors are retried by sarama; they are worth knowing.
			_ = err
		case <-idle.C:
			if pc.HighWaterMarkOffset() >= p.End {
				return nil
			}
			idle.Reset(idleEnd)
		}
	}
}

// partHandler processes one partition's records in order, then flushes
// after its last.
type partHandler struct {
	record func(context.Context, *sarama.ConsumerMessage) error
	flush  func(context.Context) error
}

// readParts runs readPart over parts, at most conc partitions at once, each
// with the handler start(p) returns.
func readParts(ctx context.Context, client sarama.Client, topic string, parts []Part, conc int, lim *rate.Limiter,
	start func(p Part) partHandler) error {
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer c.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, conc))
	for _, p := range parts {
		g.Go(func() error {
			h := start(p)
			if err := readPart(gctx, c, topic, p, lim, h.record); err != nil {
				return err
			}
			return h.flush(gctx)
		})
	}
	return g.Wait()
}

// SaramaConfig is the client configuration replay and reconcile use: their
// own consumer (no group), dead letters acknowledged by every replica.
func SaramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "postflight-replay"
	sc.Version = sarama.V2_8_0_0
	sc.Consumer.Return.Errors = true
	sc.Consumer.Fetch.Default = 1 << 20
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Retry.Max = 10
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	return sc
}
