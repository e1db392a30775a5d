package loadtest

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// chartLine is one series of a line chart.
type chartLine struct {
	Name   string
	Color  string
	Points []chartPoint
}

type chartPoint struct{ X, Y float64 }

// Chart geometry, in SVG user units.
const (
	chartW, chartH           = 760, 280
	chartLeft, chartRight    = 64, 16
	chartTop, chartBottom    = 34, 40
	chartPlotW               = chartW - chartLeft - chartRight
	chartPlotH               = chartH - chartTop - chartBottom
	chartXTicks, chartYTicks = 8, 5
	chartMarkersUpTo         = 120 // points per line drawn with hover markers
	chartFont                = `font-family="sans-serif" font-size="11"`
	chartTitleFont           = `font-family="sans-serif" font-size="13" font-weight="bold"`
)

// lineChart renders an inline SVG line chart: x in seconds, y from 0 up to a
// round number above the largest value. Text is escaped; numbers are
// formatted by this code, so the result is safe to embed as template.HTML.
func lineChart(title, yUnit string, lines []chartLine) template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="18" %s>%s</text>`, chartLeft, chartTitleFont, esc(title))

	maxX, maxY := 0.0, 0.0
	n := 0
	for _, l := range lines {
		for _, p := range l.Points {
			maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s fill="#888">%s</text></svg>`, chartW/2-20, chartH/2, chartFont, "no data")
		return template.HTML(b.String())
	}
	xStep := niceStep(math.Max(maxX, 1), chartXTicks)
	yStep := niceStep(math.Max(maxY, 1e-9), chartYTicks)
	xMax := math.Ceil(math.Max(maxX, 1)/xStep) * xStep
	yMax := math.Ceil(math.Max(maxY, 1e-9)/yStep) * yStep
	px := func(x float64) float64 { return chartLeft + x/xMax*chartPlotW }
	py := func(y float64) float64 { return chartTop + chartPlotH - y/yMax*chartPlotH }

	// Grid, ticks and labels.
	for i := 0.0; i*yStep <= yMax+yStep/2; i++ {
		y := i * yStep
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, chartLeft, py(y), chartLeft+chartPlotW, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`, chartLeft-6, py(y)+4, chartFont, fmtTick(y))
	}
	for i := 0.0; i*xStep <= xMax+xStep/2; i++ {
		x := i * xStep
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`, px(x), chartTop, px(x), chartTop+chartPlotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`, px(x), chartTop+chartPlotH+16, chartFont, fmtTick(x))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`, chartLeft, chartTop, chartPlotW, chartPlotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" %s>seconds since start</text>`, chartLeft+chartPlotW/2, chartH-6, chartFont)
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle" %s>%s</text>`, chartTop+chartPlotH/2, chartFont, esc(yUnit))

	// Series, and the legend right-aligned above the plot (about 6.5 units
	// per character at font size 11).
	legendW := func(l chartLine) int { return 16 + int(6.5*float64(len([]rune(l.Name)))) + 14 }
	lx := chartLeft + chartPlotW
	for _, l := range lines {
		lx -= legendW(l)
	}
	for _, l := range lines {
		fmt.Fprintf(&b, `<rect x="%d" y="9" width="12" height="4" fill="%s"/><text x="%d" y="15" %s>%s</text>`, lx, esc(l.Color), lx+16, chartFont, esc(l.Name))
		lx += legendW(l)
		if len(l.Points) == 0 {
			continue
		}
		pts := make([]string, len(l.Points))
		for j, p := range l.Points {
			pts[j] = fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`,
			esc(l.Color), strings.Join(pts, " "), esc(l.Name))
		if len(l.Points) <= chartMarkersUpTo {
			for _, p := range l.Points {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"><title>%s: %s at %ss</title></circle>`,
					px(p.X), py(p.Y), esc(l.Color), esc(l.Name), fmtTick(p.Y), fmtTick(p.X))
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that divides
// [0, max] into at most about n intervals.
func niceStep(max float64, n int) float64 {
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtTick(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
