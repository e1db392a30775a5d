package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/replay"
	"github.com/postflight/postflight/store"
)

// errDiffer: reconcile found differences (exit 1).
var errDiffer = errors.New("the store differs from the stream")

// reconcileSummary is the --json summary.
type reconcileSummary struct {
	Topic          string         `json:"topic"`
	RecordsInRange int64          `json:"records_in_range"`
	Read           int64          `json:"read"`
	Invalid        int64          `json:"invalid"`
	Messages       int64          `json:"messages_checked"`
	Matched        int64          `json:"matched"`
	Missing        int64          `json:"missing"`
	Stale          int64          `json:"stale"`
	Unexpected     int64          `json:"unexpected"`
	Tombstoned     int64          `json:"tombstoned"`
	Expired        int64          `json:"expired"`
	Newer          int64          `json:"newer_than_range"`
	NotFinal       int64          `json:"not_final"`
	StreamDigest   string         `json:"stream_digest"`
	StoreDigest    string         `json:"store_digest"`
	Seconds        float64        `json:"seconds"`
	MessagesPerSec float64        `json:"messages_per_sec"`
	Repair         *repairSummary `json:"repair,omitempty"`
}

type repairSummary struct {
	Rewritten  int64 `json:"rewritten"`
	Superseded int64 `json:"superseded"`
	Removed    int64 `json:"removed"`
}

func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("postflight reconcile", stderr)
	var f rangeFlags
	f.register(fs)
	account := fs.String("account", "", "only this account's messages (AC…)")
	repair := fs.Bool("repair", false, "re-write the missing and stale messages through replay, remove the unexpected records")
	jsonFile := fs.String("json", "", "write the summary as JSON to this file")
	readRate := fs.Float64("read-rate", 1000, "DynamoDB keys read per second (strongly consistent: ~1 read unit each; 0: no limit)")
	window := fs.Int("window", 100_000, "distinct messages per partition held in memory before they are compared")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *account != "" && !postflight.ValidAccountSID(*account) {
		return fmt.Errorf("--account: %q is not an account SID", *account)
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	r, err := f.rangeOf(f.topic)
	if err != nil {
		return err
	}
	client, st, dec, err := f.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer client.Close()

	enc := json.NewEncoder(stdout)
	var mu sync.Mutex // emit is serialized by Reconcile; the map is read after it returns
	diffs := map[store.Key]replay.Difference{}
	emit := func(d replay.Difference) error {
		if *repair {
			mu.Lock()
			diffs[store.Key{Account: d.AccountSID, SID: d.MessageSID}] = d
			mu.Unlock()
		}
		return enc.Encode(d)
	}
	var rep replay.Report
	start := time.Now()
	stop := progress(stderr, func() (int64, int64, string) {
		return rep.Read.Load(), rep.Total, fmt.Sprintf("%d differences", rep.Differences())
	})
	err = replay.Reconcile(ctx, client, st, dec, replay.ReconcileConfig{
		Range: r, Account: *account, Rate: f.rate, ReadRate: *readRate, Window: *window, Concurrency: f.concurrency,
	}, &rep, emit, log)
	stop()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	sd, td := rep.Digests()
	sum := reconcileSummary{
		Topic: f.topic, RecordsInRange: rep.Total, Read: rep.Read.Load(), Invalid: rep.Invalid.Load(), Messages: rep.Messages.Load(),
		Matched: rep.Matched.Load(), Missing: rep.Missing.Load(), Stale: rep.Stale.Load(), Unexpected: rep.Unexpected.Load(),
		Tombstoned: rep.Tombstoned.Load(), Expired: rep.Expired.Load(), Newer: rep.Newer.Load(), NotFinal: rep.NotFinal.Load(),
		StreamDigest: sd, StoreDigest: td, Seconds: elapsed.Seconds(), MessagesPerSec: float64(rep.Messages.Load()) / max(elapsed.Seconds(), 1e-9),
	}
	if *repair && len(diffs) > 0 {
		rs, err := repairDiffs(ctx, f, r, diffs, client, st, dec, log)
		sum.Repair = rs
		if err != nil {
			return fmt.Errorf("repair: %w", err)
		}
	}
	fmt.Fprintf(stderr, "reconcile of %s: %d records, %d messages checked in %.1fs (%.0f/s)\n", f.topic, sum.Read, sum.Messages, sum.Seconds, sum.MessagesPerSec)
	fmt.Fprintf(stderr, "  matched %d, missing %d, stale %d, unexpected %d; not differences: tombstoned %d, expired %d, newer than the range %d, not final %d; invalid records %d\n",
		sum.Matched, sum.Missing, sum.Stale, sum.Unexpected, sum.Tombstoned, sum.Expired, sum.Newer, sum.NotFinal, sum.Invalid)
	fmt.Fprintf(stderr, "  digest stream %s, store %s\n", sd, td)
	if sum.Repair != nil {
		fmt.Fprintf(stderr, "  repair: re-written %d (superseded %d), removed %d; run reconcile again to confirm\n", sum.Repair.Rewritten, sum.Repair.Superseded, sum.Repair.Removed)
	}
	if *jsonFile != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if n := rep.Differences(); n > 0 {
		return fmt.Errorf("%w: %d differences", errDiffer, n)
	}
	return nil
}

// repairDiffs re-writes exactly the missing and stale messages by replaying
// the same range with only them selected, and removes each unexpected
// record if it still holds the sequence reconcile saw.
func repairDiffs(ctx context.Context, f rangeFlags, r replay.Range, diffs map[store.Key]replay.Difference,
	client sarama.Client, st *store.Store, dec *ingest.Decoder, log *slog.Logger) (*repairSummary, error) {
	rs := &repairSummary{}
	rewrite := map[store.Key]bool{}
	for k, d := range diffs {
		if d.Kind == replay.Unexpected {
			ok, err := st.RemoveRecord(ctx, k, *d.Stored)
			if err != nil {
				return rs, err
			}
			if ok {
				rs.Removed++
			}
			continue
		}
		rewrite[k] = true
	}
	if len(rewrite) == 0 {
		return rs, nil
	}
	var sum replay.Summary
	err := replay.Replay(ctx, client, st, dec, replay.Config{
		Range: r, DLQTopic: f.dlqTopic, Rate: f.rate, Concurrency: f.concurrency,
		Only: func(k store.Key) bool { return rewrite[k] },
	}, &sum, log)
	rs.Rewritten, rs.Superseded = sum.Written.Load(), sum.Superseded.Load()
	return rs, err
}
