package loadtest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Diagnose names the most likely bottleneck of a run from its report, in
// one line for humans, or "none" when every threshold was met. The first
// matching rule wins:
//
//  1. the generator could not keep its schedule (more than 0.01% of the
//     writes unsent; a few at the very end are the timer's resolution): the
//     limit is the generator itself or whatever all its workers waited on;
//  2. DynamoDB throttling among the errors, or among the service's ingest
//     retries;
//  3. consumer lag that grew over the run: ingest is slower than produce;
//     or an end-to-end p50 over a second and four times the write p99:
//     events wait inside the service (its lag gauge counts only records
//     not yet read, not those read and waiting to be written);
//  4. index lag over its threshold: the index (GSI) propagates slowly;
//  5. write latency over its threshold: the produce (or direct write) path;
//  6. read latency over its threshold: the API;
//  7. the write rate short of its target;
//  8. messages lost or wrong beyond their thresholds;
//  9. any errors at all: the most frequent kind.
func Diagnose(r *Report) string {
	c := r.Thresholds
	var errs int64
	for _, v := range r.Errors {
		errs += v
	}
	switch {
	case float64(r.Generator.WriteUnsent) > 1e-4*float64(r.Writes+r.Generator.WriteUnsent):
		if r.WriteLatency.P99 > c.MaxWriteP99Ms && c.MaxWriteP99Ms > 0 {
			return fmt.Sprintf("write path (%s): every generator worker was waiting (write p99 %.1f ms), %d writes never sent", writePath(r), r.WriteLatency.P99, r.Generator.WriteUnsent)
		}
		return fmt.Sprintf("load generator: %d writes never sent (max start delay %.0f ms); add --workers or shard processes", r.Generator.WriteUnsent, r.Generator.WriteMaxDelayMs)
	case errs > 0 && throttled(r.Errors) > 0 && float64(throttled(r.Errors)) >= 0.001*float64(r.Writes+r.Reads+errs):
		return fmt.Sprintf("DynamoDB throttling: %d throttled requests (hot partition key or exhausted capacity)", throttled(r.Errors))
	case r.ServiceRetries["throttled"] > 0 && float64(r.ServiceRetries["throttled"]) >= 0.001*float64(max(r.ServiceRecords, 1)):
		return fmt.Sprintf("DynamoDB throttling: the service retried %d throttled writes (hot partition key or exhausted capacity)", r.ServiceRetries["throttled"])
	case lagGrew(r):
		first, last := r.ConsumerLag[0].Lag, r.ConsumerLag[len(r.ConsumerLag)-1].Lag
		return fmt.Sprintf("ingest: consumer lag grew from %d to %d records; the service consumes slower than the producers write", first, last)
	case r.EndToEndLatency.P50 > 1000 && r.EndToEndLatency.P50 > 4*r.WriteLatency.P99:
		return fmt.Sprintf("ingest: end-to-end p50 %.0f ms while writes took p99 %.0f ms; events wait inside the service (its DynamoDB writes), behind a consumer lag of %d", r.EndToEndLatency.P50, r.WriteLatency.P99, lastLag(r))
	case r.IndexLag.P99 > c.MaxIndexLagP99Ms:
		return fmt.Sprintf("index propagation: index lag p99 %.0f ms over %.0f ms", r.IndexLag.P99, c.MaxIndexLagP99Ms)
	case r.WriteLatency.P99 > c.MaxWriteP99Ms:
		return fmt.Sprintf("write path (%s): write p99 %.1f ms over %.1f ms", writePath(r), r.WriteLatency.P99, c.MaxWriteP99Ms)
	case r.ReadLatency.P99 > c.MaxReadP99Ms:
		return fmt.Sprintf("API reads: read p99 %.1f ms over %.1f ms", r.ReadLatency.P99, c.MaxReadP99Ms)
	case r.WritesPerSec < c.MinWriteRateRatio*r.RequestedRate:
		return fmt.Sprintf("write rate: %.0f of %.0f writes/s", r.WritesPerSec, r.RequestedRate)
	case r.Lost > c.MaxLost || r.Wrong > c.MaxWrong:
		return fmt.Sprintf("correctness: %d final messages lost, %d read back wrong", r.Lost, r.Wrong)
	case errs > 0:
		kinds := slices.SortedFunc(maps.Keys(r.Errors), func(a, b string) int {
			return cmp.Or(cmp.Compare(r.Errors[b], r.Errors[a]), strings.Compare(a, b))
		})
		return fmt.Sprintf("errors: %d, mostly %q (%d)", errs, kinds[0], r.Errors[kinds[0]])
	}
	return "none"
}

// writePath names what a write waits on in the run's mode.
func writePath(r *Report) string {
	if r.Config.Mode == ModeDirect {
		return "DynamoDB batch writes"
	}
	return "Kafka produce: producer or broker"
}

func throttled(errs map[string]int64) int64 {
	var n int64
	for k, v := range errs {
		if strings.Contains(strings.ToLower(k), "throttl") {
			n += v
		}
	}
	return n
}

func lastLag(r *Report) int64 {
	if len(r.ConsumerLag) == 0 {
		return 0
	}
	return r.ConsumerLag[len(r.ConsumerLag)-1].Lag
}

// lagGrew reports whether the consumer lag ended well above where it began:
// by more than a second of the requested rate and more than doubled.
func lagGrew(r *Report) bool {
	if len(r.ConsumerLag) < 2 {
		return false
	}
	first, last := r.ConsumerLag[0].Lag, r.ConsumerLag[len(r.ConsumerLag)-1].Lag
	return float64(last-first) > r.RequestedRate && last > 2*first
}
