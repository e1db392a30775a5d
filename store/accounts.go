package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// Account configuration lives in the same table, in one partition:
// p = "cfg", s = account SID, with the retention days (r), the shard
// schedule as JSON (sc) and a version (v) for optimistic updates. Every
// process loads the whole partition every ConfigRefresh (one paginated
// Query), so ingest never reads configuration per event. Only accounts that
// differ from the defaults have an item; at ~100 bytes each, ten thousand
// overrides are 1 MB per refresh per process.
const (
	cfgPK        = "cfg"
	aRetention   = "r"
	aRetFloor    = "rf" // retention floor (N, unix ms): see AccountConfig.RetentionFloor
	aSchedule    = "sc"
	aCfgVersion  = "v"
	aRestampFrom = "rs" // retention job: the index sort key it has re-stamped down to
)

// AccountConfig is one account's retention and index shard schedule.
type AccountConfig struct {
	RetentionDays int
	// RetentionFloor is the oldest date_created an event may have, and a
	// read may show, whatever the retention: every change of retention
	// raises it to the horizon of the policy it replaces (change time minus
	// the old days), since TTL may already have removed records older than
	// that, and an event written over a removed record would bring back what
	// a redaction, a tombstone's neighbour or a higher sequence had settled.
	// Zero: no floor.
	//
	// Not the old horizon minus ttlGrace, although records down to there are
	// still on disk at the change: their TTL fires within ttlGrace of it, the
	// oldest at once, before any re-stamp job can reach them, so admitting
	// them would show records about to vanish and let a replay write them
	// again after the sweep. Records above the floor were visible under the
	// old policy and have at least ttlGrace left: the job's time to reach
	// them.
	RetentionFloor time.Time
	Schedule       keydesign.Schedule
	// BadSchedule is why the stored shard schedule could not be read; the
	// rest of the configuration is used, with the default schedule for
	// writes (shard 0 is in every schedule, so lists still find them). Lists
	// of the account fail until "postflight shards set" writes a good one.
	BadSchedule error
	Version     int64 // 0: no stored item (defaults)
}

type cachedConfig struct {
	AccountConfig
	fetched time.Time
}

// accounts caches account configuration. The refresh loop replaces the whole
// map; the API's fresh reads update single entries.
type accounts struct {
	def AccountConfig
	mu  sync.RWMutex
	m   map[string]cachedConfig
}

func (a *accounts) init(cfg Config) {
	a.def = AccountConfig{RetentionDays: cfg.DefaultRetentionDays, Schedule: keydesign.Schedule{Default: cfg.DefaultShards}}
	a.m = map[string]cachedConfig{}
}

func (a *accounts) get(account string) (cachedConfig, bool) {
	a.mu.RLock()
	c, ok := a.m[account]
	a.mu.RUnlock()
	return c, ok
}

// put caches c unless a newer version is cached: a read that raced with a
// change (and returns after it) must not bring the old configuration back.
// Versions only grow, so the higher one is the newer. It returns the
// configuration cached, the newer of the two.
func (a *accounts) put(account string, c cachedConfig) AccountConfig {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.m[account]; ok && c.Version < old.Version {
		return old.AccountConfig
	}
	a.m[account] = c
	return c.AccountConfig
}

// Account returns the cached configuration of an account (defaults if it has
// none). Ingest uses it on every write; it never blocks on DynamoDB.
func (s *Store) Account(account string) AccountConfig {
	if c, ok := s.acc.get(account); ok {
		return c.AccountConfig
	}
	return s.acc.def
}

// FreshAccount returns an account's configuration no older than
// Config.ConfigMaxAge, reading it from DynamoDB when the cache is older. The
// API uses it so that a retention change hides old records at once.
func (s *Store) FreshAccount(ctx context.Context, account string) (AccountConfig, error) {
	if c, ok := s.acc.get(account); ok && s.cfg.Now().Sub(c.fetched) < s.cfg.ConfigMaxAge {
		return c.AccountConfig, nil
	}
	return s.readAccount(ctx, account)
}

// readAccount reads an account's configuration from DynamoDB (consistent
// read) and caches it (unless a newer version is cached). The cached entry
// is never evicted first: readers (ingest, on every write) keep the last
// known configuration until the new one replaces it, never the defaults.
func (s *Store) readAccount(ctx context.Context, account string) (AccountConfig, error) {
	now := s.cfg.Now()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            cfgKey(account),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return AccountConfig{}, fmt.Errorf("get account config: %w", err)
	}
	c := s.acc.def
	if out.Item != nil {
		if c, err = s.parseConfig(out.Item); err != nil {
			return AccountConfig{}, err
		}
		if c.BadSchedule != nil {
			s.log.Error("account shard schedule unreadable; using the rest of its configuration", "account", account, "err", c.BadSchedule)
		}
	}
	return s.acc.put(account, cachedConfig{AccountConfig: c, fetched: now}), nil
}

func cfgKey(account string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{keydesign.AttrPK: str(cfgPK), keydesign.AttrSK: str(account)}
}

func (s *Store) parseConfig(item map[string]types.AttributeValue) (AccountConfig, error) {
	c := s.acc.def
	if r, ok := nAttr(item, aRetention); ok {
		c.RetentionDays = int(r)
	}
	if f, ok := nAttr(item, aRetFloor); ok {
		c.RetentionFloor = time.UnixMilli(f).UTC()
	}
	if sc, ok := sAttr(item, aSchedule); ok {
		var sch keydesign.Schedule
		err := json.Unmarshal([]byte(sc), &sch)
		if err == nil {
			err = sch.Validate()
		}
		if err != nil {
			c.BadSchedule = fmt.Errorf("account schedule: %w", err)
		} else {
			c.Schedule = sch
		}
	}
	c.Version, _ = nAttr(item, aCfgVersion)
	return c, nil
}

// RefreshAccounts reloads the configuration of every account.
func (s *Store) RefreshAccounts(ctx context.Context) error {
	now := s.cfg.Now()
	m := map[string]cachedConfig{}
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#p = :p"),
		ExpressionAttributeNames:  map[string]string{"#p": keydesign.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(cfgPK)},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("load account configs: %w", err)
		}
		for _, item := range page.Items {
			account, _ := sAttr(item, keydesign.AttrSK)
			c, err := s.parseConfig(item)
			if err != nil {
				s.log.Error("skipping bad account config", "account", account, "err", err)
				continue
			}
			if c.BadSchedule != nil {
				s.log.Error("account shard schedule unreadable; writing with the default", "account", account, "err", c.BadSchedule)
			}
			m[account] = cachedConfig{AccountConfig: c, fetched: now}
		}
	}
	s.acc.mu.Lock()
	// Keep what changed while the query ran (a retention or shard change
	// made through this process): the reload must not undo it.
	for account, c := range s.acc.m {
		if c.Version > m[account].Version {
			m[account] = c
		}
	}
	s.acc.m = m
	s.acc.mu.Unlock()
	s.refreshed.Store(now.UnixNano())
	return nil
}

// ConfigStale returns an error wrapping postflight.ErrStaleConfig when the
// account configuration was last reloaded longer than
// Config.ConfigStaleAfter ago, nil otherwise (and before the first reload:
// a store nobody refreshes runs on its defaults and its own changes).
func (s *Store) ConfigStale() error {
	ns := s.refreshed.Load()
	if ns == 0 {
		return nil
	}
	age, bound := s.cfg.Now().Sub(time.Unix(0, ns)), s.cfg.ConfigStaleAfter()
	if age <= bound {
		return nil
	}
	return fmt.Errorf("%w: last reloaded %v ago, beyond the %v every process is assumed to keep", postflight.ErrStaleConfig, age.Round(time.Millisecond), bound)
}

// Run reloads account configuration every ConfigRefresh and runs the
// retention re-stamp jobs (retention.go) until ctx is done; it returns once
// both have stopped. A failed reload keeps the previous configuration, is
// logged and retried after a quarter of ConfigRefresh; past
// ConfigStaleAfter without a successful one, writes stop (ConfigStale).
func (s *Store) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.restamp.run(ctx) })
	t := time.NewTicker(s.cfg.ConfigRefresh)
	defer t.Stop()
	var hot <-chan time.Time // hot-account detection's check (hot.go)
	if s.hot != nil {
		ht := time.NewTicker(s.hot.every())
		defer ht.Stop()
		hot = ht.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hot:
			s.hot.check(ctx, s.cfg.Now())
		case <-t.C:
			if err := s.RefreshAccounts(ctx); err != nil && ctx.Err() == nil {
				// Try again sooner: past ConfigStaleAfter writes stop.
				t.Reset(max(s.cfg.ConfigRefresh/4, time.Millisecond))
				if serr := s.ConfigStale(); serr != nil {
					s.log.Error("account config refresh keeps failing; writes stop until it succeeds", "err", err, "stale", serr)
				} else {
					s.log.Warn("account config refresh failed; keeping the previous one", "err", err)
				}
			} else {
				t.Reset(s.cfg.ConfigRefresh)
			}
		}
	}
}

// updateAccount applies change to the stored configuration of an account
// with optimistic concurrency, retrying a few times on conflict.
func (s *Store) updateAccount(ctx context.Context, account string, change func(*AccountConfig) (bool, error)) (AccountConfig, error) {
	for range 5 {
		cur, err := s.readAccount(ctx, account) // read through: never evict

		if err != nil {
			return cur, err
		}
		next := cur
		changed, err := change(&next)
		if err != nil || !changed {
			return cur, err
		}
		sc, err := json.Marshal(next.Schedule)
		if err != nil {
			return cur, err
		}
		in := &dynamodb.UpdateItemInput{
			TableName:        &s.table,
			Key:              cfgKey(account),
			UpdateExpression: aws.String("SET #r = :r, #v = :nv"),
			ExpressionAttributeNames: map[string]string{
				"#r": aRetention, "#v": aCfgVersion,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":r": num(int64(next.RetentionDays)), ":nv": num(cur.Version + 1),
			},
		}
		if next.BadSchedule == nil { // an unreadable one stays as it is, for repair
			in.UpdateExpression = aws.String(*in.UpdateExpression + ", #sc = :sc")
			in.ExpressionAttributeNames["#sc"] = aSchedule
			in.ExpressionAttributeValues[":sc"] = str(string(sc))
		}
		if next.RetentionDays != cur.RetentionDays {
			// The re-stamp job of the new policy, and the floor below which
			// TTL may already have removed records, in the same write.
			if h := s.cfg.Now().Add(-days(cur.RetentionDays)).UTC().Truncate(time.Millisecond); h.After(next.RetentionFloor) {
				next.RetentionFloor = h
			}
			in.UpdateExpression = aws.String(*in.UpdateExpression + ", #rs = :rs, #rf = :rf")
			in.ExpressionAttributeNames["#rs"] = aRestampFrom
			in.ExpressionAttributeValues[":rs"] = str(s.restamp.newJob(next.RetentionDays))
			in.ExpressionAttributeNames["#rf"] = aRetFloor
			in.ExpressionAttributeValues[":rf"] = num(next.RetentionFloor.UnixMilli())
		}
		if cur.Version == 0 {
			in.ConditionExpression = aws.String("attribute_not_exists(#v)")
		} else {
			in.ConditionExpression = aws.String("#v = :v")
			in.ExpressionAttributeValues[":v"] = num(cur.Version)
		}
		_, err = s.db.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			continue
		}
		if err != nil {
			return cur, fmt.Errorf("update account config: %w", err)
		}
		next.Version = cur.Version + 1
		s.acc.put(account, cachedConfig{AccountConfig: next, fetched: s.cfg.Now()})
		if next.RetentionDays != cur.RetentionDays {
			s.restamp.poke()
		}
		return next, nil
	}
	return AccountConfig{}, ErrConflict
}

// SetRetention sets an account's retention policy in days.
func (s *Store) SetRetention(ctx context.Context, account string, days int) (AccountConfig, error) {
	if days < MinRetentionDays || days > MaxRetentionDays {
		return AccountConfig{}, fmt.Errorf("retention %d days out of range [%d,%d]", days, MinRetentionDays, MaxRetentionDays)
	}
	return s.updateAccount(ctx, account, func(c *AccountConfig) (bool, error) {
		changed := c.RetentionDays != days || c.Version == 0
		c.RetentionDays = days
		return changed, nil
	})
}

// SetShards sets an account's index shard count from time from on (see
// keydesign.Schedule.Change for which changes are allowed when); a from in
// the past means now.
func (s *Store) SetShards(ctx context.Context, account string, from time.Time, n int) (AccountConfig, error) {
	return s.updateAccount(ctx, account, func(c *AccountConfig) (bool, error) {
		now := s.cfg.Now()
		if from.Before(now) {
			from = now
		}
		next, err := c.Schedule.Change(now, from, s.cfg.ShardLead(), n)
		if err != nil {
			return false, err
		}
		changed := c.Version == 0 || !slices.EqualFunc(next.Epochs, c.Schedule.Epochs,
			func(a, b keydesign.Epoch) bool { return a.Shards == b.Shards && a.From.Equal(b.From) })
		changed = changed || c.BadSchedule != nil
		c.Schedule, c.BadSchedule = next, nil
		return changed, nil
	})
}
