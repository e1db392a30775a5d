package loadtest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Merge joins the reports of shard processes that ran side by side into the
// report of the whole run:
//
//   - counts and rates add up (each process ran its part of the rate over
//     the same window), as do errors, per kind and per second;
//   - latency summaries and the per-second series are recomputed from the
//     merged HDR histograms, so percentiles are exact, never averaged;
//   - the window spans the earliest start to the latest end;
//   - the service's figures keep the largest of the processes' (they all
//     scraped the same service over the same window): CPU seconds, records
//     consumed, retries per cause, and consumer lag per second;
//   - the config is the first report's; criteria are re-evaluated against
//     the first report's thresholds (the defaults if it has none) and the
//     bottleneck re-diagnosed.
//
// The inputs are not modified.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, errors.New("merge: no reports")
	}
	first := reports[0]
	out := &Report{
		Version: ReportVersion,
		Config:  first.Config,
		Start:   first.Start,
		End:     first.End,
		Errors:  map[string]int64{},
		// [] rather than null in JSON
		ConsumerLag: []LagPoint{},
	}
	out.Config.Shard = ShardSpec{Index: 0, Count: 1}
	errSecs := map[int64]int64{}
	lag := map[int64]int64{}
	dists := make([][]Dist, 4)
	for i, r := range reports {
		if r.Version != ReportVersion {
			return nil, fmt.Errorf("merge: report %d has version %d, want %d", i, r.Version, ReportVersion)
		}
		out.Processes += max(r.Processes, 1)
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		out.RequestedRate += r.RequestedRate
		out.RequestedReadsPerSec += r.RequestedReadsPerSec
		out.WritesPerSec += r.WritesPerSec
		out.ReadsPerSec += r.ReadsPerSec
		out.ProducedFinal += r.ProducedFinal
		out.Verified += r.Verified
		out.Lost += r.Lost
		out.Wrong += r.Wrong
		out.ServiceCPUSeconds = max(out.ServiceCPUSeconds, r.ServiceCPUSeconds)
		out.ServiceRecords = max(out.ServiceRecords, r.ServiceRecords)
		out.ServiceStoredStates = max(out.ServiceStoredStates, r.ServiceStoredStates)
		for k, v := range r.ServiceWriteUnits { // every shard scraped the same service
			if out.ServiceWriteUnits == nil {
				out.ServiceWriteUnits = map[string]float64{}
			}
			out.ServiceWriteUnits[k] = max(out.ServiceWriteUnits[k], v)
		}
		out.Generator.Messages += r.Generator.Messages
		out.Generator.Events += r.Generator.Events
		out.Generator.EventsPerSec += r.Generator.EventsPerSec
		for k, v := range r.ServiceRetries {
			if out.ServiceRetries == nil {
				out.ServiceRetries = map[string]int64{}
			}
			out.ServiceRetries[k] = max(out.ServiceRetries[k], v)
		}
		out.Generator.WriteUnsent += r.Generator.WriteUnsent
		out.Generator.ReadUnsent += r.Generator.ReadUnsent
		out.Generator.WriteMaxDelayMs = max(out.Generator.WriteMaxDelayMs, r.Generator.WriteMaxDelayMs)
		out.Generator.ReadMaxDelayMs = max(out.Generator.ReadMaxDelayMs, r.Generator.ReadMaxDelayMs)
		for k, v := range r.Errors {
			out.Errors[k] += v
		}
		for t, v := range r.errorSeconds() {
			errSecs[t] += v
		}
		for _, p := range r.ConsumerLag {
			if prev, ok := lag[p.T]; !ok || p.Lag > prev {
				lag[p.T] = p.Lag
			}
		}
		for j, d := range []Dist{r.Histograms.Write, r.Histograms.Read, r.Histograms.EndToEnd, r.Histograms.IndexLag} {
			dists[j] = append(dists[j], d)
		}
	}
	out.DurationSec = out.End.Sub(out.Start).Seconds()
	for _, t := range slices.Sorted(maps.Keys(lag)) {
		out.ConsumerLag = append(out.ConsumerLag, LagPoint{T: t, Lag: lag[t]})
	}
	var err error
	for j, d := range []*Dist{&out.Histograms.Write, &out.Histograms.Read, &out.Histograms.EndToEnd, &out.Histograms.IndexLag} {
		if *d, err = MergeDists(dists[j]...); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	}
	if err := out.derive(errSecs); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	th := first.Thresholds
	if th == (Criteria{}) { // never evaluated: judge by the defaults
		th = DefaultCriteria()
	}
	out.Evaluate(th)
	return out, nil
}
