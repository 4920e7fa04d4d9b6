package stats

import (
	"errors"
	"math"
	"testing"

	"github.com/mismatch-rl/mismatch/rng"
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

func TestClusterMean(t *testing.T) {
	// Two groups, each constant: only the draw of groups varies, so the
	// resampled means are 0, 5 and 10 (probabilities ¼, ½, ¼) and the 95%
	// interval is [0, 10]; a bootstrap of the pooled values would give a
	// far narrower one.
	m, iv, err := ClusterMean([][]float64{{0, 0, 0}, {10, 10, 10}, {}}, 2000, 0.95, 1)
	if err != nil || m != 5 || iv.Low != 0 || iv.High != 10 {
		t.Fatalf("mean %g, interval %v, %v; want 5 in [0, 10]", m, iv, err)
	}
	// One group: its values are resampled, {0, 10} giving means 0, 5, 10.
	if m, iv, err := ClusterMean([][]float64{{0, 10}}, 2000, 0.95, 1); err != nil || m != 5 || iv.Low != 0 || iv.High != 10 {
		t.Fatalf("mean %g, interval %v, %v; want 5 in [0, 10]", m, iv, err)
	}
	// One constant group: no spread at all.
	if m, iv, err := ClusterMean([][]float64{{2, 2}}, 500, 0.9, 1); err != nil || m != 2 || iv.Low != 2 || iv.High != 2 {
		t.Fatalf("mean %g, interval %v, %v; want 2 in [2, 2]", m, iv, err)
	}
	// Unequal groups: the mean is over values, not over group means.
	if m, _, _ := ClusterMean([][]float64{{1}, {4, 4, 4}}, 10, 0.9, 1); m != 13.0/4 {
		t.Fatalf("mean %g, want 13/4", m)
	}
	if _, _, err := ClusterMean([][]float64{{}, nil}, 10, 0.9, 1); err != ErrUndefined {
		t.Fatalf("no values: %v", err)
	}
	if _, _, err := ClusterMean([][]float64{{1, math.NaN()}}, 10, 0.9, 1); err == nil {
		t.Fatal("a NaN was averaged")
	}
	// Coverage: 8 groups of 5 values, each group shifted by its own
	// N(0, 1) offset around a true mean of 0. The 90% interval holds 0 in
	// close to 90% of 300 such data sets (percentile intervals of few
	// groups run a little narrow: 80% to 97% is asked).
	src := rng.New(7)
	hits := 0
	for rep := range 300 {
		groups := make([][]float64, 8)
		for g := range groups {
			off := src.Normal()
			for range 5 {
				groups[g] = append(groups[g], off+src.Normal())
			}
		}
		_, iv, err := ClusterMean(groups, 400, 0.9, uint64(rep))
		if err != nil {
			t.Fatal(err)
		}
		if iv.Low <= 0 && 0 <= iv.High {
			hits++
		}
	}
	if hits < 240 || hits > 291 {
		t.Fatalf("the 90%% interval held the true mean in %d of 300 data sets", hits)
	}
	t.Logf("coverage %d of 300", hits)
}
