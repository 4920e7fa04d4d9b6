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

// TestTrialAxisHasWholeNumbers: a plot over trials or epochs labels whole
// numbers only, however few there are.
func TestTrialAxisHasWholeNumbers(t *testing.T) {
	for _, n := range []int{2, 3, 15, 200} {
		var x, y []float64
		for i := 1; i <= n; i++ {
			x, y = append(x, float64(i)), append(y, float64(i*i))
		}
		f, err := LinePlot("r", "Reward", "trial", "reward", []Series{{Name: "mpc", X: x, Y: y, Points: true}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ticks := integerTicks{}.Ticks(0.9, float64(n)+0.1)
		if len(ticks) == 0 || len(ticks) > 11 {
			t.Fatalf("%d trials: %d ticks", n, len(ticks))
		}
		for _, tk := range ticks {
			if tk.Value != math.Trunc(tk.Value) || tk.Label == "" {
				t.Errorf("%d trials: tick %v", n, tk)
			}
		}
		// gonum's default would label 1.5 between trials 1 and 2.
		if n == 2 && (strings.Contains(string(f.SVG), ">1.5<") || !strings.Contains(string(f.SVG), ">2<")) {
			t.Errorf("2 trials: the axis labels a half trial, or not trial 2")
		}
	}
	// Fractional x keeps gonum's ticks.
	f, err := LinePlot("r", "Loss", "time", "loss", []Series{{Name: "l", X: []float64{0.1, 0.2, 0.3}, Y: []float64{1, 2, 3}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.SVG), ">0.2<") {
		t.Errorf("fractional x lost its fractional ticks")
	}
}
