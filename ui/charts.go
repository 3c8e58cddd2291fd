package ui

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// runPalette colours the compared runs, one colour per run in every
// chart (Tableau's 20, which stay apart on white).
var runPalette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
	"#1f77b4", "#aec7e8", "#ff7f0e", "#98df8a", "#d62728", "#9467bd", "#c5b0d5", "#8c564b", "#e377c2", "#17becf",
}

func runColor(i int) string { return runPalette[i%len(runPalette)] }

// legendItem is one compared run in the charts' legend.
type legendItem struct {
	Name, ID, Color string
}

// barChart is one metric across the compared runs, as horizontal bars.
type barChart struct {
	Key        string
	W, H       float64
	Bars       []bar
	ZeroX      float64 // where value 0 sits
	LabelWidth float64
}

type bar struct {
	Y, X, W      float64
	LabelX       float64
	Color, Label string
	Value        string
	TextX        float64
	Best         bool
}

// Sizes of the compare charts, in SVG units.
const (
	barLabelW = 120.0
	barPlotW  = 200.0
	barValueW = 64.0
	barH      = 16.0
	barGap    = 6.0
	maxCharts = 24
)

// metricCharts draws each numeric metric (at most maxCharts) as bars,
// one per run that has it.
func metricCharts(rows []compareRow, names []string) []barChart {
	var out []barChart
	for _, row := range rows {
		if len(out) == maxCharts {
			break
		}
		vals, ok := numbers(row.Values)
		if !ok {
			continue
		}
		lo, hi := 0.0, 0.0
		for _, v := range vals {
			if !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		span := hi - lo
		if span == 0 {
			span = 1
		}
		c := barChart{Key: row.Key, W: barLabelW + barPlotW + barValueW, LabelWidth: barLabelW}
		c.ZeroX = barLabelW + (0-lo)/span*barPlotW
		y := 0.0
		for i, v := range vals {
			if math.IsNaN(v) {
				continue
			}
			x0, x1 := c.ZeroX, barLabelW+(v-lo)/span*barPlotW
			b := bar{Y: y, LabelX: barLabelW - 8, X: min(x0, x1), W: max(math.Abs(x1-x0), 1), Color: runColor(i), Label: truncate(names[i], 16),
				Value: row.Values[i], TextX: max(x0, x1) + 6, Best: i == row.Best}
			c.Bars = append(c.Bars, b)
			y += barH + barGap
		}
		c.H = max(y-barGap, barH)
		out = append(out, c)
	}
	return out
}

// numbers parses vals as numbers (NaN where a run has no value); false
// when some value is not a number or none is present.
func numbers(vals []string) ([]float64, bool) {
	out := make([]float64, len(vals))
	seen := false
	for i, s := range vals {
		if s == "" {
			out[i] = math.NaN()
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		out[i], seen = f, true
	}
	return out, seen
}

// parallelChart is the parallel-coordinates plot: one vertical axis per
// parameter or metric that varies, one line per run.
type parallelChart struct {
	W, H  float64
	Axes  []pcAxis
	Lines []pcLine
}

type pcAxis struct {
	X          float64
	Key        string
	Label      string
	Metric     bool
	Ticks      []pcTick
	LabelY     float64
	TopY, BotY float64
}

type pcTick struct {
	Y    float64
	Text string
}

type pcLine struct {
	Points string
	Color  string
	Name   string
}

// Sizes of the parallel-coordinates plot.
const (
	pcAxisGap = 150.0
	pcTop     = 40.0
	pcPlotH   = 260.0
	pcPad     = 70.0
	maxAxes   = 16
)

// parallelCoords builds the plot from the parameter and metric rows: an
// axis for each that takes two or more values across the runs (numbers
// on a linear scale, anything else as evenly spaced categories).
func parallelCoords(params, metrics []compareRow, names []string) *parallelChart {
	type axis struct {
		row    compareRow
		metric bool
	}
	var axes []axis
	for _, r := range params {
		axes = append(axes, axis{r, false})
	}
	for _, r := range metrics {
		axes = append(axes, axis{r, true})
	}
	pc := &parallelChart{}
	pos := make([][]float64, len(names)) // each run's y on each axis (NaN: none)
	for _, a := range axes {
		if len(pc.Axes) == maxAxes {
			break
		}
		ys, ticks, ok := scaleAxis(a.row.Values)
		if !ok {
			continue
		}
		x := pcPad + float64(len(pc.Axes))*pcAxisGap
		pc.Axes = append(pc.Axes, pcAxis{X: x, Key: a.row.Key, Label: truncate(a.row.Key, 22), Metric: a.metric, Ticks: ticks,
			LabelY: pcTop - 16, TopY: pcTop, BotY: pcTop + pcPlotH})
		for i := range names {
			pos[i] = append(pos[i], ys[i])
		}
	}
	if len(pc.Axes) < 2 {
		return nil
	}
	pc.W = 2*pcPad + float64(len(pc.Axes)-1)*pcAxisGap
	pc.H = pcTop + pcPlotH + 24
	for i, name := range names {
		var b strings.Builder
		for k, y := range pos[i] {
			if math.IsNaN(y) {
				continue
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", pc.Axes[k].X, y)
		}
		pc.Lines = append(pc.Lines, pcLine{Points: strings.TrimSpace(b.String()), Color: runColor(i), Name: name})
	}
	return pc
}

// scaleAxis places values on an axis: each run's y (NaN where it has no
// value) and the ticks; false when fewer than two distinct values.
func scaleAxis(vals []string) ([]float64, []pcTick, bool) {
	y := func(frac float64) float64 { return pcTop + (1-frac)*pcPlotH }
	ys := make([]float64, len(vals))
	if nums, ok := numbers(vals); ok {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range nums {
			if !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		if !(hi > lo) {
			return nil, nil, false
		}
		for i, v := range nums {
			ys[i] = math.NaN()
			if !math.IsNaN(v) {
				ys[i] = y((v - lo) / (hi - lo))
			}
		}
		ticks := []pcTick{{y(1), formatNumber(hi)}, {y(0.5), formatNumber((lo + hi) / 2)}, {y(0), formatNumber(lo)}}
		return ys, ticks, true
	}
	var cats []string
	for _, v := range vals {
		if v != "" && !slices.Contains(cats, v) {
			cats = append(cats, v)
		}
	}
	if len(cats) < 2 || len(cats) > 20 {
		return nil, nil, false
	}
	slices.Sort(cats)
	var ticks []pcTick
	for k, c := range cats {
		ticks = append(ticks, pcTick{y(float64(k) / float64(len(cats)-1)), truncate(strings.Trim(c, `"`), 14)})
	}
	for i, v := range vals {
		ys[i] = math.NaN()
		if k := slices.Index(cats, v); k >= 0 {
			ys[i] = y(float64(k) / float64(len(cats)-1))
		}
	}
	return ys, ticks, true
}
