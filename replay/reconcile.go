package replay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/time/rate"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/store"
)

// StateReader is what reconcile needs of the store; store.Store satisfies it.
type StateReader interface {
	States(ctx context.Context, keys []store.Key) ([]store.State, error)
	Account(account string) store.AccountConfig
}

var _ StateReader = (*store.Store)(nil)

// ReconcileConfig configures Reconcile. Zero fields take the defaults on them.
type ReconcileConfig struct {
	Range   Range
	Account string  // only this account's messages; empty: every account
	Rate    float64 // records read from Kafka per second; 0: no limit
	// ReadRate bounds the keys read from DynamoDB per second (strongly
	// consistent reads: one read unit per key up to 4 KB); 0: no limit.
	ReadRate float64
	// Window is the most distinct messages one partition holds in memory
	// before they are compared and forgotten, default 100,000 (≈ 25 MB);
	// Concurrency partitions run at once, default 4. See Reconcile.
	Window      int
	Concurrency int
	Now         func() time.Time // retention cut-off; default time.Now
}

func (c *ReconcileConfig) setDefaults() {
	if c.Range.Topic == "" {
		c.Range.Topic = "message-events"
	}
	if c.Window == 0 {
		c.Window = 100_000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Kind is the kind of a difference.
type Kind string

// The differences reconcile reports (DESIGN §4).
const (
	Missing    Kind = "missing"    // final in the stream, nothing stored (and not past retention or below its floor)
	Stale      Kind = "stale"      // stored with a lower sequence than the stream's final one
	Unexpected Kind = "unexpected" // stored with the sequence of an event that is not final
)

// Difference is one line of reconcile's NDJSON.
type Difference struct {
	Kind       Kind   `json:"kind"`
	AccountSID string `json:"account_sid"`
	MessageSID string `json:"message_sid"`
	// Expected is the stream's final sequence (absent: no final event);
	// Stored the stored one (absent: nothing stored).
	Expected *int64 `json:"expected_sequence,omitempty"`
	Stored   *int64 `json:"stored_sequence,omitempty"`
	// Source is the record that decides: the final event's, or for
	// unexpected the non-final event whose sequence is stored.
	Source string `json:"source"`
}

// Report is reconcile's summary; counters are updated while it runs.
type Report struct {
	Total      int64        `json:"records_in_range"`
	Read       atomic.Int64 `json:"-"`
	Invalid    atomic.Int64 `json:"-"` // records that do not decode (ingest dead-letters them)
	Messages   atomic.Int64 `json:"-"` // distinct messages compared (per window)
	Matched    atomic.Int64 `json:"-"`
	Missing    atomic.Int64 `json:"-"`
	Stale      atomic.Int64 `json:"-"`
	Unexpected atomic.Int64 `json:"-"`
	Tombstoned atomic.Int64 `json:"-"` // deleted through the API: not a difference
	Expired    atomic.Int64 `json:"-"` // final but past retention or below its floor, not stored: not a difference
	Newer      atomic.Int64 `json:"-"` // stored from an event after the range: not a difference
	NotFinal   atomic.Int64 `json:"-"` // no final event in range, nothing stored: not a difference

	streamDigest, storeDigest atomic.Uint64
}

// Differences returns the number of differences found.
func (r *Report) Differences() int64 { return r.Missing.Load() + r.Stale.Load() + r.Unexpected.Load() }

// Digests returns the order-independent digests of (account, SID,
// sequence) of each side, over the messages compared: the stream's final
// states and the stored records, leaving out on both sides what is not a
// difference by rule (tombstones, expired, records newer than the range).
// They are equal exactly when there are no differences (but for a 2^-64
// collision), whatever order the records were read in.
func (r *Report) Digests() (stream, stored string) {
	return fmt.Sprintf("%016x", r.streamDigest.Load()), fmt.Sprintf("%016x", r.storeDigest.Load())
}

// digest is one (account, SID, sequence) term: the first 8 bytes of its
// SHA-256. A side's digest is the sum of its terms mod 2^64, so the order
// of reading does not matter and a repeated term is not cancelled out.
func digest(k store.Key, seq int64) uint64 {
	h := sha256.New()
	h.Write([]byte(k.Account))
	h.Write([]byte{0})
	h.Write([]byte(k.SID))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, seq, 10))
	var sum [32]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// expect is what the stream says about one message within a window
// (about 250 bytes with its map entry). Offsets are within the window's
// partition.
type expect struct {
	final    int64 // highest final sequence, -1: none
	finalOff int64
	created  time.Time
	nonFinal []seqOff // non-final events' sequences (a handful)
}

type seqOff struct{ seq, off int64 }

// Reconcile reads the range and compares each message's expected final
// state (the final event with the highest sequence, the rule ingest
// applies) with the store, and calls emit for each difference (serialized,
// once per message). Comparison is by sequence: an API correction (a
// redaction, a price) never changes it, so it is never a difference; a
// tombstone is not a difference either.
//
// Memory is bounded by processing per partition window: each partition
// (a message's events all live on one, keyed by SID) is read in order and
// its messages are kept until Window distinct ones are held; they are then
// compared (batched, rate-limited strongly consistent reads) and
// forgotten. A message whose events straddle two windows is compared in
// each: the earlier comparison sees the store's newer sequence as beyond
// its window (not a difference), and a difference found in both is
// reported once. Memory is about Concurrency × Window × 250 bytes, plus the
// keys of the differences found.
func Reconcile(ctx context.Context, client sarama.Client, st StateReader, dec *ingest.Decoder, cfg ReconcileConfig, rep *Report,
	emit func(Difference) error, log *slog.Logger) error {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	parts, err := Resolve(client, cfg.Range)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	rep.Total = Count(parts)
	var lim, keyLim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/10)))
	}
	if cfg.ReadRate > 0 {
		keyLim = rate.NewLimiter(rate.Limit(cfg.ReadRate), max(store.MaxBatchGet, int(cfg.ReadRate/10)))
	}
	rc := &reconciler{cfg: cfg, st: st, dec: dec, rep: rep, emit: emit, keyLim: keyLim, log: log, reported: map[store.Key]bool{}, tombstoned: map[store.Key]bool{}}
	return readParts(ctx, client, cfg.Range.Topic, parts, cfg.Concurrency, lim, func(p Part) partHandler {
		w := map[store.Key]*expect{}
		return partHandler{
			record: func(ctx context.Context, m *sarama.ConsumerMessage) error {
				if err := rc.record(ctx, w, m); err != nil {
					return err
				}
				if len(w) >= cfg.Window {
					return rc.compare(ctx, w, m.Partition)
				}
				return nil
			},
			flush: func(ctx context.Context) error { return rc.compare(ctx, w, p.Partition) },
		}
	})
}

type reconciler struct {
	cfg    ReconcileConfig
	st     StateReader
	dec    *ingest.Decoder
	rep    *Report
	keyLim *rate.Limiter
	log    *slog.Logger

	mu       sync.Mutex // serializes emit; guards reported and tombstoned
	emit     func(Difference) error
	reported map[store.Key]bool
	// tombstoned: messages counted as tombstoned (a message whose events
	// straddle two windows is judged in each).
	tombstoned map[store.Key]bool
}

func (rc *reconciler) record(ctx context.Context, w map[store.Key]*expect, m *sarama.ConsumerMessage) error {
	rc.rep.Read.Add(1)
	ev, err := rc.dec.Decode(ctx, m.Value)
	if err != nil {
		var de *ingest.DecodeError
		if errors.As(err, &de) {
			rc.rep.Invalid.Add(1)
			return nil
		}
		return fmt.Errorf("decode %s: %w", ingest.Source(m.Topic, m.Partition, m.Offset), err)
	}
	if rc.cfg.Account != "" && ev.AccountSID != rc.cfg.Account {
		return nil
	}
	k := store.Key{Account: ev.AccountSID, SID: ev.MessageSID}
	e := w[k]
	if e == nil {
		e = &expect{final: -1}
		w[k] = e
	}
	if ev.Status.IsFinal() {
		if ev.Sequence > e.final {
			e.final, e.finalOff, e.created = ev.Sequence, m.Offset, ev.DateCreated
		}
	} else if !slices.ContainsFunc(e.nonFinal, func(x seqOff) bool { return x.seq == ev.Sequence }) {
		e.nonFinal = append(e.nonFinal, seqOff{ev.Sequence, m.Offset})
	}
	return nil
}

// compare checks a window's messages (of one partition) against the store
// and empties it.
func (rc *reconciler) compare(ctx context.Context, w map[store.Key]*expect, partition int32) error {
	keys := make([]store.Key, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	now := rc.cfg.Now()
	for len(keys) > 0 {
		n := min(len(keys), store.MaxBatchGet)
		chunk := keys[:n]
		keys = keys[n:]
		if rc.keyLim != nil {
			if err := rc.keyLim.WaitN(ctx, n); err != nil {
				return err
			}
		}
		states, err := rc.st.States(ctx, chunk)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		for _, s := range states {
			if err := rc.judge(s, w[s.Key], partition, now); err != nil {
				return err
			}
		}
	}
	clear(w)
	return nil
}

// expired reports whether a message of account created at created is past
// the account's retention at now or below its retention floor.
func (rc *reconciler) expired(account string, created, now time.Time) bool {
	acc := rc.st.Account(account)
	return !created.Add(time.Duration(acc.RetentionDays)*24*time.Hour).After(now) || created.Before(acc.RetentionFloor)
}

// judge compares one message and records the verdict.
func (rc *reconciler) judge(s store.State, e *expect, partition int32, now time.Time) error {
	rep := rc.rep
	rep.Messages.Add(1)
	seq := func(v int64) *int64 { return &v }
	source := func(off int64) string { return ingest.Source(rc.cfg.Range.Topic, partition, off) }
	storedIsNonFinal := func() (string, bool) {
		if i := slices.IndexFunc(e.nonFinal, func(x seqOff) bool { return x.seq == s.Sequence }); i >= 0 {
			return source(e.nonFinal[i].off), true
		}
		return "", false
	}
	switch {
	case s.Tombstone:
		rc.mu.Lock()
		if !rc.tombstoned[s.Key] { // once, though its events may straddle windows
			rc.tombstoned[s.Key] = true
			rep.Tombstoned.Add(1)
		}
		rc.mu.Unlock()
	case e.final >= 0 && (!s.Found || s.Sequence < e.final) && rc.expired(s.Account, e.created, now):
		// Missing or stale, but past the retention or below its floor (a
		// retention raise's): reads hide it, TTL removes it, and replay
		// refuses its events, so --repair could never mend it.
		rep.Expired.Add(1)
	case e.final >= 0 && !s.Found:
		rep.streamDigest.Add(digest(s.Key, e.final))
		return rc.report(Difference{Kind: Missing, AccountSID: s.Account, MessageSID: s.SID, Expected: seq(e.final), Source: source(e.finalOff)}, &rep.Missing)
	case e.final >= 0 && s.Sequence < e.final:
		rep.streamDigest.Add(digest(s.Key, e.final))
		rep.storeDigest.Add(digest(s.Key, s.Sequence))
		return rc.report(Difference{Kind: Stale, AccountSID: s.Account, MessageSID: s.SID, Expected: seq(e.final), Stored: seq(s.Sequence), Source: source(e.finalOff)}, &rep.Stale)
	case e.final >= 0 && s.Sequence == e.final:
		rep.Matched.Add(1)
		rep.streamDigest.Add(digest(s.Key, e.final))
		rep.storeDigest.Add(digest(s.Key, s.Sequence))
	case !s.Found:
		rep.NotFinal.Add(1)
	default: // stored above the stream's final state (or with no final state)
		src, ok := storedIsNonFinal()
		if !ok {
			rep.Newer.Add(1) // written by an event after the range (or an earlier window)
			return nil
		}
		if e.final >= 0 {
			rep.streamDigest.Add(digest(s.Key, e.final))
		}
		rep.storeDigest.Add(digest(s.Key, s.Sequence))
		d := Difference{Kind: Unexpected, AccountSID: s.Account, MessageSID: s.SID, Stored: seq(s.Sequence), Source: src}
		if e.final >= 0 {
			d.Expected = seq(e.final)
		}
		return rc.report(d, &rep.Unexpected)
	}
	return nil
}

// report emits d and counts it, unless this message was reported already
// (in an earlier window).
func (rc *reconciler) report(d Difference, count *atomic.Int64) error {
	k := store.Key{Account: d.AccountSID, SID: d.MessageSID}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.reported[k] {
		return nil
	}
	rc.reported[k] = true
	count.Add(1)
	if rc.emit != nil {
		return rc.emit(d)
	}
	return nil
}
