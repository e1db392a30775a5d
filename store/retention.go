package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// Retention re-stamp job
//
// DynamoDB's TTL deletes an item once its expiry attribute x has passed, and
// x is stamped at write time from the account's retention then. When the
// retention changes, reads apply the new policy at once (Get and List clamp
// to it), but the stored expiries still follow the old one: a shorter policy
// would keep records on disk longer than promised, and a longer one would let
// TTL delete records the policy now keeps. The re-stamp job rewrites
// x = date_created + days + ttlGrace (write.go) on every record of the
// account. After a raise, every record the old policy showed still has at
// least ttlGrace before its old x: the job must reach it within that.
//
// State. A job is a JSON value (restampJob) in the account's config item,
// attribute rs. SetRetention writes a fresh job in the same conditional
// UpdateItem that changes the policy, so a change can never be applied
// without its job, and a later change replaces an unfinished job. A page of
// progress is checkpointed with an update conditioned on the value last
// read, so a superseded job or a lost lease is noticed at the next page, and
// a restarted process resumes from the last checkpoint: at once after a
// graceful stop (which releases the lease), after Lease after a crash.
//
// Lease. The owner renews its lease by time, whenever a third of it has
// passed, also while it waits for the rate limiter in the middle of a page,
// so a low Rate never lets the lease lapse under a live owner. On a stop the
// lease is released (release): if the release's condition fails because the
// answer to an earlier checkpoint was lost (the write landed, the caller saw
// an error or its context end), the stored job is read again and released if
// this process still owns it; transient failures are retried with backoff
// until ReleaseTimeout. A release that still fails is logged: the next owner
// then waits out the lease.
//
// Order. A job starts Delay after the change, once every process's ingest
// has reloaded the new policy (every ConfigRefresh), so that no event stamped
// with the old policy lands behind the job. Within a job the records are
// walked oldest first across all index shards 0..max-1 at once (max being
// the largest shard count of any epoch of the schedule, so every record is
// covered whichever epoch wrote it): under one policy the oldest records are
// the nearest to their expiry, so the job saves them in the order TTL would
// take them. Its bound is then per record, not for the whole job: it reaches
// a record before its old x as long as it stays within ttlGrace of the
// sweep, that is, as long as it re-stamps at least as fast as the account
// wrote (its records per second, on average from the oldest kept record on)
// once the first ttlGrace is spent. (Walking one shard after another, as it
// did, the oldest records of the last shard waited for every other shard:
// the whole job had to end within the grace.) A page queries every shard for
// Page items after the checkpoint and re-stamps everything up to the
// smallest of the shards' last keys, in key order: at least Page items, and
// every shard is read again from there at the next page.
//
// Headroom. While it extends records, the job publishes the headroom of the
// record it extends nearest to its expiry (old x minus now, seconds:
// postflight.store.retention.headroom) and counts the records it reached
// after their old x had passed (postflight.store.retention.late): TTL may
// have deleted those, or others not seen at all, first. A job that cannot
// keep within the grace (a rate too low for the account, a long outage,
// a job stuck without an owner) shows as falling headroom long before the
// first late record: alerts PostflightRetentionHeadroomLow and
// PostflightRetentionLate (deploy/RUNBOOK.md). What it then loses are
// records the new policy keeps. They are above the floor, so a replay of the
// stream writes them again, but without a redaction or price correction
// they had (those lived only in the lost item).
//
// Writes. Items are read projected to p, s, t, x.
// Items already carrying the right x are skipped. A record below the
// retention floor (reads hide it for good, ingest refuses its events) is
// never extended, and is kept no later than ttlGrace after the change (a
// lower-then-raise whose lowering job was superseded before reaching it left
// it the old, longer x). The others get a PartiQL
// UPDATE, 25 to a BatchExecuteStatement, on condition that the item is still
// the same message and not a tombstone (a tombstone keeps its own expiry,
// see Delete). The revision is not bumped: re-stamping changes no field the
// API shows, so ETags stay valid. A token bucket holds the job to Rate items
// per second so that it never competes with ingest for capacity.
//
// Progress is logged (start or resume, every checkpoint at debug level,
// the end) and counted: postflight.store.retention.restamped (items),
// postflight.store.retention.scanned (items examined) and
// postflight.store.retention.jobs by outcome (done, superseded, failed).
//
// Known gap: an event write prepared with the old policy and retried for
// longer than Delay (a long DynamoDB outage) can still land with the old
// expiry after the job has passed its item.

// RestampConfig configures the retention re-stamp job. Zero fields take the
// defaults documented on them.
type RestampConfig struct {
	// Rate bounds the items re-stamped per second by this process; negative
	// means unlimited.
	Rate float64 // default 500
	// Page is the number of items read per index query, one query per
	// shard per page; a page re-stamps at least Page items (all shards
	// up to the smallest of their last keys) and is checkpointed.
	Page int // default 100
	// Delay is how long after a retention change its job starts: every
	// process's ingest must have reloaded the new policy by then.
	Delay time.Duration // default 2 × ConfigRefresh
	// Poll is how often the table is searched for jobs of other processes
	// and jobs to resume. A change made through this process starts its job
	// without waiting for a poll.
	Poll time.Duration // default 1m
	// Lease is how long a job stays owned by a process that stopped
	// checkpointing (crashed) before another may take it over.
	Lease time.Duration // default 1m
	// ReleaseTimeout bounds releasing the lease when the job stops, retries
	// included; a stop takes at most this long more.
	ReleaseTimeout time.Duration // default 5s
}

func (c *RestampConfig) setDefaults(configRefresh time.Duration) {
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Page == 0 {
		c.Page = 100
	}
	if c.Delay == 0 {
		c.Delay = 2 * configRefresh
	}
	if c.Poll == 0 {
		c.Poll = time.Minute
	}
	if c.Lease == 0 {
		c.Lease = time.Minute
	}
	if c.ReleaseTimeout == 0 {
		c.ReleaseTimeout = 5 * time.Second
	}
}

func (c *RestampConfig) validate() error {
	switch {
	case c.Page < 1 || c.Page > 1000:
		return fmt.Errorf("store: restamp page %d out of range [1,1000]", c.Page)
	case c.Delay < 0 || c.Poll < 0 || c.Lease < time.Second || c.ReleaseTimeout < 0:
		return errors.New("store: restamp delay, poll and release timeout must not be negative, lease at least 1s")
	}
	return nil
}

// restampJob is the value of rs. Upto is the checkpoint: every item of
// every shard up to and including index sort key Upto carries the new
// expiry.
//
// Shard and After are the checkpoint of the release that walked one shard
// after another (every item of shards below Shard, and of shard Shard up to
// After). A job resumed with them starts again from the oldest record, and
// a checkpoint clears them; a release that knows only them starts a job
// with Upto again from the beginning. Re-stamping is idempotent, so in a
// rolling deploy work may be done twice, never skipped.
type restampJob struct {
	Days  int    `json:"days"`
	Since int64  `json:"since"` // unix ms of the retention change
	Upto  string `json:"upto,omitempty"`
	Shard int    `json:"shard,omitempty"` // the old release's checkpoint
	After string `json:"after,omitempty"` // the old release's checkpoint
	Done  int64  `json:"done,omitempty"`  // items re-stamped so far
	Owner string `json:"owner,omitempty"` // process holding the lease
	Lease int64  `json:"lease,omitempty"` // unix ms the lease ends
	At    int64  `json:"at,omitempty"`    // unix ms of the last checkpoint that moved Upto on
}

// restamper runs the re-stamp jobs of its Store (see Store.Run).
type restamper struct {
	s       *Store
	cfg     RestampConfig
	owner   string
	kick    chan struct{} // buffered 1: a job was created here
	limiter *rate.Limiter
	table   string // quoted for PartiQL

	scanned metric.Int64Counter
	jobs    metric.Int64Counter
	late    metric.Int64Counter
	// nearest is the smallest old x (unix s, math.Float64bits) of the
	// records the last page that extended any extended; the headroom gauge
	// reads it minus now, so a job that stops making progress shows its
	// headroom falling. NaN: no job of this process is extending records,
	// and the gauge reads ttlGrace (nothing it knows of expires sooner than
	// that after a raise). It is reset when the job ends or is lost, not
	// when a page fails.
	nearest atomic.Uint64

	// seen is every pending job as this process last saw it (pass lists
	// them all, its own checkpoints update it): the stalled gauge.
	seenMu sync.Mutex
	seen   map[string]seenJob
	sawAt  time.Time // when pass (or a long job, every Poll) last listed them
}

// restampBatch is the most statements of one BatchExecuteStatement.
const restampBatch = 25

func (r *restamper) init(s *Store, m metric.Meter) error {
	r.s, r.cfg = s, s.cfg.Restamp
	r.owner = fmt.Sprintf("%016x", rand.Uint64())
	r.kick = make(chan struct{}, 1)
	lim := rate.Limit(r.cfg.Rate)
	if r.cfg.Rate < 0 {
		lim = rate.Inf
	}
	r.limiter = rate.NewLimiter(lim, max(restampBatch, int(r.cfg.Rate)))
	r.table = `"` + strings.ReplaceAll(s.table, `"`, `""`) + `"`
	var err error
	if r.scanned, err = m.Int64Counter("postflight.store.retention.scanned",
		metric.WithDescription("Items the retention job examined (re-stamped or already right).")); err != nil {
		return err
	}
	if r.jobs, err = m.Int64Counter("postflight.store.retention.jobs",
		metric.WithDescription("Retention re-stamp jobs ended, by outcome (done, superseded, failed).")); err != nil {
		return err
	}
	if r.late, err = m.Int64Counter("postflight.store.retention.late",
		metric.WithDescription("Records the retention job reached after their old expiry had passed: TTL may have deleted them, or others, before they were extended.")); err != nil {
		return err
	}
	r.late.Add(context.Background(), 0) // served from the start, for alerts
	r.setNearest(math.NaN())
	_, err = m.Float64ObservableGauge("postflight.store.retention.headroom", metric.WithUnit("s"),
		metric.WithDescription("While this process's retention job extends records: the time left before the old expiry of the nearest one of its last page that extended any (falling while the job makes no progress); the TTL grace (2 days) otherwise."),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			h := ttlGrace.Seconds()
			if x := math.Float64frombits(r.nearest.Load()); !math.IsNaN(x) {
				h = x - float64(s.cfg.Now().UnixMilli())/1e3
			}
			o.Observe(h)
			return nil
		}))
	if err != nil {
		return err
	}
	_, err = m.Float64ObservableGauge("postflight.store.retention.stalled", metric.WithUnit("s"),
		metric.WithDescription("Per account with a retention re-stamp job: how long since the job last checkpointed progress (or became due; 0 until then), as this process last saw it. The minimum over processes is the truth: one running another long job sees others' progress late."),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			now := s.cfg.Now()
			r.seenMu.Lock()
			defer r.seenMu.Unlock()
			for account, j := range r.seen {
				if now.Before(j.due) { // not yet due: not stalled
					o.Observe(0, metric.WithAttributes(attribute.String("account", account)))
					continue
				}
				since := j.due
				if j.progress.After(since) {
					since = j.progress
				}
				o.Observe(now.Sub(since).Seconds(), metric.WithAttributes(attribute.String("account", account)))
			}
			return nil
		}))
	return err
}

func (r *restamper) setNearest(x float64) { r.nearest.Store(math.Float64bits(x)) }

// seenJob is what the stalled gauge knows of a pending job.
type seenJob struct {
	due      time.Time // the change plus Delay: when the job may start
	progress time.Time // its last checkpoint that moved it on (zero: none)
}

// saw records the jobs pass listed: every pending job, none other.
func (r *restamper) saw(jobs []pending) {
	seen := make(map[string]seenJob, len(jobs))
	for _, p := range jobs {
		j := seenJob{due: time.UnixMilli(p.job.Since).Add(r.cfg.Delay)}
		if p.job.At > 0 {
			j.progress = time.UnixMilli(p.job.At)
		}
		seen[p.account] = j
	}
	r.seenMu.Lock()
	r.seen, r.sawAt = seen, time.Now()
	r.seenMu.Unlock()
}

// look lists the pending jobs again if Poll has passed since the last
// listing: a job that runs for hours must not leave this process's view of
// the others' progress hours old.
func (r *restamper) look(ctx context.Context) {
	r.seenMu.Lock()
	last := r.sawAt
	r.seenMu.Unlock()
	if time.Since(last) < r.cfg.Poll {
		return
	}
	if jobs, err := r.pending(ctx); err == nil {
		r.saw(jobs)
	}
}

// progressed records a checkpoint of this process that moved account's
// job on at at.
func (r *restamper) progressed(account string, at time.Time) {
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	if j, ok := r.seen[account]; ok {
		j.progress = at
		r.seen[account] = j
	}
}

// newJob returns the rs value SetRetention stores with a policy change.
func (r *restamper) newJob(days int) string {
	b, _ := json.Marshal(restampJob{Days: days, Since: r.s.cfg.Now().UnixMilli()})
	return string(b)
}

// poke wakes the job loop of this process (non-blocking).
func (r *restamper) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run looks for due jobs and runs them, one at a time, until ctx is done.
func (r *restamper) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return
		}
		timer.Reset(r.pass(ctx))
	}
}

// pending is a job as read, with the raw value its checkpoints compare with.
type pending struct {
	account string
	raw     string
	job     restampJob
}

// pass runs every job that is due and returns how long to wait before the
// next pass.
func (r *restamper) pass(ctx context.Context) time.Duration {
	jobs, err := r.pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.s.log.Warn("retention re-stamp: cannot list jobs", "err", err)
		}
		return min(r.cfg.Poll, 5*time.Second)
	}
	r.saw(jobs)
	wait := r.cfg.Poll
	for _, p := range jobs {
		now := r.s.cfg.Now()
		due := time.UnixMilli(p.job.Since).Add(r.cfg.Delay)
		if p.job.Owner != "" && p.job.Owner != r.owner && p.job.Lease > now.UnixMilli() {
			wait = min(wait, time.UnixMilli(p.job.Lease).Sub(now)+time.Second)
			continue
		}
		if due.After(now) {
			wait = min(wait, due.Sub(now))
			continue
		}
		if err := r.runJob(ctx, p); err != nil {
			if ctx.Err() != nil {
				return 0
			}
			r.jobs.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "failed")))
			r.s.log.Warn("retention re-stamp failed; will resume from the last checkpoint",
				"account", p.account, "err", err)
			wait = min(wait, 5*time.Second)
		}
	}
	return max(wait, 10*time.Millisecond)
}

// pending lists the accounts that have a re-stamp job.
func (r *restamper) pending(ctx context.Context) ([]pending, error) {
	s := r.s
	pg := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#p = :p"),
		FilterExpression:          aws.String("attribute_exists(#rs)"),
		ProjectionExpression:      aws.String("#s, #rs"),
		ExpressionAttributeNames:  map[string]string{"#p": keydesign.AttrPK, "#s": keydesign.AttrSK, "#rs": aRestampFrom},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(cfgPK)},
		ConsistentRead:            aws.Bool(true),
	})
	var out []pending
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list retention jobs: %w", err)
		}
		for _, item := range page.Items {
			account, _ := sAttr(item, keydesign.AttrSK)
			raw, _ := sAttr(item, aRestampFrom)
			p := pending{account: account, raw: raw}
			if err := json.Unmarshal([]byte(raw), &p.job); err != nil || p.job.Days < MinRetentionDays || p.job.Days > MaxRetentionDays {
				s.log.Error("retention re-stamp: skipping a malformed job", "account", account, "rs", raw, "err", err)
				continue
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// errLost means the job changed under us: superseded by a newer retention
// change, or taken over by another process.
var errLost = errors.New("retention job superseded or taken over")

// runJob claims p's job and runs it to the end, checkpointing every page.
func (r *restamper) runJob(ctx context.Context, p pending) (err error) {
	s := r.s
	start := time.Now()
	j := p.job
	if j.Upto == "" && (j.Shard > 0 || j.After != "") {
		// A checkpoint of the release that walked shard by shard: start
		// again from the oldest record (see restampJob).
		s.log.Info("retention re-stamp: restarting a job checkpointed shard by shard", "account", p.account, "shard", j.Shard)
	}
	j.Shard, j.After = 0, ""
	resumed := j.Upto != ""
	j.Owner, j.Lease = r.owner, s.cfg.Now().Add(r.cfg.Lease).UnixMilli()
	defer func() {
		// Runs after the deferred handler below, which makes a lost job
		// nil: a failed job keeps its last nearest expiry, so its headroom
		// keeps falling while it is retried.
		if err == nil {
			r.setNearest(math.NaN())
		}
	}()
	log := s.log.With("account", p.account, "days", j.Days)
	claimed := false
	defer func() {
		if errors.Is(err, errLost) {
			if claimed {
				r.jobs.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "superseded")))
				log.Info("retention re-stamp superseded by a newer change or another process", "done", p.job.Done)
			} // else someone else runs it, or it is gone: the next pass sees
			err = nil
			return
		}
		if err != nil {
			// Release the lease, so a restart (or another process) resumes
			// at once from the last checkpoint. Also when the claim itself
			// failed: its answer may have been lost after it landed.
			if rerr := r.release(ctx, &p); rerr != nil {
				log.Warn("retention re-stamp: cannot release the lease; the next owner waits until it ends",
					"lease_end", time.UnixMilli(p.job.Lease).UTC(), "err", rerr)
				return
			}
			if claimed {
				log.Info("retention re-stamp paused", "upto", p.job.Upto, "done", p.job.Done)
			}
		}
	}()
	if err := r.checkpoint(ctx, &p, j); err != nil {
		return err
	}
	claimed = true
	log.Info("retention re-stamp started", "resumed", resumed, "upto", j.Upto, "done", j.Done)
	for more := true; more; {
		acc, err := s.FreshAccount(ctx, p.account)
		if err != nil {
			return err
		}
		if err := r.renew(ctx, &p); err != nil {
			return err
		}
		var n int
		var upto string
		n, upto, more, err = r.page(ctx, &p, j, acc)
		if err != nil {
			return err
		}
		j.Done += int64(n)
		j.Upto = upto
		now := s.cfg.Now()
		j.Lease, j.At = now.Add(r.cfg.Lease).UnixMilli(), now.UnixMilli()
		if err := r.checkpoint(ctx, &p, j); err != nil {
			return err
		}
		r.progressed(p.account, now)
		r.look(ctx)
		log.Debug("retention re-stamp checkpoint", "upto", j.Upto, "done", j.Done)
	}
	if err := r.finish(ctx, p); err != nil {
		return err
	}
	r.seenMu.Lock()
	delete(r.seen, p.account) // done: nothing left to stall
	r.seenMu.Unlock()
	r.jobs.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "done")))
	log.Info("retention re-stamp done", "restamped", j.Done, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// maxShards is the largest shard count of any epoch of a schedule.
func maxShards(sc keydesign.Schedule) int {
	n := sc.Default
	for _, e := range sc.Epochs {
		n = max(n, e.Shards)
	}
	return n
}

// page re-stamps the next page of the walk: every shard's items after
// j.Upto, up to the smallest of the shards' last keys when some shard has
// more. It returns how many items it re-stamped, the index sort key it
// reached (the next checkpoint), and whether any shard has more.
func (r *restamper) page(ctx context.Context, p *pending, j restampJob, acc AccountConfig) (n int, upto string, more bool, err error) {
	s, account := r.s, p.account
	var items []map[string]types.AttributeValue
	var cut string // the smallest last key of a shard with more; "" none
	for shard := range maxShards(acc.Schedule) {
		in := &dynamodb.QueryInput{
			TableName:              &s.table,
			IndexName:              aws.String(keydesign.IndexName),
			KeyConditionExpression: aws.String("#g = :g"),
			ProjectionExpression:   aws.String("#p, #s, #t, #x"),
			ExpressionAttributeNames: map[string]string{
				"#g": keydesign.AttrIndexPK, "#t": keydesign.AttrIndexSK,
				"#p": keydesign.AttrPK, "#s": keydesign.AttrSK, "#x": aTTL,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{":g": str(keydesign.IndexPK(account, shard))},
			ScanIndexForward:          aws.Bool(true),
			Limit:                     aws.Int32(int32(r.cfg.Page)),
		}
		if j.Upto != "" {
			in.KeyConditionExpression = aws.String("#g = :g AND #t > :a")
			in.ExpressionAttributeValues[":a"] = str(j.Upto)
		}
		start := time.Now()
		out, err := s.db.Query(ctx, in)
		s.observe(ctx, "restamp_query", start, err)
		if err != nil {
			return 0, "", false, fmt.Errorf("retention re-stamp: query shard %d: %w", shard, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) > 0 {
			// The evaluated key, not the last item: it is there even
			// if a page came back empty.
			last, _ := sAttr(out.LastEvaluatedKey, keydesign.AttrIndexSK)
			if last == "" {
				return 0, "", false, fmt.Errorf("retention re-stamp: shard %d: a page ended without an index sort key", shard)
			}
			if !more || last < cut {
				cut = last
			}
			more = true
		}
	}
	// Within one account the index sort key (date_created, SID) is unique
	// across shards: a message is in one shard.
	idx := func(item map[string]types.AttributeValue) string {
		t, _ := sAttr(item, keydesign.AttrIndexSK)
		return t
	}
	if more {
		items = slices.DeleteFunc(items, func(item map[string]types.AttributeValue) bool { return idx(item) > cut })
	}
	slices.SortFunc(items, func(a, b map[string]types.AttributeValue) int { return strings.Compare(idx(a), idx(b)) })
	upto = j.Upto
	if more {
		upto = cut
	} else if len(items) > 0 {
		upto = idx(items[len(items)-1])
	}
	now := s.cfg.Now().Unix()
	nearest := math.Inf(1) // the smallest old x of the records extended
	late := 0
	var stmts []types.BatchStatementRequest
	for _, item := range items {
		t := idx(item)
		sid, _ := sAttr(item, keydesign.AttrPK)
		created, _, perr := keydesign.ParseIndexSK(t)
		if perr != nil || sid == "" {
			s.log.Error("retention re-stamp: skipping a malformed index item", "account", account, "t", t)
			continue
		}
		want := expiry(created, j.Days).Unix()
		x, hasX := nAttr(item, aTTL)
		if created.Before(acc.RetentionFloor) {
			// Hidden for good (retentionCutoff), and refused at ingest:
			// never extended, and kept no later than ttlGrace after the
			// change. It was past the policy in force then, which had it
			// removed by then at the latest; only a lowering's job
			// superseded before it got here leaves it a later x.
			want = min(want, time.UnixMilli(j.Since).Add(ttlGrace).Unix())
			if hasX {
				want = min(want, x)
			}
		}
		switch {
		case hasX && x == want:
			continue
		case hasX && x < want && created.Add(days(j.Days)).Unix() > now:
			// Extended, and shown by the new policy: was it still there
			// in time? (One the new policy hides is not at risk: a
			// lowering by less than the grace extends records written
			// before the grace, which it hides.)
			nearest = min(nearest, float64(x))
			if x <= now {
				late++
			}
		}
		stmts = append(stmts, types.BatchStatementRequest{
			Statement: aws.String(`UPDATE ` + r.table + ` SET "` + aTTL + `"=? WHERE "` + keydesign.AttrPK + `"=? AND "` +
				keydesign.AttrSK + `"=? AND "` + keydesign.AttrIndexSK + `"=? AND "` + aDeleted + `" IS MISSING`),
			Parameters: []types.AttributeValue{num(want), str(sid), str(account), str(t)},
		})
	}
	r.scanned.Add(ctx, int64(len(items)))
	if !math.IsInf(nearest, 1) {
		r.setNearest(nearest)
	} // else nothing extended, nothing at risk: the last value stands until the job ends
	if late > 0 {
		r.late.Add(ctx, int64(late))
		s.log.Warn("retention re-stamp reached records after their old expiry: TTL may have deleted some first",
			"account", account, "late", late)
	}
	for len(stmts) > 0 {
		batch := stmts[:min(restampBatch, len(stmts))]
		stmts = stmts[len(batch):]
		k, err := r.execute(ctx, p, batch)
		n += k
		if err != nil {
			return n, "", false, err
		}
	}
	return n, upto, more, nil
}

// execute runs one batch of re-stamp statements and returns how many applied.
// A statement whose condition failed (the item was deleted or replaced since
// the index read) is skipped; throttling or an outage fails the page, which
// is then retried from the last checkpoint (re-stamping is idempotent).
func (r *restamper) execute(ctx context.Context, p *pending, batch []types.BatchStatementRequest) (int, error) {
	s := r.s
	if err := r.wait(ctx, p, len(batch)); err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := s.db.BatchExecuteStatement(ctx, &dynamodb.BatchExecuteStatementInput{Statements: batch})
	s.observe(ctx, "restamp", start, err)
	if err == nil && len(out.Responses) != len(batch) {
		err = fmt.Errorf("batch of %d statements answered with %d responses", len(batch), len(out.Responses))
	}
	if err != nil {
		return 0, fmt.Errorf("retention re-stamp: %w", err)
	}
	n := 0
	var failed error
	for i, resp := range out.Responses {
		switch {
		case resp.Error == nil:
			n++
		case resp.Error.Code == types.BatchStatementErrorCodeEnumConditionalCheckFailed:
		case statementOutcome(resp.Error.Code) == postflight.Rejected:
			s.log.Error("retention re-stamp: statement rejected", "statement", i, "code", resp.Error.Code,
				"message", aws.ToString(resp.Error.Message))
		default:
			failed = &StatementError{Code: string(resp.Error.Code), Message: aws.ToString(resp.Error.Message)}
		}
	}
	s.m.retention.Add(ctx, int64(n))
	if failed != nil {
		return n, fmt.Errorf("retention re-stamp: %w", failed)
	}
	return n, nil
}

// wait takes n items from the rate limiter, renewing p's lease while it
// waits, so that a low rate never lets the lease lapse.
func (r *restamper) wait(ctx context.Context, p *pending, n int) error {
	res := r.limiter.ReserveN(time.Now(), n)
	if !res.OK() {
		return fmt.Errorf("retention re-stamp: %d items exceed the rate limiter's burst", n)
	}
	ready := time.Now().Add(res.Delay())
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if err := r.renew(ctx, p); err != nil {
			res.Cancel()
			return err
		}
		d := time.Until(ready)
		if d <= 0 {
			return nil
		}
		t.Reset(min(d, r.cfg.Lease/3))
		select {
		case <-ctx.Done():
			res.Cancel()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// renew extends p's lease, with its last checkpointed progress, once a third
// of it has passed.
func (r *restamper) renew(ctx context.Context, p *pending) error {
	now := r.s.cfg.Now()
	if time.UnixMilli(p.job.Lease).Sub(now) > r.cfg.Lease*2/3 {
		return nil
	}
	j := p.job
	j.Lease = now.Add(r.cfg.Lease).UnixMilli()
	return r.checkpoint(ctx, p, j)
}

// release gives up p's lease, keeping its progress, within ReleaseTimeout
// (even though ctx may have ended: releasing is how a stop hands the job on).
// If the stored job is no longer the one last read, the answer to an earlier
// checkpoint may have been lost: the job is read again and released if this
// process still owns it. Transient failures are retried with backoff.
func (r *restamper) release(ctx context.Context, p *pending) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ReleaseTimeout)
	defer cancel()
	op := func() (struct{}, error) {
		rel := p.job
		rel.Owner, rel.Lease = "", 0
		err := r.checkpoint(ctx, p, rel)
		if !errors.Is(err, errLost) {
			return struct{}{}, err
		}
		cur, ok, err := r.read(ctx, p.account)
		switch {
		case err != nil:
			return struct{}{}, err
		case !ok || cur.job.Owner != r.owner || cur.job.Since != p.job.Since || cur.job.Days != p.job.Days:
			return struct{}{}, nil // superseded, finished or taken over: nothing of ours to release
		}
		*p = cur
		return struct{}{}, errLost // ours after all: release what is stored now
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, time.Second
	_, err := backoff.Retry(ctx, op, backoff.WithBackOff(bo))
	return err
}

// read returns the account's stored job (ok false: there is none).
func (r *restamper) read(ctx context.Context, account string) (p pending, ok bool, err error) {
	s := r.s
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      cfgKey(account),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#rs"),
		ExpressionAttributeNames: map[string]string{"#rs": aRestampFrom},
	})
	if err != nil {
		return p, false, fmt.Errorf("get retention job: %w", err)
	}
	raw, ok := sAttr(out.Item, aRestampFrom)
	if !ok {
		return p, false, nil
	}
	p = pending{account: account, raw: raw}
	if err := json.Unmarshal([]byte(raw), &p.job); err != nil {
		return p, false, fmt.Errorf("retention job %s: %w", strconv.Quote(raw), err)
	}
	return p, true, nil
}

// checkpoint replaces p's stored job by j if it is still the one last read,
// and makes j the one last read. errLost: it is not.
func (r *restamper) checkpoint(ctx context.Context, p *pending, j restampJob) error {
	s := r.s
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       cfgKey(p.account),
		UpdateExpression:          aws.String("SET #rs = :new"),
		ConditionExpression:       aws.String("#rs = :old"),
		ExpressionAttributeNames:  map[string]string{"#rs": aRestampFrom},
		ExpressionAttributeValues: map[string]types.AttributeValue{":new": str(string(b)), ":old": str(p.raw)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errLost
	}
	if err != nil {
		return fmt.Errorf("retention re-stamp checkpoint: %w", err)
	}
	p.raw, p.job = string(b), j
	return nil
}

// finish removes p's job if it is still the one last read.
func (r *restamper) finish(ctx context.Context, p pending) error {
	s := r.s
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       cfgKey(p.account),
		UpdateExpression:          aws.String("REMOVE #rs"),
		ConditionExpression:       aws.String("#rs = :old"),
		ExpressionAttributeNames:  map[string]string{"#rs": aRestampFrom},
		ExpressionAttributeValues: map[string]types.AttributeValue{":old": str(p.raw)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errLost
	}
	if err != nil {
		return fmt.Errorf("retention re-stamp finish: %w", err)
	}
	return nil
}
