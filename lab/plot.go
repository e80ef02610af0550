package lab

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// chart is one plot of the report: an SVG element to inline (or one that
// says why it could not be drawn).
type chart struct {
	title string
	svg   string
}

type xy struct{ x, y float64 }

type series struct {
	name   string
	points []xy
}

type bar struct {
	name  string
	value float64
	group string
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x5f, 0xa8, 0xff}, // blue
	color.RGBA{0xd9, 0x6c, 0x06, 0xff}, // orange
	color.RGBA{0x2a, 0x8a, 0x3e, 0xff}, // green
	color.RGBA{0x99, 0x33, 0x99, 0xff}, // purple
	color.RGBA{0x77, 0x77, 0x77, 0xff}, // grey
	color.RGBA{0xb0, 0x20, 0x30, 0xff}, // red
}

// barPlot draws one horizontal bar per value, labelled with its name.
func barPlot(title, unit string, bars []bar) chart {
	p := plot.New()
	p.X.Label.Text = unit
	p.X.Min = 0
	vals := make(plotter.Values, len(bars))
	names := make([]string, len(bars))
	// Top to bottom in the order given.
	for i, b := range bars {
		vals[len(bars)-1-i] = b.value
		names[len(bars)-1-i] = b.name
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return chart{title: title, svg: svgError(err)}
	}
	bc.Horizontal = true
	bc.Color = palette[0]
	bc.LineStyle.Width = 0
	p.Add(bc)
	p.NominalY(names...)
	p.Add(plotter.NewGrid())
	h := vg.Length(60+22*len(bars)) * vg.Millimeter / 4
	return chart{title: title, svg: drawSVG(p, 16*vg.Centimeter, max(h, 5*vg.Centimeter))}
}

// linePlot draws each series as a line with points, on log axes if asked.
func linePlot(title, xlabel, ylabel string, logXY bool, ss []series) chart {
	p := plot.New()
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	if logXY {
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{}, logTicks{}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	if !logXY {
		// Room above the lines for the legend.
		top := 0.0
		for _, s := range ss {
			for _, q := range s.points {
				top = max(top, q.y)
			}
		}
		p.Y.Min, p.Y.Max = 0, 1.4*top
	}
	for i, s := range ss {
		pts := make(plotter.XYs, 0, len(s.points))
		for _, q := range s.points {
			if logXY && (q.x <= 0 || q.y <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: q.x, Y: q.y})
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return chart{title: title, svg: svgError(err)}
		}
		l.Color, sc.Color = palette[i%len(palette)], palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
	}
	p.Add(plotter.NewGrid())
	return chart{title: title, svg: drawSVG(p, 16*vg.Centimeter, 9*vg.Centimeter)}
}

// cdfPlot draws the empirical distribution of each sample (in ms) as the
// share of iterations at or below each latency, on a log time axis.
func cdfPlot(title string, ss []series) chart {
	var lines []series
	for _, s := range ss {
		xs := make([]float64, len(s.points))
		for i, q := range s.points {
			xs[i] = max(q.x, 0.01)
		}
		slices.Sort(xs)
		var pts []xy
		for i, x := range xs {
			pts = append(pts, xy{x, float64(i+1) / float64(len(xs))})
		}
		lines = append(lines, series{s.name, pts})
	}
	p := plot.New()
	p.X.Label.Text = "ms from the end's answer to the first refusal (log)"
	p.Y.Label.Text = "share of iterations"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	// The curves rise to the right: the bottom right is free.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.YOffs = vg.Points(12)
	for i, s := range lines {
		pts := make(plotter.XYs, len(s.points))
		for j, q := range s.points {
			pts[j] = plotter.XY{X: q.x, Y: q.y}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return chart{title: title, svg: svgError(err)}
		}
		l.StepStyle = plotter.PostStep
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.8)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Add(plotter.NewGrid())
	return chart{title: title, svg: drawSVG(p, 16*vg.Centimeter, 9*vg.Centimeter)}
}

// scatterPlot draws points of each series without lines.
func scatterPlot(title, xlabel, ylabel string, ss []series) chart {
	p := plot.New()
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	// Between the two rows of points.
	p.Legend.Top = true
	p.Legend.YOffs = -2 * vg.Centimeter
	p.Y.Min, p.Y.Max = -0.1, 1.1
	for i, s := range ss {
		pts := make(plotter.XYs, len(s.points))
		for j, q := range s.points {
			pts[j] = plotter.XY{X: q.x, Y: q.y}
		}
		if len(pts) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return chart{title: title, svg: svgError(err)}
		}
		sc.Color = palette[i%len(palette)]
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(3)
		p.Add(sc)
		p.Legend.Add(s.name, sc)
	}
	p.Add(plotter.NewGrid())
	return chart{title: title, svg: drawSVG(p, 16*vg.Centimeter, 8*vg.Centimeter)}
}

// logTicks marks a log axis at 1, 2 and 5 times each power of ten, and
// labels them all: a plot spanning less than a decade still gets labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}

var (
	svgOpen  = regexp.MustCompile(`<svg[^>]*>`)
	svgWidth = regexp.MustCompile(`\s(width|height)="[^"]*"`)
	xmlDecl  = regexp.MustCompile(`<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*`)
)

// drawSVG renders p to an SVG element fit for inlining: no XML prolog,
// and a viewBox instead of a fixed size, so that it scales to the page.
func drawSVG(p *plot.Plot, w, h vg.Length) string {
	c := vgsvg.NewWith(vgsvg.UseWH(w, h))
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return svgError(err)
	}
	s := xmlDecl.ReplaceAllString(b.String(), "")
	s = svgOpen.ReplaceAllStringFunc(s, func(tag string) string {
		tag = svgWidth.ReplaceAllString(tag, "")
		if !strings.Contains(tag, "viewBox") {
			tag = strings.TrimSuffix(tag, ">") + fmt.Sprintf(` viewBox="0 0 %.0f %.0f">`, math.Ceil(w.Points()), math.Ceil(h.Points()))
		}
		return strings.Replace(tag, "<svg", `<svg role="img" preserveAspectRatio="xMidYMid meet"`, 1)
	})
	return s
}

// svgError is a small SVG saying that a plot could not be drawn, so that
// the page says so where the plot would be.
func svgError(err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 40"><text x="4" y="24">plot failed: %s</text></svg>`, htmlEscape(err.Error()))
	return b.String()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
