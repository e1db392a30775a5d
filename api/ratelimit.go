package api

import (
	"container/list"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
)

// Rate limits
//
// Every /v1 request, once authenticated and authorized, takes one token from
// two buckets: its bearer token's (keyed by the token's name in the auth
// file) and its account's. Either empty is a 429 with Retry-After, the time
// until that bucket has a token again, and the other bucket is refunded. The
// token bucket stops one caller from crowding out the others; the account
// bucket stops many callers (or one wildcard token) from concentrating on
// one account, whose index partitions are what DynamoDB would throttle.
//
// Memory is bounded: each set keeps at most MaxLimiters buckets and evicts
// the least recently used. An evicted bucket comes back full; with the
// defaults a bucket idle for a second is full anyway, and the token rate
// bounds how fast one caller can cycle through accounts to evict others.

// limiterSet is a bounded set of token buckets keyed by string. A nil set
// allows everything. Safe for concurrent use.
type limiterSet struct {
	limit rate.Limit
	burst int
	max   int

	mu  sync.Mutex
	lru list.List // of *limiterEntry, most recently used first
	m   map[string]*list.Element
}

type limiterEntry struct {
	key string
	lim *rate.Limiter
}

// newLimiterSet returns a set of buckets refilling at perSec with burst, or
// nil (no limit) when perSec is negative.
func newLimiterSet(perSec float64, burst, maxEntries int) *limiterSet {
	if perSec < 0 {
		return nil
	}
	return &limiterSet{limit: rate.Limit(perSec), burst: burst, max: maxEntries, m: make(map[string]*list.Element)}
}

// reserve takes one token from key's bucket at now. It returns the
// reservation (to refund) and how long the caller would have to wait; a
// positive wait means refused, and the reservation is already cancelled.
func (s *limiterSet) reserve(key string, now time.Time) (*rate.Reservation, time.Duration) {
	if s == nil {
		return nil, 0
	}
	s.mu.Lock()
	var lim *rate.Limiter
	if e, ok := s.m[key]; ok {
		s.lru.MoveToFront(e)
		lim = e.Value.(*limiterEntry).lim
	} else {
		if s.lru.Len() >= s.max {
			oldest := s.lru.Back()
			s.lru.Remove(oldest)
			delete(s.m, oldest.Value.(*limiterEntry).key)
		}
		lim = rate.NewLimiter(s.limit, s.burst)
		s.m[key] = s.lru.PushFront(&limiterEntry{key: key, lim: lim})
	}
	s.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return nil, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

// len returns the number of buckets kept (tests).
func (s *limiterSet) len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// rateLimits are the API's two bucket sets.
type rateLimits struct {
	tokens   *limiterSet
	accounts *limiterSet
}

func newRateLimits(cfg *Config) rateLimits {
	return rateLimits{
		tokens:   newLimiterSet(cfg.RatePerToken, cfg.BurstPerToken, cfg.MaxLimiters),
		accounts: newLimiterSet(cfg.RatePerAccount, cfg.BurstPerAccount, cfg.MaxLimiters),
	}
}

// admit takes a token from the caller's and the account's bucket. It
// returns "" if admitted, else which limit refused ("token" or "account")
// and the Retry-After.
func (l rateLimits) admit(principal, account string, now time.Time) (string, time.Duration) {
	rt, wait := l.tokens.reserve(principal, now)
	if wait > 0 {
		return "token", wait
	}
	if _, wait := l.accounts.reserve(account, now); wait > 0 {
		if rt != nil {
			rt.CancelAt(now) // refund: the request is not served
		}
		return "account", wait
	}
	return "", 0
}

// limited wraps a handler of an authorized /v1 route (inside requireScope)
// with the rate limits.
func (s *Server) limited(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		if which, wait := s.limits.admit(p.Name, r.PathValue("account_sid"), time.Now()); which != "" {
			s.m.throttled.Add(r.Context(), 1, metric.WithAttributes(attribute.String("limit", which)))
			pr := tooManyRequests(wait)
			pr.Detail = "the " + which + " rate limit is exhausted; " + pr.Detail
			writeProblem(w, pr)
			return
		}
		next(w, r)
	}
}
