package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"unlimited", Config{RatePerToken: -1, RatePerAccount: -1}, true},
		{"negative burst", Config{BurstPerToken: -1}, false},
		{"negative limiters", Config{MaxLimiters: -1}, false},
		{"negative inflight", Config{MaxListInflight: -2}, false},
		{"negative queue timeout", Config{ListQueueTimeout: -time.Second}, false},
		{"range", Config{DefaultRange: 10 * time.Hour, MaxRange: time.Hour}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.setDefaults()
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	c := Config{RatePerToken: 2.5}
	c.setDefaults()
	if c.BurstPerToken != 3 || c.BurstPerAccount != 200 || c.MaxListInflight != 32 || c.ListQueueTimeout != time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLimiterSetBounded(t *testing.T) {
	s := newLimiterSet(1, 1, 3)
	now := stubNow
	for i := range 10 {
		if _, wait := s.reserve(fmt.Sprint(i), now); wait != 0 {
			t.Fatalf("key %d refused on first use", i)
		}
	}
	if s.len() != 3 {
		t.Fatalf("%d buckets kept, want 3", s.len())
	}
	// The most recent keys are kept (and empty); the oldest were evicted.
	if _, wait := s.reserve("9", now); wait <= 0 {
		t.Fatal("key 9's bucket was not kept")
	}
	if _, wait := s.reserve("0", now); wait != 0 {
		t.Fatal("key 0's bucket was kept")
	}
	if newLimiterSet(-1, 1, 3) != nil {
		t.Fatal("a negative rate is not unlimited")
	}
	var none *limiterSet
	if _, wait := none.reserve("x", now); wait != 0 {
		t.Fatal("a nil set refused")
	}
}

// problemOf decodes a problem response.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	return p
}

func TestRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stubStore{}
		_, h := newStubServer(t, Config{RatePerToken: 2, RatePerAccount: 100, Now: time.Now}, st)
		list := "/v1/accounts/" + acc1 + "/messages"
		for i := range 2 {
			if rec := serve(h, "GET", list, tokBilling); rec.Code != 200 {
				t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
			}
		}
		rec := serve(h, "GET", list, tokBilling)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("third request: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
		}
		if p := problemOf(t, rec); p.Status != 429 || rec.Header().Get("Content-Type") != ContentTypeProblem {
			t.Fatalf("problem %+v", p)
		}
		if st.listCalls() != 2 {
			t.Fatalf("the store saw %d lists, want 2: a 429 reached it", st.listCalls())
		}
		// Another token has its own bucket.
		if rec := serve(h, "GET", list, tokSupport); rec.Code != 200 {
			t.Fatalf("support: %d", rec.Code)
		}
		// A 401 or 403 is answered before the limits, whatever the bucket.
		if rec := serve(h, "GET", list, ""); rec.Code != 401 {
			t.Fatalf("no token: %d", rec.Code)
		}
		if rec := serve(h, "GET", "/v1/accounts/"+acc2+"/messages", tokSupport); rec.Code != 403 {
			t.Fatalf("wrong account: %d", rec.Code)
		}
		time.Sleep(500 * time.Millisecond) // one token back at 2/s
		if rec := serve(h, "GET", list, tokBilling); rec.Code != 200 {
			t.Fatalf("after the refill: %d", rec.Code)
		}
	})
}

func TestAccountRateLimitRefundsTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stubStore{}
		_, h := newStubServer(t, Config{RatePerToken: 1, RatePerAccount: 1, Now: time.Now}, st)
		one := func(acc string) string { return "/v1/accounts/" + acc + "/messages/" + sid1 }
		if rec := serve(h, "GET", one(acc1), tokBilling); rec.Code != 200 {
			t.Fatalf("billing: %d", rec.Code)
		}
		// acc1's bucket is empty: the writer is refused by the account
		// limit, and its own token is refunded...
		rec := serve(h, "DELETE", one(acc1), tokWriter)
		if rec.Code != 429 {
			t.Fatalf("writer on acc1: %d, want 429", rec.Code)
		}
		if p := problemOf(t, rec); !bytes.Contains([]byte(p.Detail), []byte("account")) {
			t.Fatalf("detail %q does not name the account limit", p.Detail)
		}
		// ...so it may still act on acc2 at once.
		if rec := serve(h, "DELETE", one(acc2), tokWriter); rec.Code != 204 {
			t.Fatalf("writer on acc2: %d, want 204", rec.Code)
		}
	})
}

func TestUnlimited(t *testing.T) {
	_, h := newStubServer(t, Config{RatePerToken: -1, RatePerAccount: -1}, &stubStore{})
	for i := range 1000 {
		if rec := serve(h, "GET", "/v1/accounts/"+acc1+"/retention", tokBilling); rec.Code != 200 {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
}

// Identical concurrent lists share one store read; lists of another account
// or another query do not; a caller the auth rejects never joins.
func TestListCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stubStore{block: make(chan struct{})}
		_, h := newStubServer(t, Config{}, st)
		type result struct {
			code int
			body string
		}
		const n = 8
		results := make([]result, n+2)
		var wg sync.WaitGroup
		release := sync.OnceFunc(func() { close(st.block) })
		defer func() { release(); wg.Wait() }() // also when a check fails
		list := func(i int, acc, query, token string) {
			wg.Go(func() {
				rec := serve(h, "GET", "/v1/accounts/"+acc+"/messages"+query, token)
				results[i] = result{rec.Code, rec.Body.String()}
			})
		}
		for i := range n {
			list(i, acc1, "?status=read&status=delivered&page_size=1", tokBilling)
		}
		list(n, acc2, "?status=read&status=delivered&page_size=1", tokBilling) // another account
		list(n+1, acc1, "?status=read&page_size=1", tokSupport)                // another query
		synctest.Wait()
		if got := st.listCalls(); got != 3 {
			t.Fatalf("%d store reads for 3 distinct lists", got)
		}
		// While the reads are held, callers without the right to them are
		// answered at once, and not with the shared page.
		if rec := serve(h, "GET", "/v1/accounts/"+acc2+"/messages?status=read&status=delivered&page_size=1", tokSupport); rec.Code != 403 {
			t.Fatalf("support on acc2: %d", rec.Code)
		}
		if rec := serve(h, "GET", "/v1/accounts/"+acc1+"/messages?status=read&status=delivered&page_size=1", "nope"); rec.Code != 401 {
			t.Fatalf("unknown token: %d", rec.Code)
		}
		release()
		wg.Wait()
		for i, r := range results {
			if r.code != 200 {
				t.Fatalf("request %d: %d %s", i, r.code, r.body)
			}
		}
		for i := 1; i < n; i++ {
			if results[i].body != results[0].body {
				t.Fatalf("coalesced bodies differ:\n%s\n%s", results[0].body, results[i].body)
			}
		}
		var page messagePage
		if err := json.Unmarshal([]byte(results[n].body), &page); err != nil || page.Messages[0].AccountSID != acc2 {
			t.Fatalf("acc2's list got %s (%v)", results[n].body, err)
		}
		if page.NextPageToken == "" {
			t.Fatal("no next page token")
		}
		// The shared page token works for any of the callers.
		rec := serve(h, "GET", "/v1/accounts/"+acc1+"/messages?status=delivered&status=read&page_size=1&page_token="+firstToken(t, results[0].body), tokSupport)
		if rec.Code != 200 {
			t.Fatalf("next page: %d %s", rec.Code, rec.Body)
		}
	})
}

func firstToken(t *testing.T, body string) string {
	t.Helper()
	var page messagePage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	return page.NextPageToken
}

// A read whose first caller hangs up still answers the others.
func TestListCoalescingSurvivesTheFirstCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stubStore{block: make(chan struct{})}
		_, h := newStubServer(t, Config{}, st)
		target := "/v1/accounts/" + acc1 + "/messages"
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		release := sync.OnceFunc(func() { close(st.block) })
		defer func() { release(); wg.Wait() }()
		var first, second *httptest.ResponseRecorder
		wg.Go(func() {
			req := httptest.NewRequestWithContext(ctx, "GET", target, nil)
			req.Header.Set("Authorization", "Bearer "+tokBilling)
			first = httptest.NewRecorder()
			h.ServeHTTP(first, req)
		})
		synctest.Wait()
		wg.Go(func() { second = serve(h, "GET", target, tokBilling) })
		synctest.Wait()
		cancel()
		synctest.Wait()
		release()
		wg.Wait()
		if second.Code != 200 || st.listCalls() != 1 {
			t.Fatalf("second caller: %d after %d reads", second.Code, st.listCalls())
		}
		if first.Code != http.StatusServiceUnavailable {
			t.Fatalf("first caller, gone: %d", first.Code)
		}
	})
}

// At most MaxListInflight reads run at once; a list that cannot get a slot
// within ListQueueTimeout is a 503 with Retry-After.
func TestListInflightCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stubStore{block: make(chan struct{})}
		s, h := newStubServer(t, Config{MaxListInflight: 1, ListQueueTimeout: 100 * time.Millisecond}, st)
		var wg sync.WaitGroup
		release := sync.OnceFunc(func() { close(st.block) })
		defer func() { release(); wg.Wait() }()
		var held *httptest.ResponseRecorder
		wg.Go(func() { held = serve(h, "GET", "/v1/accounts/"+acc1+"/messages?to=a", tokBilling) })
		synctest.Wait()
		if s.lists.inflight() != 1 {
			t.Fatalf("%d reads in flight", s.lists.inflight())
		}
		start := time.Now()
		rec := serve(h, "GET", "/v1/accounts/"+acc1+"/messages?to=b", tokBilling)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("over the cap: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
		}
		if waited := time.Since(start); waited != 100*time.Millisecond {
			t.Fatalf("waited %s for a slot, want the queue timeout", waited)
		}
		release()
		wg.Wait()
		if held.Code != 200 || s.lists.inflight() != 0 {
			t.Fatalf("held list: %d; %d in flight", held.Code, s.lists.inflight())
		}
		if rec := serve(h, "GET", "/v1/accounts/"+acc1+"/messages?to=b", tokBilling); rec.Code != 200 {
			t.Fatalf("after the slot freed: %d", rec.Code)
		}
	})
}

func TestFlightKey(t *testing.T) {
	key := func(raw string) string {
		t.Helper()
		v, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseList(acc1, v)
		if err != nil {
			t.Fatal(err)
		}
		return p.flightKey(nil)
	}
	same := [][2]string{
		{"status=read&status=delivered", "status=delivered&status=read&status=read"},
		{"", "page_size=50"},
		{"start=2025-01-01T00:00:00Z", "start=2025-01-01T01:00:00%2B01:00"},
	}
	for _, c := range same {
		if key(c[0]) != key(c[1]) {
			t.Errorf("%q and %q have different keys", c[0], c[1])
		}
	}
	differ := [][2]string{
		{"", "page_size=10"},
		{"to=a", "from=a"},
		{"start=2025-01-01T00:00:00Z", "end=2025-01-01T00:00:00Z"},
		{"status=read", ""},
	}
	for _, c := range differ {
		if key(c[0]) == key(c[1]) {
			t.Errorf("%q and %q share a key", c[0], c[1])
		}
	}
	v, _ := url.ParseQuery("")
	p, _ := parseList(acc2, v)
	if p.flightKey(nil) == key("") {
		t.Error("two accounts share a key")
	}
}
