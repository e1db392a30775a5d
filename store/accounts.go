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
	aSchedule    = "sc"
	aCfgVersion  = "v"
	aRestampFrom = "rs" // retention job: the index sort key it has re-stamped down to
)

// AccountConfig is one account's retention and index shard schedule.
type AccountConfig struct {
	RetentionDays int
	Schedule      keydesign.Schedule
	Version       int64 // 0: no stored item (defaults)
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
// Versions only grow, so the higher one is the newer.
func (a *accounts) put(account string, c cachedConfig) {
	a.mu.Lock()
	if old, ok := a.m[account]; !ok || c.Version >= old.Version {
		a.m[account] = c
	}
	a.mu.Unlock()
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
	}
	s.acc.put(account, cachedConfig{AccountConfig: c, fetched: now})
	return c, nil
}

func cfgKey(account string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{keydesign.AttrPK: str(cfgPK), keydesign.AttrSK: str(account)}
}

func (s *Store) parseConfig(item map[string]types.AttributeValue) (AccountConfig, error) {
	c := s.acc.def
	if r, ok := nAttr(item, aRetention); ok {
		c.RetentionDays = int(r)
	}
	if sc, ok := sAttr(item, aSchedule); ok {
		var sch keydesign.Schedule
		if err := json.Unmarshal([]byte(sc), &sch); err != nil {
			return c, fmt.Errorf("account schedule: %w", err)
		}
		if err := sch.Validate(); err != nil {
			return c, fmt.Errorf("account schedule: %w", err)
		}
		c.Schedule = sch
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

// ErrConflict means concurrent changes kept winning; the caller may retry.
var ErrConflict = errors.New("concurrent change, retry")

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
			UpdateExpression: aws.String("SET #r = :r, #sc = :sc, #v = :nv"),
			ExpressionAttributeNames: map[string]string{
				"#r": aRetention, "#sc": aSchedule, "#v": aCfgVersion,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":r": num(int64(next.RetentionDays)), ":sc": str(string(sc)), ":nv": num(cur.Version + 1),
			},
		}
		if next.RetentionDays != cur.RetentionDays {
			// The re-stamp job of the new policy, in the same write.
			in.UpdateExpression = aws.String(*in.UpdateExpression + ", #rs = :rs")
			in.ExpressionAttributeNames["#rs"] = aRestampFrom
			in.ExpressionAttributeValues[":rs"] = str(s.restamp.newJob(next.RetentionDays))
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
		c.Schedule = next
		return changed, nil
	})
}
