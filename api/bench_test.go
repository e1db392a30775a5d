package api_test

// Benchmarks of the API on a real store (DynamoDB Local): the same get and
// list issued directly to the store and through the API over loopback HTTP,
// so the difference is the API's own cost per request (HTTP, auth, rate
// limits, JSON), and paced runs at 1,000 requests/s reporting latency
// percentiles. Run them with
//
//	go test -run '^$' -bench . -benchtime 3s ./api/
//
// (make bench). DynamoDB Local checks correctness, not speed: its latencies
// are not DynamoDB's, but the overhead is the API's own.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	benchAccounts = 10
	benchPerAcct  = 120
)

type benchEnv struct {
	st       *store.Store
	accounts []string
	sids     [][]string // per account
	srv      *httptest.Server
	handler  http.Handler
	token    string
	client   *http.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	db := testenv.DynamoDBClient(b, testenv.DynamoDBEndpoint(b))
	table := testenv.TableName(b)
	st, err := store.New(db, store.Config{Table: table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateTable(ctx); err != nil {
		b.Fatal(err)
	}
	testenv.DropTable(b, db, table)
	e := &benchEnv{st: st}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for a := range benchAccounts {
		acc := fmt.Sprintf("AC%032x", 0xbe00+a)
		e.accounts = append(e.accounts, acc)
		var sids []string
		var batch []*postflight.Message
		flush := func() {
			res := make([]postflight.WriteResult, len(batch))
			st.WriteBatch(ctx, batch, res)
			for _, r := range res {
				if r.Outcome != postflight.Applied {
					b.Fatalf("seed write: %v %v", r.Outcome, r.Err)
				}
			}
			batch = batch[:0]
		}
		for i := range benchPerAcct {
			sid := fmt.Sprintf("SM%032x", a<<20|i)
			sids = append(sids, sid)
			body := fmt.Sprintf("benchmark message %d of %s, about the length of a typical SMS body.", i, acc)
			created := now.Add(-time.Duration(i) * time.Minute)
			batch = append(batch, &postflight.Message{
				SID: sid, AccountSID: acc, Status: postflight.StatusDelivered, Channel: postflight.ChannelSMS,
				Direction: postflight.DirectionOutboundAPI, From: "+15550001111", To: "+15550002222", Body: &body,
				NumSegments: 1, DateCreated: created, DateUpdated: created.Add(2 * time.Second), Sequence: 3,
			})
			if len(batch) == store.MaxBatch {
				flush()
			}
		}
		if len(batch) > 0 {
			flush()
		}
		e.sids = append(e.sids, sids)
	}
	path := filepath.Join(b.TempDir(), "auth.json")
	if e.token, err = api.WriteDevAuthFile(path); err != nil {
		b.Fatal(err)
	}
	auth, err := api.NewAuthenticator(path)
	if err != nil {
		b.Fatal(err)
	}
	s, err := api.New(api.Config{RatePerToken: -1, RatePerAccount: -1, MaxListInflight: 256}, st, auth, nil, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	e.handler = s.Handler()
	e.srv = httptest.NewServer(e.handler)
	b.Cleanup(e.srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 512
	e.client = &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	return e
}

func (e *benchEnv) get(i int) (acc, sid string) {
	a := i % len(e.accounts)
	return e.accounts[a], e.sids[a][(i/len(e.accounts))%len(e.sids[a])]
}

// listQuery is the i-th list: one of the accounts, page sizes 41 to 60, so
// that concurrent requests rarely coalesce (this measures reads, not the
// coalescing).
func (e *benchEnv) listQuery(i int) (acc string, pageSize int) {
	return e.accounts[i%len(e.accounts)], 41 + (i/len(e.accounts))%20
}

func (e *benchEnv) do(b *testing.B, path string) {
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Errorf("%s: %d", path, resp.StatusCode)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perOp runs fn b.N times and reports this process's CPU per op (client,
// API and SDK; DynamoDB Local is another process).
func perOp(b *testing.B, fn func(i int)) {
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		fn(i)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// interleaved runs the store call, the handler call and the HTTP call of
// the same request in turn, b.N times, and reports the median time of each
// and the medians of the per-request differences: the API's own cost
// without (handler) and with (http) the loopback connection.
func interleaved(b *testing.B, direct, handler, overHTTP func(i int)) {
	var st, hd, ht, dHandler, dHTTP []float64
	timed := func(f func(int), i int) float64 {
		t0 := time.Now()
		f(i)
		return float64(time.Since(t0).Nanoseconds()) / 1e3
	}
	for i := 0; b.Loop(); i++ {
		s, h, x := timed(direct, i), timed(handler, i), timed(overHTTP, i)
		st, hd, ht = append(st, s), append(hd, h), append(ht, x)
		dHandler, dHTTP = append(dHandler, h-s), append(dHTTP, x-s)
	}
	median := func(v []float64) float64 {
		slices.Sort(v)
		return v[len(v)/2]
	}
	b.ReportMetric(median(st), "store-µs")
	b.ReportMetric(median(hd), "handler-µs")
	b.ReportMetric(median(ht), "http-µs")
	b.ReportMetric(median(dHandler), "handler-overhead-µs")
	b.ReportMetric(median(dHTTP), "http-overhead-µs")
}

// serveLocal runs a GET through the handler in-process (no connection).
func (e *benchEnv) serveLocal(b *testing.B, path string) {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("%s: %d", path, rec.Code)
	}
}

// BenchmarkAPI: Store* issue the query directly; API* the same through the
// API over loopback HTTP (overhead-µs/op is the difference to Store*);
// Handler* through the handler without a connection; PacedN* at N
// requests/s (1,000, and 250, which this 2-core machine sustains), open
// loop, latency measured from each request's scheduled start.
func BenchmarkAPI(b *testing.B) {
	e := newBenchEnv(b)
	e.warmUp(b, 5*time.Second)
	ctx := context.Background()
	end := time.Now().Add(time.Minute)
	b.Run("StoreGet", func(b *testing.B) {
		perOp(b, func(i int) {
			acc, sid := e.get(i)
			if _, err := e.st.Get(ctx, acc, sid); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("APIGet", func(b *testing.B) {
		perOp(b, func(i int) {
			acc, sid := e.get(i)
			e.do(b, "/v1/accounts/"+acc+"/messages/"+sid)
		})
	})
	b.Run("HandlerGet", func(b *testing.B) {
		perOp(b, func(i int) {
			acc, sid := e.get(i)
			e.serveLocal(b, "/v1/accounts/"+acc+"/messages/"+sid)
		})
	})
	// The same request through each path in turn, so that DynamoDB Local's
	// drift (JIT, GC) hits all of them alike; medians of the differences.
	b.Run("GetOverhead", func(b *testing.B) {
		interleaved(b, func(i int) {
			acc, sid := e.get(i)
			if _, err := e.st.Get(ctx, acc, sid); err != nil {
				b.Fatal(err)
			}
		}, func(i int) {
			acc, sid := e.get(i)
			e.serveLocal(b, "/v1/accounts/"+acc+"/messages/"+sid)
		}, func(i int) {
			acc, sid := e.get(i)
			e.do(b, "/v1/accounts/"+acc+"/messages/"+sid)
		})
	})
	b.Run("ListOverhead", func(b *testing.B) {
		interleaved(b, func(i int) {
			acc, n := e.listQuery(i)
			if _, err := e.st.List(ctx, store.ListQuery{Account: acc, Start: end.Add(-30 * 24 * time.Hour), End: end, PageSize: n}); err != nil {
				b.Fatal(err)
			}
		}, func(i int) {
			acc, n := e.listQuery(i)
			e.serveLocal(b, fmt.Sprintf("/v1/accounts/%s/messages?page_size=%d", acc, n))
		}, func(i int) {
			acc, n := e.listQuery(i)
			e.do(b, fmt.Sprintf("/v1/accounts/%s/messages?page_size=%d", acc, n))
		})
	})
	b.Run("StoreList", func(b *testing.B) {
		perOp(b, func(i int) {
			acc, n := e.listQuery(i)
			page, err := e.st.List(ctx, store.ListQuery{Account: acc, Start: end.Add(-30 * 24 * time.Hour), End: end, PageSize: n})
			if err != nil || len(page.Messages) != n {
				b.Fatal(err, len(page.Messages))
			}
		})
	})
	b.Run("APIList", func(b *testing.B) {
		perOp(b, func(i int) {
			acc, n := e.listQuery(i)
			e.do(b, fmt.Sprintf("/v1/accounts/%s/messages?page_size=%d", acc, n))
		})
	})
	for _, rate := range []int{1000, 250} {
		b.Run(fmt.Sprintf("Paced%dGet", rate), func(b *testing.B) {
			paced(b, float64(rate), func(i int) {
				acc, sid := e.get(i)
				e.do(b, "/v1/accounts/"+acc+"/messages/"+sid)
			})
		})
		b.Run(fmt.Sprintf("Paced%dList", rate), func(b *testing.B) {
			paced(b, float64(rate), func(i int) {
				acc, n := e.listQuery(i)
				e.do(b, fmt.Sprintf("/v1/accounts/%s/messages?page_size=%d", acc, n))
			})
		})
	}
}

// warmUp runs gets and lists for d, four at a time, so that DynamoDB Local's
// JIT and both connection pools are warm before anything is measured.
func (e *benchEnv) warmUp(b *testing.B, d time.Duration) {
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := range 4 {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline); i += 4 {
				acc, sid := e.get(i)
				e.do(b, "/v1/accounts/"+acc+"/messages/"+sid)
				acc, n := e.listQuery(i)
				e.do(b, fmt.Sprintf("/v1/accounts/%s/messages?page_size=%d", acc, n))
			}
		})
	}
	wg.Wait()
}

// paced starts b.N calls of fn at rate per second, each in its own goroutine
// (open loop: a slow answer does not delay the next request), and reports
// latency percentiles measured from each call's scheduled start, so that
// queueing in the client counts (no coordinated omission).
func paced(b *testing.B, rate float64, fn func(i int)) {
	lat := make([]time.Duration, b.N)
	var inflight, peak atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			n := inflight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			fn(i)
			inflight.Add(-1)
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1e3, "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(peak.Load()), "peak-inflight")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
