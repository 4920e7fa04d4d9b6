// Package report turns run and study directories into figures (PNG and
// SVG) and a self-contained HTML report that opens without a network.
package report

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// Figure is a rendered plot in both formats.
type Figure struct {
	Name string // file stem
	PNG  []byte
	SVG  []byte
}

// Write saves the figure as dir/Name.png and dir/Name.svg, atomically.
func (f Figure) Write(dir string) error {
	if err := safefile.WriteBytes(dir+"/"+f.Name+".png", f.PNG); err != nil {
		return err
	}
	return safefile.WriteBytes(dir+"/"+f.Name+".svg", f.SVG)
}

const (
	figWidth  = 16 * vg.Centimeter
	figHeight = 10 * vg.Centimeter
)

// render draws p in both formats.
func render(name string, p *plot.Plot) (Figure, error) {
	f := Figure{Name: name}
	png := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(figWidth, figHeight), vgimg.UseDPI(120))}
	p.Draw(draw.New(png))
	var b bytes.Buffer
	if _, err := png.WriteTo(&b); err != nil {
		return f, err
	}
	f.PNG = append([]byte(nil), b.Bytes()...)
	b.Reset()
	svg := vgsvg.New(figWidth, figHeight)
	p.Draw(draw.New(svg))
	if _, err := svg.WriteTo(&b); err != nil {
		return f, err
	}
	f.SVG = b.Bytes()
	return f, nil
}

// Palette is the colours series are drawn in, in order.
var Palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

// Series is a named line of (x, y) points.
type Series struct {
	Name   string
	X, Y   []float64
	Points bool // draw markers too
	Dashed bool
}

// LinePlot draws series against shared axes, with labelled vertical
// markers. Points with a NaN coordinate are skipped.
func LinePlot(name, title, xLabel, yLabel string, series []Series, markers []Marker) (Figure, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	integer, entries := true, 0
	for i, s := range series {
		var xy plotter.XYs
		for j := range s.X {
			if !math.IsNaN(s.X[j]) && !math.IsNaN(s.Y[j]) && !math.IsInf(s.Y[j], 0) {
				xy = append(xy, plotter.XY{X: s.X[j], Y: s.Y[j]})
				integer = integer && s.X[j] == math.Trunc(s.X[j])
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return Figure{}, err
		}
		c := Palette[i%len(Palette)]
		l.Color = c
		l.Width = vg.Points(1.5)
		if s.Dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		entries++
		if s.Points {
			// The legend shows the marker the points are drawn with.
			sc, _ := plotter.NewScatter(xy)
			sc.Color = c
			sc.Shape = draw.CircleGlyph{}
			sc.Radius = vg.Points(2.5)
			p.Add(sc)
			p.Legend.Add(s.Name, l, sc)
		} else {
			p.Legend.Add(s.Name, l)
		}
	}
	if entries == 0 {
		// Nothing to draw (a held-out error of a run without held-out
		// data): an empty frame, not axes of no extent.
		p.Title.Text += " (no data)"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		return render(name, p)
	}
	if integer {
		p.X.Tick.Marker = integerTicks{}
	}
	pad(p)
	// Room above the data for the legend's rows, so that it covers none.
	p.Y.Max += 0.07 * float64(entries+len(markers)) * (p.Y.Max - p.Y.Min)
	addMarkers(p, markers, len(series))
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), -vg.Points(4)
	return render(name, p)
}

// integerTicks marks whole numbers only (trials, epochs), at most about
// ten of them.
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || hi < lo {
		return nil
	}
	step := math.Max(1, math.Ceil((hi-lo)/10))
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
	}
	return ts
}

// pad widens the axes by 4% of their span on each side, so that points at
// the extremes are drawn whole and away from the frame.
func pad(p *plot.Plot) {
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		span := a.Max - a.Min
		if span == 0 {
			span = math.Max(math.Abs(a.Max), 1)
		}
		a.Min -= 0.04 * span
		a.Max += 0.04 * span
	}
	// Headroom for the legend above the data.
	p.Y.Max += 0.12 * (p.Y.Max - p.Y.Min)
}

// Marker is a labelled vertical line drawn on a plot.
type Marker struct {
	Name string
	X    float64
}

func addMarkers(p *plot.Plot, ms []Marker, offset int) {
	for i, m := range ms {
		l, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: p.Y.Min}, {X: m.X, Y: p.Y.Max}})
		if err != nil {
			continue
		}
		l.Color = Palette[(offset+i)%len(Palette)]
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		l.Width = vg.Points(1)
		p.Add(l)
		p.Legend.Add(m.Name, l)
	}
}

// Group is a named set of points of a scatter plot.
type Group struct {
	Name string
	X, Y []float64
}

// ScatterPlot draws groups of points in their own colours and, when
// trend is set, the line y = slope·x + intercept across the data's range.
func ScatterPlot(name, title, xLabel, yLabel string, groups []Group, trend *[2]float64) (Figure, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, g := range groups {
		var xy plotter.XYs
		for j := range g.X {
			if !math.IsNaN(g.X[j]) && !math.IsNaN(g.Y[j]) && !math.IsInf(g.X[j], 0) && !math.IsInf(g.Y[j], 0) {
				xy = append(xy, plotter.XY{X: g.X[j], Y: g.Y[j]})
				lo, hi = math.Min(lo, g.X[j]), math.Max(hi, g.X[j])
			}
		}
		if len(xy) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return Figure{}, err
		}
		sc.Color = Palette[i%len(Palette)]
		sc.Shape = draw.CircleGlyph{}
		sc.Radius = vg.Points(2.5)
		p.Add(sc)
		p.Legend.Add(g.Name, sc)
	}
	if trend != nil && lo < hi {
		l, err := plotter.NewLine(plotter.XYs{{X: lo, Y: trend[0]*lo + trend[1]}, {X: hi, Y: trend[0]*hi + trend[1]}})
		if err == nil {
			l.Color = color.Black
			l.Width = vg.Points(1.2)
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			p.Add(l)
			p.Legend.Add("TLS trend", l)
		}
	}
	pad(p)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), -vg.Points(4)
	return render(name, p)
}

// WriteSVGInline writes an SVG document for embedding in HTML (without its
// XML prolog).
func WriteSVGInline(w io.Writer, svg []byte) error {
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	_, err := w.Write(svg)
	return err
}

// Number formats a number for a table: four significant digits, NaN as a
// dash.
func Number(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.4g", v)
}

// grid adapts a matrix to gonum's GridXYZ: column c, row r at (c, r).
type grid struct{ z [][]float64 }

func (g grid) Dims() (c, r int)   { return len(g.z[0]), len(g.z) }
func (g grid) Z(c, r int) float64 { return g.z[r][c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// HeatMap draws z (rows by columns) as coloured cells labelled with their
// values, on a scale from lo to hi shared with other heat maps; NaN cells
// are left blank. Columns are labelled xTicks and rows yTicks.
func HeatMap(name, title, xLabel, yLabel string, xTicks, yTicks []string, z [][]float64, lo, hi float64) (Figure, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	pal := moreland.SmoothBlueRed()
	pal.SetMin(lo)
	pal.SetMax(hi)
	if !(hi > lo) {
		pal.SetMax(lo + 1)
	}
	h := plotter.NewHeatMap(grid{z}, pal.Palette(64))
	h.NaN = color.White
	h.Min, h.Max = lo, math.Max(hi, lo+1e-9)
	p.Add(h)
	var labels plotter.XYLabels
	for r := range z {
		for c := range z[r] {
			if !math.IsNaN(z[r][c]) {
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(c), Y: float64(r)})
				labels.Labels = append(labels.Labels, fmt.Sprintf("%.3g", z[r][c]))
			}
		}
	}
	if len(labels.XYs) > 0 {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return Figure{}, err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = -0.5
			l.TextStyle[i].YAlign = -0.5
		}
		p.Add(l)
	}
	ticks := func(names []string) plot.ConstantTicks {
		t := make(plot.ConstantTicks, len(names))
		for i, n := range names {
			t[i] = plot.Tick{Value: float64(i), Label: n}
		}
		return t
	}
	p.X.Tick.Marker = ticks(xTicks)
	p.Y.Tick.Marker = ticks(yTicks)
	p.X.Min, p.X.Max = -0.5, float64(len(xTicks))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(yTicks))-0.5
	return render(name, p)
}
