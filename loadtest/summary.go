package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// summaryRow is one line of the summary table (terminal and HTML).
type summaryRow struct {
	Metric, Value, Target, Result string
}

// summaryRows returns the headline figures of a report with their
// thresholds and verdicts, then errors and the overall result.
func summaryRows(r *Report) []summaryRow {
	c := r.Thresholds
	verdict := func(name string) string { return strings.ToUpper(r.Criteria[name]) }
	lat := func(l Latency) string {
		return fmt.Sprintf("p50 %.1f  p99 %.1f  p999 %.1f  max %.1f ms", l.P50, l.P99, l.P999, l.Max)
	}
	rows := []summaryRow{
		{"writes/s", fmt.Sprintf("%.1f of %.1f requested", r.WritesPerSec, r.RequestedRate), fmt.Sprintf("≥ %g%%", c.MinWriteRateRatio*100), verdict(CriterionWriteRate)},
		{"write latency", lat(r.WriteLatency), fmt.Sprintf("p99 ≤ %g ms", c.MaxWriteP99Ms), verdict(CriterionWriteP99)},
		{"end-to-end latency", lat(r.EndToEndLatency), "", ""},
		{"index lag", lat(r.IndexLag), fmt.Sprintf("p99 ≤ %g ms", c.MaxIndexLagP99Ms), verdict(CriterionIndexLagP99)},
		{"reads/s", fmt.Sprintf("%.1f of %.1f requested", r.ReadsPerSec, r.RequestedReadsPerSec), "", ""},
		{"read latency", lat(r.ReadLatency), fmt.Sprintf("p99 ≤ %g ms", c.MaxReadP99Ms), verdict(CriterionReadP99)},
		{"produced final", fmt.Sprintf("%d (verified %d)", r.ProducedFinal, r.Verified), "", ""},
		{"lost", fmt.Sprint(r.Lost), fmt.Sprintf("≤ %d", c.MaxLost), verdict(CriterionLost)},
		{"wrong", fmt.Sprint(r.Wrong), fmt.Sprintf("≤ %d", c.MaxWrong), verdict(CriterionWrong)},
		{"service CPU", serviceCPU(r), "", ""},
	}
	if r.ServiceStoredStates > 0 {
		rows = append(rows, summaryRow{Metric: "write units", Value: fmt.Sprintf("%.3f WCU per stored state (base %.0f, index %.0f over %d states; floor 2 for items ≤ 1 KB)",
			r.WriteUnitsPerStoredState, r.ServiceWriteUnits["base"], r.ServiceWriteUnits["index"], r.ServiceStoredStates)})
	}
	if g := r.Generator; g.Messages > 0 {
		rows = append(rows, summaryRow{Metric: "generated", Value: fmt.Sprintf("%d messages, %d events (%.0f/s)", g.Messages, g.Events, g.EventsPerSec)})
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		rows = append(rows, summaryRow{Metric: "errors: " + k, Value: fmt.Sprint(r.Errors[k])})
	}
	if r.Generator.WriteUnsent+r.Generator.ReadUnsent > 0 {
		rows = append(rows, summaryRow{Metric: "unsent (generator behind)",
			Value: fmt.Sprintf("%d writes, %d reads", r.Generator.WriteUnsent, r.Generator.ReadUnsent)})
	}
	overall := "PASS"
	if !r.Passed() {
		overall = "FAIL"
	}
	rows = append(rows, summaryRow{Metric: "overall", Value: fmt.Sprintf("%d process(es), %.1f s", max(r.Processes, 1), r.DurationSec), Result: overall})
	return rows
}

func serviceCPU(r *Report) string {
	if r.ServiceRecords == 0 {
		return "n/a (no records consumed, or no /metrics)"
	}
	return fmt.Sprintf("%.1f µs/record (%.2f s over %d records)", r.ServiceCPUMicrosPerRecord, r.ServiceCPUSeconds, r.ServiceRecords)
}

// WriteSummary prints the terminal summary table of a report: each headline
// figure, its threshold and verdict, then errors and the bottleneck.
func WriteSummary(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "METRIC\tVALUE\tTARGET\tRESULT\n")
	for _, row := range summaryRows(r) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Metric, row.Value, row.Target, row.Result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "bottleneck: %s\n", r.Bottleneck)
	return err
}

// WriteHeatSummary prints the terminal summary of a heat simulation.
func WriteHeatSummary(w io.Writer, r *HeatResult) error {
	cfg := r.Config
	sharding := fmt.Sprintf("index shards sized for %g units/s", cfg.PerShard)
	if cfg.Unsharded {
		sharding = "index unsharded"
	}
	fmt.Fprintf(w, "heat: %.0f msgs/s, %d accounts, top share %g (zipf s=%.4f), %d B items, %.2f writes/msg, %s, %d s simulated (seed %d)\n",
		cfg.Rate, cfg.Accounts, cfg.TopShare, r.ZipfExponent, cfg.ItemBytes, cfg.WritesPerMessage, sharding, cfg.Seconds, cfg.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "METRIC\tVALUE\tLIMIT\tRESULT\n")
	fmt.Fprintf(tw, "max base key units/s\t%d (p99 %d; %s)\t%g\t%s\n", r.MaxBaseKeyUnitsPerSec, r.P99BaseKeyUnitsPerSec, r.HottestBaseKey, r.LimitUnitsPerSec,
		strings.ToUpper(r.Criteria[CriterionMaxBaseKey]))
	fmt.Fprintf(tw, "max index key units/s\t%d (p99 %d; %s)\t%g\t%s\n", r.MaxIndexKeyUnitsPerSec, r.P99IndexKeyUnitsPerSec, r.HottestIndexKey, r.LimitUnitsPerSec,
		strings.ToUpper(r.Criteria[CriterionMaxIndexKey]))
	fmt.Fprintf(tw, "top account\t%s: %.0f units/s over %d shard(s), %.0f each\t\t\n", r.TopAccount, r.TopAccountUnitsPerSec, r.TopAccountShards, r.TopAccountUnitsPerShard)
	fmt.Fprintf(tw, "sharded accounts\t%d\t\t\n", r.ShardedAccounts)
	headroom := fmt.Sprintf("%.0f msgs/s (%.1f× the rate)", r.HeadroomRate, r.HeadroomFactor)
	if r.HeadroomLimitedByBaseKey {
		headroom = "0: one message's base item writes alone exceed the limit"
	}
	fmt.Fprintf(tw, "headroom\t%s\t\t\n", headroom)
	if err := tw.Flush(); err != nil || len(r.Sweep) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "top share\tzipf s\ttop shards\tmax base\tmax index\tp99 index\theadroom msgs/s\t\n")
	for _, p := range r.Sweep {
		fmt.Fprintf(tw, "%g\t%.4f\t%d\t%d\t%d\t%d\t%.0f\t\n", p.TopShare, p.ZipfExponent, p.TopAccountShards,
			p.MaxBaseKeyUnitsPerSec, p.MaxIndexKeyUnitsPerSec, p.P99IndexKeyUnitsPerSec, p.HeadroomRate)
	}
	return tw.Flush()
}
