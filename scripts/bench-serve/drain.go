package main

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/postflight/postflight/internal/benchload"
	"github.com/postflight/postflight/internal/fakeddb"
	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/loadtest"
)

// The latency-bound drain (--drain)
//
// DynamoDB answers in milliseconds. drain puts internal/faultproxy in front
// of the fake endpoint, delaying each request by a log-normal draw (median
// and p99 from the flags), lets serve drain the backlog with AIMD finding
// its concurrency, throttles a share of the write batches for a while
// mid-drain, and samples serve's /metrics every half second: records
// settled per second, the AIMD limit, the mean write latency. It prints the
// rates before, during and after the throttle and how long the rate took to
// recover, and writes an HTML page with the three series.

type drainConfig struct {
	median, p99      time.Duration
	share            float64
	at, dur          time.Duration
	html             string
	workload         string
	partitions       int
	events           int
	seed             uint64
	bin, auth, extra string
}

type drainSample struct {
	t                         float64 // seconds since the first settled record
	settled                   float64
	limit                     float64
	latSum, latCount          float64
	throttled                 float64
	cpu                       time.Duration
	rate, meanLatMs, throttle float64 // derived: per second over the last interval
}

func drain(c drainConfig, stdout, stderr io.Writer) error {
	ctx := context.Background()
	cl, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(int32(c.partitions), "message-events", "message-events.dlq"))
	if err != nil {
		return err
	}
	defer cl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fake := &http.Server{Handler: &fakeddb.Handler{}}
	go func() { _ = fake.Serve(ln) }()
	defer fake.Close()
	px, err := faultproxy.Start("http://" + ln.Addr().String())
	if err != nil {
		return err
	}
	defer px.Close()
	px.SetLatencyDist(faultproxy.LogNormal(c.median, c.p99))
	brokers := cl.ListenAddrs()
	fmt.Fprintf(stderr, "producing %d %s events…\n", c.events, c.workload)
	if _, err := benchload.Produce(ctx, brokers, "message-events", c.workload, c.seed, c.events); err != nil {
		return err
	}
	args := append([]string{"serve", "--brokers", strings.Join(brokers, ","), "--dynamodb-endpoint", px.URL(),
		"--table", "bench", "--auth-file", c.auth, "--log-level", "warn", "--page-token-key", "bench", "--group", "drain"},
		strings.Fields(c.extra)...)
	s, err := startServe(c.bin, args, stderr)
	if err != nil {
		return err
	}
	defer s.stop()

	var samples []drainSample
	var start time.Time
	var throttleStart, throttleEnd float64 = -1, -1
	harness0 := selfCPU()
	for {
		m, err := s.metrics()
		if err != nil {
			if err := s.alive(); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		settled := float64(benchload.Settled(m))
		if settled > 0 && start.IsZero() {
			start = time.Now()
		}
		if !start.IsZero() {
			d := drainSample{
				t: time.Since(start).Seconds(), settled: settled, cpu: s.cpu(),
				limit:     benchload.Sum(m, "postflight_ingest_concurrency_limit"),
				latSum:    benchload.Sum(m, `postflight_store_request_duration_seconds_sum{op="insert"}`) + benchload.Sum(m, `postflight_store_request_duration_seconds_sum{op="update"}`),
				latCount:  benchload.Sum(m, `postflight_store_request_duration_seconds_count{op="insert"}`) + benchload.Sum(m, `postflight_store_request_duration_seconds_count{op="update"}`),
				throttled: benchload.Sum(m, `postflight_ingest_retries_total{cause="throttled"}`),
			}
			if n := len(samples); n > 0 {
				p := samples[n-1]
				dt := d.t - p.t
				d.rate = (d.settled - p.settled) / dt
				d.throttle = (d.throttled - p.throttled) / dt
				if dc := d.latCount - p.latCount; dc > 0 {
					d.meanLatMs = (d.latSum - p.latSum) / dc * 1000
				}
			}
			samples = append(samples, d)
			if c.share > 0 && throttleStart < 0 && d.t >= c.at.Seconds() {
				px.Inject(faultproxy.Fault{Kind: faultproxy.Throttle, Share: c.share, For: c.dur, Ops: []string{"BatchExecuteStatement"}})
				throttleStart, throttleEnd = d.t, d.t+c.dur.Seconds()
			}
			if settled >= float64(c.events) {
				break
			}
		}
		if err := s.alive(); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
	harnessCPU := selfCPU() - harness0
	last := samples[len(samples)-1]
	first := samples[0]
	overall := (last.settled - first.settled) / (last.t - first.t)
	phase := func(from, to float64) float64 {
		var a, b *drainSample
		for i := range samples {
			if samples[i].t >= from && a == nil {
				a = &samples[i]
			}
			if samples[i].t <= to {
				b = &samples[i]
			}
		}
		if a == nil || b == nil || b.t <= a.t {
			return 0
		}
		return (b.settled - a.settled) / (b.t - a.t)
	}
	fmt.Fprintf(stdout, "drain of %d %s events, latency median %v p99 %v, %d partitions\n", c.events, c.workload, c.median, c.p99, c.partitions)
	fmt.Fprintf(stdout, "overall %.0f records/s over %.1f s; serve %.2f CPU-µs/record; this harness (broker, endpoint, proxy) %.2f CPU-µs/record\n",
		overall, last.t-first.t, float64((last.cpu-first.cpu).Microseconds())/(last.settled-first.settled),
		float64(harnessCPU.Microseconds())/last.settled)
	var limits, lats []float64
	for _, d := range samples[1:] {
		limits, lats = append(limits, d.limit), append(lats, d.meanLatMs)
	}
	if len(limits) > 0 {
		slices.Sort(limits)
		slices.Sort(lats)
		fmt.Fprintf(stdout, "AIMD limit: median %.0f, range %.0f–%.0f; mean write latency per interval: median %.1f ms\n",
			limits[len(limits)/2], limits[0], limits[len(limits)-1], lats[len(lats)/2])
	}
	if throttleStart >= 0 {
		before := phase(0, throttleStart)
		during := phase(throttleStart, throttleEnd)
		recovered := -1.0
		for _, d := range samples {
			if d.t > throttleEnd && d.rate >= 0.9*before {
				recovered = d.t - throttleEnd
				break
			}
		}
		fmt.Fprintf(stdout, "before the throttle %.0f records/s; %.0f%% of write batches throttled for %v: %.0f records/s; ",
			before, c.share*100, c.dur, during)
		if recovered >= 0 {
			fmt.Fprintf(stdout, "back to 90%% of the rate %.1f s after it ended\n", recovered)
		} else {
			fmt.Fprintf(stdout, "the drain ended before the rate recovered\n")
		}
	}
	if c.html != "" {
		return writeDrainHTML(c, samples, throttleStart, throttleEnd)
	}
	return nil
}

func writeDrainHTML(c drainConfig, samples []drainSample, tsStart, tsEnd float64) error {
	var rate, limit, lat, thr [][2]float64
	for _, d := range samples[1:] {
		rate = append(rate, [2]float64{d.t, d.rate})
		limit = append(limit, [2]float64{d.t, d.limit})
		lat = append(lat, [2]float64{d.t, d.meanLatMs})
		thr = append(thr, [2]float64{d.t, d.throttle})
	}
	note := "no throttle"
	if tsStart >= 0 {
		note = fmt.Sprintf("%.0f%% of write batches throttled from %.1f s to %.1f s", c.share*100, tsStart, tsEnd)
	}
	page := template.Must(template.New("drain").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>postflight serve: latency-bound drain</title></head>
<body style="font-family:sans-serif"><h1>postflight serve: latency-bound drain</h1>
<p>{{.Events}} {{.Workload}} events, {{.Partitions}} partitions; DynamoDB latency log-normal, median {{.Median}}, p99 {{.P99}}; {{.Note}}.</p>
{{range .Charts}}<div>{{.}}</div>{{end}}</body></html>`))
	f, err := os.Create(c.html)
	if err != nil {
		return err
	}
	defer f.Close()
	return page.Execute(f, map[string]any{
		"Events": c.events, "Workload": c.workload, "Partitions": c.partitions, "Median": c.median, "P99": c.p99, "Note": note,
		"Charts": []template.HTML{
			loadtest.TimeChart("records settled per second", "records/s", loadtest.Series{Name: "records/s", Points: rate}),
			loadtest.TimeChart("AIMD concurrency limit", "requests", loadtest.Series{Name: "limit", Points: limit}),
			loadtest.TimeChart("write request latency (mean per interval)", "ms", loadtest.Series{Name: "mean ms", Points: lat}),
			loadtest.TimeChart("messages retried after a throttle", "per s", loadtest.Series{Name: "throttled", Points: thr}),
		},
	})
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
