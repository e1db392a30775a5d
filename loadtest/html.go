package loadtest

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Postflight load test: {{.Verdict}}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 800px; }
table { border-collapse: collapse; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
.pass { color: #080; font-weight: bold; }
.fail { color: #b00; font-weight: bold; }
figure { margin: 1em 0; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; }
</style>
</head>
<body>
<h1>Postflight load test: <span class="{{.VerdictClass}}">{{.Verdict}}</span></h1>
<p>{{.Window}}</p>
<p>Bottleneck: {{.Bottleneck}}</p>
<h2>Summary</h2>
<table>
<tr><th>Metric</th><th>Value</th><th>Target</th><th>Result</th></tr>
{{range .Rows}}<tr><td>{{.Metric}}</td><td>{{.Value}}</td><td>{{.Target}}</td><td class="{{.Class}}">{{.Result}}</td></tr>
{{end}}</table>
<h2>Over time</h2>
{{range .Charts}}<figure>{{.}}</figure>
{{end}}
<h2>Configuration</h2>
<pre>{{.Config}}</pre>
</body>
</html>
`

type htmlRow struct {
	summaryRow
	Class string
}

type htmlPage struct {
	Verdict, VerdictClass string
	Window                string
	Bottleneck            string
	Rows                  []htmlRow
	Charts                []template.HTML
	Config                string
}

// WriteHTML writes a self-contained HTML report: the summary table and
// inline SVG charts of throughput, latencies and consumer lag over time. It
// loads nothing from elsewhere (no scripts, styles or fonts).
func WriteHTML(w io.Writer, r *Report) error {
	t, err := template.New("report").Parse(reportHTML)
	if err != nil {
		return fmt.Errorf("html template: %w", err)
	}
	cfg, err := json.MarshalIndent(r.Config, "", "  ")
	if err != nil {
		return fmt.Errorf("html config: %w", err)
	}
	page := htmlPage{
		Verdict:      "PASS",
		VerdictClass: "pass",
		Window: fmt.Sprintf("%s to %s (%.1f s), %d process(es), mode %s",
			r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339), r.DurationSec, max(r.Processes, 1), r.Config.Mode),
		Bottleneck: r.Bottleneck,
		Charts:     reportCharts(r),
		Config:     string(cfg),
	}
	if !r.Passed() {
		page.Verdict, page.VerdictClass = "FAIL", "fail"
	}
	for _, row := range summaryRows(r) {
		page.Rows = append(page.Rows, htmlRow{summaryRow: row, Class: strings.ToLower(row.Result)})
	}
	if err := t.Execute(w, page); err != nil {
		return fmt.Errorf("html: %w", err)
	}
	return nil
}

// reportCharts draws the report's time series, x in seconds since the
// first sample.
func reportCharts(r *Report) []template.HTML {
	t0 := r.Start.Unix()
	if len(r.Series) > 0 {
		t0 = min(t0, r.Series[0].T)
	}
	if len(r.ConsumerLag) > 0 {
		t0 = min(t0, r.ConsumerLag[0].T)
	}
	series := func(name, color string, y func(SeriesPoint) float64) chartLine {
		l := chartLine{Name: name, Color: color}
		for _, p := range r.Series {
			l.Points = append(l.Points, chartPoint{X: float64(p.T - t0), Y: y(p)})
		}
		return l
	}
	lag := chartLine{Name: "consumer lag", Color: "#8e44ad"}
	for _, p := range r.ConsumerLag {
		lag.Points = append(lag.Points, chartPoint{X: float64(p.T - t0), Y: float64(p.Lag)})
	}
	return []template.HTML{
		lineChart("Throughput", "operations per second", []chartLine{
			series("writes/s", "#1f77b4", func(p SeriesPoint) float64 { return float64(p.Writes) }),
			series("reads/s", "#2ca02c", func(p SeriesPoint) float64 { return float64(p.Reads) }),
			series("errors/s", "#d62728", func(p SeriesPoint) float64 { return float64(p.Errors) }),
		}),
		lineChart("Write latency (from intended start)", "ms", []chartLine{
			series("p50", "#1f77b4", func(p SeriesPoint) float64 { return p.WriteP50 }),
			series("p99", "#ff7f0e", func(p SeriesPoint) float64 { return p.WriteP99 }),
		}),
		lineChart("Read latency (from intended start)", "ms", []chartLine{
			series("p50", "#2ca02c", func(p SeriesPoint) float64 { return p.ReadP50 }),
			series("p99", "#ff7f0e", func(p SeriesPoint) float64 { return p.ReadP99 }),
		}),
		lineChart("End-to-end latency and index lag", "ms", []chartLine{
			series("end-to-end p99", "#9467bd", func(p SeriesPoint) float64 { return p.EndToEndP99 }),
			series("index lag p99", "#8c564b", func(p SeriesPoint) float64 { return p.IndexLagP99 }),
		}),
		lineChart("Consumer lag", "records", []chartLine{lag}),
	}
}
