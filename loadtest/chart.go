package loadtest

import "html/template"

// Series is one named line of (seconds, value) points, for TimeChart.
type Series struct {
	Name   string
	Points [][2]float64
}

var seriesColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"}

// TimeChart renders an inline SVG line chart of series over time, in the
// style of the load test's HTML report (for other harnesses' reports, e.g.
// scripts/bench-serve's drain).
func TimeChart(title, yUnit string, series ...Series) template.HTML {
	lines := make([]chartLine, len(series))
	for i, s := range series {
		l := chartLine{Name: s.Name, Color: seriesColors[i%len(seriesColors)]}
		for _, p := range s.Points {
			l.Points = append(l.Points, chartPoint{X: p[0], Y: p[1]})
		}
		lines[i] = l
	}
	return lineChart(title, yUnit, lines)
}
