package stats

import (
	"errors"
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestCorrelationsByHand(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5}
	y := []float64{2, 1, 4, 3, 5}
	// Pearson: mean 3 each; Σdxdy = (−2)(−1)+(−1)(−2)+0+1·0+2·2 = 8;
	// Σdx² = Σdy² = 10 → 0.8.
	if r, err := Pearson(x, y); err != nil || !near(r, 0.8, 1e-12) {
		t.Fatalf("Pearson %v %v, want 0.8", r, err)
	}
	// No ties: Spearman equals Pearson of the ranks, the same numbers.
	if r, err := Spearman(x, y); err != nil || !near(r, 0.8, 1e-12) {
		t.Fatalf("Spearman %v %v, want 0.8", r, err)
	}
	// Kendall: of 10 pairs, discordant are (1,2) and (3,4): (8−2)/10.
	if r, err := Kendall(x, y); err != nil || !near(r, 0.6, 1e-12) {
		t.Fatalf("Kendall %v %v, want 0.6", r, err)
	}
}

func TestCorrelationsWithTies(t *testing.T) {
	x := []float64{1, 2, 2, 3}
	y := []float64{1, 1, 2, 3}
	// Ranks: x → 1, 2.5, 2.5, 4; y → 1.5, 1.5, 3, 4. Pearson of those:
	// deviations x: −1.5, 0, 0, 1.5; y: −1, −1, 0.5, 1.5; Σdxdy = 1.5+2.25
	// = 3.75; Σdx² = 4.5; Σdy² = 1+1+0.25+2.25 = 4.5 → 3.75/4.5.
	if r, err := Spearman(x, y); err != nil || !near(r, 3.75/4.5, 1e-12) {
		t.Fatalf("Spearman with ties %v %v, want %v", r, err, 3.75/4.5)
	}
	// Kendall tau-b: pairs (12) tie in y, (23) tie in x, the other four
	// concordant: C=4, D=0, tx=1, ty=1 → 4/√(5·5) = 0.8.
	if r, err := Kendall(x, y); err != nil || !near(r, 0.8, 1e-12) {
		t.Fatalf("Kendall tau-b %v %v, want 0.8", r, err)
	}
	got := ranks([]float64{5, 1, 5, 5, 0})
	want := []float64{4, 2, 4, 4, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ranks %v, want %v", got, want)
		}
	}
}

func TestUndefined(t *testing.T) {
	c := []float64{2, 2, 2, 2}
	v := []float64{1, 2, 3, 4}
	for name, f := range map[string]func(x, y []float64) (float64, error){"pearson": Pearson, "spearman": Spearman, "kendall": Kendall} {
		if _, err := f(c, v); !errors.Is(err, ErrUndefined) {
			t.Fatalf("%s of a constant series: %v, want ErrUndefined", name, err)
		}
		if _, err := f(v[:2], v[:2]); !errors.Is(err, ErrUndefined) {
			t.Fatalf("%s of two pairs: %v, want ErrUndefined", name, err)
		}
	}
	if _, err := Bootstrap(Pearson, c, v, 100, 0.95, 1); !errors.Is(err, ErrUndefined) {
		t.Fatalf("bootstrap of a constant series: %v", err)
	}
	if _, err := Pearson([]float64{1, math.NaN(), 3}, []float64{1, 2, 3}); err == nil || errors.Is(err, ErrUndefined) {
		t.Fatalf("NaN input: %v, want a distinct error", err)
	}
	if _, err := TLS(c, c); !errors.Is(err, ErrUndefined) {
		t.Fatal("TLS of a single point accepted")
	}
}

func TestTLSRecoversLine(t *testing.T) {
	// Points on y = −2x + 1, each moved ±0.1 along the line's normal (a
	// pair at every position): the offsets are uncorrelated with the
	// position, so TLS recovers the line exactly, where ordinary least
	// squares would not.
	var x, y []float64
	nx, ny := 2/math.Sqrt(5), 1/math.Sqrt(5) // unit normal of the line
	for i := 0; i < 10; i++ {
		xi := float64(i) - 5
		for _, off := range []float64{0.1, -0.1} {
			x = append(x, xi+off*nx)
			y = append(y, -2*xi+1+off*ny)
		}
	}
	l, err := TLS(x, y)
	if err != nil || !near(l.Slope, -2, 1e-9) || !near(l.Intercept, 1, 1e-9) {
		t.Fatalf("TLS %+v %v, want slope −2 intercept 1", l, err)
	}
	if l, err := TLS([]float64{1, 2, 3}, []float64{4, 4, 4}); err != nil || l.Slope != 0 || l.Intercept != 4 {
		t.Fatalf("horizontal line: %+v %v", l, err)
	}
	if _, err := TLS([]float64{1, 1, 1}, []float64{1, 2, 3}); !errors.Is(err, ErrUndefined) {
		t.Fatal("vertical line accepted")
	}
}

func TestBootstrap(t *testing.T) {
	// A strong relation: the 95% interval holds the estimate, stays
	// positive, and is reproducible for a seed.
	var x, y []float64
	for i := 0; i < 40; i++ {
		x = append(x, float64(i))
		y = append(y, float64(i)+5*math.Sin(float64(i)*1.7))
	}
	r, _ := Pearson(x, y)
	iv, err := Bootstrap(Pearson, x, y, 1000, 0.95, 7)
	if err != nil || iv.Low > r || iv.High < r || iv.Low <= 0.5 || iv.High > 1 {
		t.Fatalf("interval %+v %v around %v", iv, err, r)
	}
	iv2, _ := Bootstrap(Pearson, x, y, 1000, 0.95, 7)
	if iv != iv2 {
		t.Fatal("bootstrap is not reproducible")
	}
}
