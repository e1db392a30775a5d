package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postflight/postflight/store"
)

// Deps are what Run works with, made by its caller.
type Deps struct {
	// Store is the table under test: the verifier reads it, direct mode
	// writes it, and direct mode's probes read it. Required.
	Store *store.Store
	// HTTP carries the API reads, the probes and the /metrics scrapes. Nil:
	// a client with a 10 s timeout and --workers idle connections.
	HTTP *http.Client
	// Progress shows the live progress line, if it is a terminal. Nil: none.
	Progress io.Writer
	// Log tells what the run is doing and names examples of lost and wrong
	// messages. Nil: discarded.
	Log *slog.Logger
	// BeforeVerify, if set, runs after the load, once the service has
	// drained, and before verification, with the messages whose final state
	// was completely written. Tests use it to tamper with the table.
	BeforeVerify func(ctx context.Context, final []*MessagePlan) error
}

// Tuning of a run that is not worth a flag.
const (
	probeWorkers     = 32
	recentFinalsSize = 4096
	scrapeInterval   = time.Second
	verifyChunk      = 1000
	verifyParallel   = 4
	verifyPoll       = 500 * time.Millisecond
)

// Run runs a load test (DESIGN.md §4) and returns its evaluated report:
//
//  1. Writes on cfg's schedule: in kafka mode each pacer operation (slot)
//     produces the lifecycle events the slot plan assigns it and waits for
//     Kafka's acknowledgements; in direct mode each operation writes 25
//     messages' final states with store.WriteBatch.
//  2. Meanwhile API reads at ReadsPerSec, probes following a sample of
//     messages until a get returns their final state (end-to-end latency)
//     and then the index lists them (index lag), and, in kafka mode, a
//     scrape of the service's /metrics every second (consumer lag).
//  3. Afterwards, within VerifyTimeout: the probes finish, the service
//     drains (it has consumed every event produced and its lag is 0; its CPU
//     and records consumed are read then), and every message completely
//     written is checked in the table with batched reads.
//
// A canceled ctx ends the run with its error and no report. Every
// goroutine Run starts has ended when it returns.
func Run(ctx context.Context, cfg RunConfig, deps Deps) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if deps.Store == nil {
		return nil, errors.New("run: no store")
	}
	if deps.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Workers
		deps.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: tr}
		defer tr.CloseIdleConnections()
	}
	if deps.Progress == nil {
		deps.Progress = io.Discard
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	gcfg := cfg.GeneratorConfig()
	gcfg.RunID = uint64(time.Now().UnixNano())
	gen, err := NewGenerator(gcfg)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, deps: deps, gen: gen, coll: NewCollector(), log: deps.Log}
	return r.run(ctx)
}

// runner holds one run's parts.
type runner struct {
	cfg  RunConfig
	deps Deps
	gen  *Generator
	coll *Collector
	log  *slog.Logger
	api  *apiClient

	// Set by the mode's writer.
	schedule Schedule                   // the write pacer's: slots (kafka) or batches (direct)
	messages int64                      // messages the schedule starts
	plan     func(m int64) *MessagePlan // message m as generated
	complete func(p *MessagePlan, issued int64) bool
	events   func() int64 // events acknowledged (kafka) or final states written (direct)
	unsentX  int64        // messages per unsent write operation
	empty    atomic.Int64 // slots with nothing to send (kafka): not writes
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	r.api = newAPIClient(r.deps.HTTP, cfg.Service, cfg.Token)

	if cfg.Mode == ModeDirect {
		// Direct writes lay out index keys by each account's shard
		// schedule, as the service would.
		if err := r.deps.Store.RefreshAccounts(ctx); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	var scr *scraper
	var base ServiceSample
	if cfg.Mode == ModeKafka && cfg.Service != "" {
		scr = newScraper(r.deps.HTTP, cfg.Service)
		var err error
		if base, err = scr.scrape(ctx); err != nil {
			r.log.Warn("service metrics unavailable: no consumer lag or CPU per record", "err", err)
			scr = nil
		}
	}

	// Probes and the ledger of written messages.
	probeCtx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	var pr *probes
	sampleEvery := int64(1)
	if cfg.ProbesPerSec > 0 {
		var target probeTarget = apiTarget{r.api}
		if cfg.Mode == ModeDirect {
			target = storeTarget{r.deps.Store}
		}
		pr = startProbes(probeCtx, target, r.coll, probeWorkers, cmp.Or(cfg.VerifyTimeout, time.Minute))
		sampleEvery = max(1, int64(math.Round(cfg.Rate/cfg.ProbesPerSec)))
	}
	probesOpen := pr != nil
	defer func() {
		if probesOpen {
			stopProbes()
			pr.close()
		}
	}()
	recent := newRecentFinals(recentFinalsSize)
	led := newLedger(recent, pr, sampleEvery)

	// The writer of the mode.
	t0 := time.Now()
	var (
		op          Op
		observe     func(OpResult)
		closeWriter = func() {}
	)
	switch cfg.Mode {
	case ModeKafka:
		kw, err := r.kafkaWriter(t0, led)
		if err != nil {
			return nil, err
		}
		op, observe, closeWriter = kw.op, r.kafkaObserver(kw, led), kw.close
	case ModeDirect:
		dw := r.directWriter(t0, led)
		op, observe = dw.op, dw.observe
	}
	wp, err := NewPacer(PacerConfig{Schedule: r.schedule, Workers: cfg.Workers})
	if err != nil {
		closeWriter()
		return nil, err
	}
	var rp *Pacer
	if rs := cfg.ReadSchedule(); rs != nil {
		if rp, err = NewPacer(PacerConfig{Schedule: rs, Workers: cfg.Workers}); err != nil {
			closeWriter()
			return nil, err
		}
	}
	rd := &reader{api: r.api, gen: r.gen, recent: recent, seed: splitmix64(cfg.Seed ^ 0x7265616473 ^ uint64(cfg.Shard.Index)<<32)}

	// The load.
	r.log.Info("load starting", "mode", cfg.Mode, "messages", r.messages, "duration", r.schedule.Duration())
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var (
		load, bg       sync.WaitGroup
		wstats, rstats PacerStats
		werr, rerr     error
	)
	load.Go(func() { wstats, werr = wp.Run(ctx, op, observe) })
	if rp != nil {
		load.Go(func() {
			rstats, rerr = rp.Run(ctx, rd.op, func(res OpResult) {
				if res.Err != nil {
					r.coll.Error(res.Intended, kindOf(res.Err, "read_error"))
					return
				}
				r.coll.Read.Record(res.Intended, res.Latency())
			})
		})
	}
	if scr != nil {
		bg.Go(func() { scr.run(loadCtx, scrapeInterval, r.coll) })
	}
	total := r.schedule.Duration()
	bg.Go(func() {
		NewProgress(r.deps.Progress).Run(loadCtx, time.Second, func() ProgressStatus {
			lag := int64(-1)
			if scr != nil {
				lag = scr.currentLag()
			}
			return ProgressStatus{Elapsed: time.Since(t0), Total: total, Writes: r.coll.Write.Count(),
				Reads: r.coll.Read.Count(), Errors: r.coll.Errors(), Lag: lag}
		})
	})
	load.Wait()
	stopLoad()
	bg.Wait()
	closeWriter()
	if err := cmp.Or(werr, rerr); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}

	// Drain: the probes finish while the service consumes the rest.
	deadline := time.Now().Add(cfg.VerifyTimeout)
	var (
		drain    sync.WaitGroup
		final    = base
		drained  bool
		produced = r.events()
	)
	if pr != nil {
		probesOpen = false
		drain.Go(pr.close)
	}
	if scr != nil {
		r.log.Info("load done; waiting for the service to consume every event", "events", produced)
		drain.Go(func() { final, drained = scr.waitDrained(ctx, base, produced, deadline, r.coll) })
	}
	drain.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if scr != nil && !drained {
		r.log.Warn("the service did not drain before the verification deadline", "consumed", final.Records-base.Records, "produced", produced, "lag", final.Lag)
	}

	// Verify.
	include := func(p *MessagePlan) bool { return r.complete(p, wstats.Issued) }
	if r.deps.BeforeVerify != nil {
		var finals []*MessagePlan
		for m := range r.messages {
			if p := r.plan(m); p.Final != nil && include(p) {
				finals = append(finals, p)
			}
		}
		if err := r.deps.BeforeVerify(ctx, finals); err != nil {
			return nil, fmt.Errorf("run: before verify: %w", err)
		}
	}
	r.log.Info("verifying", "messages", r.messages)
	v := &verifier{st: r.deps.Store, plan: r.plan, log: r.log, chunk: verifyChunk, parallel: verifyParallel, poll: verifyPoll}
	ver, err := v.run(ctx, r.messages, include, deadline)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}

	// The report.
	wstats.Unsent *= r.unsentX
	rep, err := r.coll.Report(cfg, wstats, rstats)
	if err != nil {
		return nil, err
	}
	if d := r.schedule.Duration().Seconds(); d > 0 {
		// The last slots of kafka mode only finish earlier messages; the
		// few left with nothing to send were planned so and are not writes.
		rep.RequestedRate -= float64(r.empty.Load()) / d
	}
	rep.ProducedFinal, rep.Verified, rep.Lost, rep.Wrong = ver.ProducedFinal, ver.Verified, ver.Lost, ver.Wrong
	rep.Generator.Messages = r.started(wstats.Issued)
	rep.Generator.Events = produced
	if rep.DurationSec > 0 {
		rep.Generator.EventsPerSec = float64(produced) / rep.DurationSec
	}
	if scr != nil && final.HasCPU && final.HasRecords {
		rep.ServiceCPUSeconds = final.CPUSeconds - base.CPUSeconds
		rep.ServiceRecords = int64(final.Records - base.Records)
		rep.setWriteUnits(base, final)
		for k, v := range final.Retries {
			if d := int64(v - base.Retries[k]); d > 0 {
				if rep.ServiceRetries == nil {
					rep.ServiceRetries = map[string]int64{}
				}
				rep.ServiceRetries[k] = d
			}
		}
	}
	rep.Evaluate(cfg.Criteria)
	return rep, nil
}

// started is how many messages the issued write operations started.
func (r *runner) started(issued int64) int64 {
	if r.cfg.Mode == ModeDirect {
		return min(issued*directBatch, r.messages)
	}
	return min(issued, r.messages)
}

// kafkaWriter sets up kafka mode: slots on the message schedule, message m
// created at slot m's intended time.
func (r *runner) kafkaWriter(t0 time.Time, led *ledger) (*kafkaWriter, error) {
	cfg := r.cfg
	r.schedule = cfg.WriteSchedule()
	rate := cfg.Rate / float64(cfg.Shard.Count)
	slots := newSlotPlan(r.schedule.Ops(), r.gen.MaxEmissions(), gapSlots(cfg.EventGap, rate))
	sched := r.schedule
	r.plan = func(m int64) *MessagePlan {
		off, _ := sched.Offset(m)
		return r.gen.Message(m, t0.Add(off))
	}
	cache := newPlanCache(int(slots.gap)*slots.span+4*cfg.Workers+1024, r.plan)
	kw, err := newKafkaWriter(cfg.Brokers, cfg.Topic, slots, cache)
	if err != nil {
		return nil, err
	}
	r.messages = slots.messages
	r.unsentX = 1
	r.events = kw.events.Load
	r.complete = func(p *MessagePlan, issued int64) bool {
		return slots.slotOf(p.Index, len(p.Emissions)-1) < issued && !led.isFailed(p.Index)
	}
	return kw, nil
}

// kafkaObserver records a slot's write latency, or its failure against the
// messages it carried, and hands the final states it wrote to the ledger.
func (r *runner) kafkaObserver(kw *kafkaWriter, led *ledger) func(OpResult) {
	return func(res OpResult) {
		switch {
		case errors.Is(res.Err, errEmptySlot):
			r.empty.Add(1)
			return
		case res.Err != nil:
			r.coll.Error(res.Intended, "produce")
			kw.slots.each(res.Seq, func(m int64, e int) {
				if e < len(kw.plans.get(m).Emissions) {
					led.fail(m)
				}
			})
			return
		}
		r.coll.Write.Record(res.Intended, res.Latency())
		kw.slots.each(res.Seq, func(m int64, e int) {
			if p := kw.plans.get(m); p.Winner == e {
				led.finalWritten(p, res.Intended)
			}
		})
	}
}

// directWriter sets up direct mode: one operation per 25 messages, every
// message of a batch created at the batch's intended time.
func (r *runner) directWriter(t0 time.Time, led *ledger) *directWriter {
	cfg := r.cfg
	msgs := cfg.WriteSchedule()
	r.schedule = msgs.Scale(1.0 / directBatch)
	sched := r.schedule
	r.plan = func(m int64) *MessagePlan {
		off, _ := sched.Offset(m / directBatch)
		return r.gen.Message(m, t0.Add(off))
	}
	dw := &directWriter{st: r.deps.Store, plan: r.plan, ledger: led, coll: r.coll}
	r.messages = r.schedule.Ops() * directBatch
	r.unsentX = directBatch
	r.events = dw.written.Load
	r.complete = func(p *MessagePlan, issued int64) bool {
		return p.Index/directBatch < issued && !led.isFailed(p.Index)
	}
	return dw
}
