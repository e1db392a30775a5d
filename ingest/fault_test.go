package ingest_test

// DynamoDB fault tests of issue 4: DynamoDB Local stopped and restarted
// mid-stream, and throttling, 5xx answers and dropped connections injected
// by a reverse proxy (internal/faultproxy) in front of the real DynamoDB
// Local.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/sony/gobreaker/v2"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
)

// TestDynamoDBStoppedMidStream (issue 4, test 1): DynamoDB Local, persisting
// to a -dbPath, is stopped for 10s while events keep arriving, then started
// again on the same endpoint and data. The breaker must open (and Ready say
// so) and close again by itself; afterwards every final message is present
// and correct, and no valid event was dead-lettered.
func TestDynamoDBStoppedMidStream(t *testing.T) {
	t.Parallel()
	ddb := testenv.StartDynamoDB(t, fastTempDir(t))
	r := newRig(t, ddb.Endpoint())
	msgs, evs := genStream(streamOpts{messages: 1500, duplicates: 0.1, seed: 1})
	recs := records(t, evs)
	third := len(recs) / 3
	r.produce(recs[:third], nil)
	c := r.startConsumer("c1", consumerOpts{})
	waitCommittedAtLeast(t, r, int64(third)/3)

	ctx := t.Context()
	stopped := time.Now()
	if err := ddb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	r.produce(recs[third:], nil)
	testenv.Eventually(t, 30*time.Second, "the breaker to open", func() string {
		if st := c.svc.BreakerState(); st != gobreaker.StateOpen {
			return st.String()
		}
		return ""
	})
	if err := c.svc.Ready(ctx); err == nil {
		t.Error("Ready reports nil while the breaker is open")
	}
	doneDuringOutage, total := r.committed()
	// The outage lasts 10s (the fault itself, not a wait for a condition).
	<-time.After(time.Until(stopped.Add(10 * time.Second)))
	testenv.RestartDynamoDB(t, ddb)
	t.Logf("DynamoDB Local was down %s; %d of %d records committed when the breaker opened",
		time.Since(stopped).Round(100*time.Millisecond), doneDuringOutage, total)

	r.waitCommitted(2 * time.Minute)
	testenv.Eventually(t, 30*time.Second, "the breaker to close", func() string {
		if st := c.svc.BreakerState(); st != gobreaker.StateClosed {
			return st.String()
		}
		return ""
	})
	states := r.logs.breakerStates("c1")
	if i := slices.Index(states, "open"); i < 0 || !slices.Contains(states[i:], "closed") {
		t.Errorf("breaker went %v; want open, then closed", states)
	}
	r.verify(msgs)
	r.expectNoDeadLetters()
}

// TestThrottlingAndServerErrors (issue 4, test 6): a fault proxy in front of
// the real DynamoDB Local throttles (400 ThrottlingException, then
// ProvisionedThroughputExceededException), answers 500 and 503, and drops
// connections, while a backlog many times the pending-bytes bound waits in
// Kafka. Throttling must lower the concurrency limit without tripping the
// breaker; 5xx and dropped connections must open the breaker, which closes
// again once DynamoDB answers; the pending bytes never exceed the bound;
// nothing is lost and nothing is dead-lettered.
func TestThrottlingAndServerErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	px := startProxy(t, r.ddb)

	const maxPendingMB = 1
	const bound = maxPendingMB << 20
	// A feeder keeps at least 2,500 records (~9 MB by ingest's per-record
	// estimate, several times the bound) waiting in Kafka until the faults
	// are over, so that every fault meets traffic however fast the
	// consumer is.
	fd := &feeder{r: r}
	fd.feed(t, 2500)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c := r.startConsumer("c1", consumerOpts{endpoint: px.URL(), mp: mp,
		cfg: ingest.Config{MaxPendingMB: maxPendingMB, MaxConcurrency: 16}})
	start := c.svc.Concurrency()

	// Sample the pending-bytes gauge until the test ends.
	var maxPending atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, ok := gaugeValue(sampleCtx, reader, "postflight.ingest.pending.bytes"); ok && v > maxPending.Load() {
				maxPending.Store(v)
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	defer func() { stopSampling(); sampler.Wait() }()

	waitWrites(t, c, 5)

	// 1. A throttling burst: the limit drops.
	px.Inject(faultproxy.Fault{Kind: faultproxy.Throttle, For: time.Second, Ops: []string{"BatchExecuteStatement"}})
	testenv.Eventually(t, 30*time.Second, "the concurrency limit to drop after a throttling burst", func() string {
		if l := c.svc.Concurrency(); l >= start {
			return fmt.Sprintf("limit %.2f, started at %.2f; %d requests throttled", l, start, px.Faulted(faultproxy.Throttle))
		}
		return ""
	})
	t.Logf("after a throttling burst: limit %.2f (started at %.2f), %d requests throttled", c.svc.Concurrency(), start, px.Faulted(faultproxy.Throttle))
	testenv.Eventually(t, 30*time.Second, "the burst to end", func() string {
		if px.Active() {
			return "still throttling"
		}
		return ""
	})

	// 2. Sustained throttling: the limit drops while it lasts. First let
	// the batches throttled by the burst finish (they cut the limit when
	// they do), so that only the new throttling can cut it.
	waitWrites(t, c, c.w.batches.Load()+50)
	before := c.svc.Concurrency()
	px.Inject(faultproxy.Fault{Kind: faultproxy.ProvisionedThroughput, Ops: []string{"BatchExecuteStatement"}})
	within(t, 10*time.Second, "the concurrency limit to drop while throttling lasts", func() string {
		if l := c.svc.Concurrency(); l >= before {
			return fmt.Sprintf("limit %.2f, %.2f when throttling began; %d requests throttled so far", l, before, px.Faulted(faultproxy.ProvisionedThroughput))
		}
		return ""
	})
	t.Logf("while throttled: limit %.2f (%.2f before), %d requests throttled", c.svc.Concurrency(), before, px.Faulted(faultproxy.ProvisionedThroughput))
	px.Heal()
	if st := r.logs.breakerStates("c1"); len(st) > 0 {
		t.Errorf("throttling moved the breaker: %v (throttling must lower concurrency, not count as a failure)", st)
	}

	// 3. 500s, 503s and dropped connections each open the breaker, which
	// closes again once DynamoDB answers.
	for _, k := range []faultproxy.Kind{faultproxy.InternalError, faultproxy.Unavailable, faultproxy.Drop} {
		opened := len(r.logs.find("dynamodb circuit breaker", "c1"))
		px.Inject(faultproxy.Fault{Kind: k})
		testenv.Eventually(t, 30*time.Second, "the breaker to open on "+k.String(), func() string {
			if st := c.svc.BreakerState(); st != gobreaker.StateOpen {
				return fmt.Sprintf("%s, %d requests faulted", st, px.Faulted(k))
			}
			return ""
		})
		if err := c.svc.Ready(t.Context()); err == nil {
			t.Errorf("%s: Ready reports nil while the breaker is open", k)
		}
		px.Heal()
		testenv.Eventually(t, 30*time.Second, "the breaker to close after "+k.String(), func() string {
			if st := c.svc.BreakerState(); st != gobreaker.StateClosed {
				return st.String()
			}
			return ""
		})
		if st := r.logs.breakerStates("c1")[opened:]; !slices.Contains(st, "open") || st[len(st)-1] != "closed" {
			t.Errorf("%s: breaker went %v; want open, then closed", k, st)
		}
	}

	msgs, backlog := fd.stop(t)
	r.waitCommitted(2 * time.Minute)
	stopSampling()
	sampler.Wait()
	r.verify(msgs)
	r.expectNoDeadLetters()

	peak := maxPending.Load()
	t.Logf("pending bytes peaked at %d (bound %d; %d messages, %d bytes produced); proxy: %+v; outcomes: throttled %d, unavailable %d",
		peak, bound, len(msgs), backlog, px.Counts(), r.ledger.outcome(postflight.Throttled), r.ledger.outcome(postflight.Unavailable))
	if peak > bound {
		t.Errorf("pending bytes reached %d, above the %d bound", peak, bound)
	}
	if peak < bound/2 {
		t.Errorf("pending bytes peaked at %d: the backlog never pressed on the %d bound, so it was not tested", peak, bound)
	}
}

// gaugeValue collects reader and returns the int64 gauge name's value.
func gaugeValue(ctx context.Context, reader *sdkmetric.ManualReader, name string) (int64, bool) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return 0, false
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name && len(g.DataPoints) > 0 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// fastTempDir is a temporary directory for DynamoDB Local's -dbPath: on
// tmpfs (/dev/shm) where there is one, since SQLite's syncs on a disk make
// DynamoDB Local many times slower. The files outlive the JVM either way,
// which is all a restart needs.
func fastTempDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "postflight-test-")
		if err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// feeder produces generated messages, 200 at a time, whenever fewer than a
// given number of records wait uncommitted, until stopped.
type feeder struct {
	r      *rig
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	msgs  []*msgSpec
	bytes int // ingest's estimate of what was produced
	err   error
}

func (f *feeder) feed(t *testing.T, waiting int64) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	t.Cleanup(func() { cancel(); f.wg.Wait() })
	chunk := func(seed uint64) error {
		msgs, evs := genStream(streamOpts{messages: 200, seed: seed, bodyBytes: 1000})
		recs := make([]*sarama.ProducerMessage, len(evs))
		for i, ev := range evs {
			v, err := ingest.Encode(ingest.SchemaIDv2, ev)
			if err != nil {
				return err
			}
			recs[i] = &sarama.ProducerMessage{Topic: eventsTopic, Key: sarama.StringEncoder(ev.MessageSID), Value: sarama.ByteEncoder(v)}
		}
		if err := f.r.send(recs, nil); err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.msgs = append(f.msgs, msgs...)
		for _, rec := range recs {
			f.bytes += 3*(rec.Key.Length()+rec.Value.Length()) + 512
		}
		return nil
	}
	f.wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for seed := uint64(100); ; {
			if done, total := f.r.committed(); total-done < waiting && ctx.Err() == nil {
				seed++
				if err := chunk(seed); err != nil {
					f.mu.Lock()
					f.err = err
					f.mu.Unlock()
					return
				}
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// stop stops feeding and returns every message produced and their bytes.
func (f *feeder) stop(t *testing.T) ([]*msgSpec, int) {
	t.Helper()
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Fatalf("feeder: %v", f.err)
	}
	return f.msgs, f.bytes
}
