package report

import (
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func samplePage(t *testing.T, dir string) string {
	t.Helper()
	var x, y []float64
	for i := 0; i < 20; i++ {
		x = append(x, float64(i))
		y = append(y, math.Sin(float64(i)/3))
	}
	line, err := LinePlot("line", "A line", "x", "y", []Series{{Name: "sin", X: x, Y: y, Points: true}}, []Marker{{Name: "mark", X: 5}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ScatterPlot("scatter", "Points", "x", "y", []Group{{Name: "a", X: x, Y: y}}, &[2]float64{0.1, -1})
	if err != nil {
		t.Fatal(err)
	}
	p := &Page{Title: "Test <report>"}
	p.Paragraph("text & more")
	p.Figure(line, "the line")
	p.Figure(sc, "the points")
	p.Table([]string{"a", "b"}, [][]string{{"1", "<2>"}})
	path := filepath.Join(dir, "report.html")
	if err := p.Write(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPageIsSelfContained(t *testing.T) {
	path := samplePage(t, t.TempDir())
	if err := CheckOffline(path, 2); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(path)
	if !strings.Contains(string(html), "Test &lt;report&gt;") || !strings.Contains(string(html), "&lt;2&gt;") {
		t.Fatal("text is not escaped")
	}
}

// TestPageRendersHeadless opens the page in headless Chromium with its
// network turned off and requires the figures' colours on screen.
func TestPageRendersHeadless(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	dir := t.TempDir()
	path := samplePage(t, dir)
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.Command(chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--proxy-server=127.0.0.1:9", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size=1200,1600", "--screenshot="+shot, "file://"+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Count pixels of the first series colour (#1f77b4): drawn lines and
	// markers mean the SVG rendered.
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if abs(int(r>>8)-0x1f) < 24 && abs(int(g>>8)-0x77) < 24 && abs(int(bl>>8)-0xb4) < 24 {
				n++
			}
		}
	}
	t.Logf("%d pixels of the series colour", n)
	if n < 500 {
		t.Fatalf("only %d pixels of the series colour: the figures did not render", n)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestLinePlotWithoutData: a plot of series that hold only NaN renders an
// empty frame (it once drew axes of no extent and never returned).
func TestLinePlotWithoutData(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := LinePlot("empty", "Nothing", "trial", "MSE", []Series{{Name: "mse", X: []float64{1, 2}, Y: []float64{math.NaN(), math.NaN()}, Points: true}}, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("LinePlot of no data did not return")
	}
}
