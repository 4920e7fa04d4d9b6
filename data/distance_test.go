package data

import (
	"context"
	"math"
	"testing"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/rng"
)

func TestDistancesAgainstBruteForce(t *testing.T) {
	pool, err := Uniform(context.Background(), classic.CartPole, classic.CartPole.(env.Coverer).CoverageBox(), 5000, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	traj, _ := RandomEpisodes(classic.CartPole, 1, 2)
	scale := Scale(pool)
	got := make([]float64, pool.Len())
	if err := Distances(got, pool, traj, scale, 2); err != nil {
		t.Fatal(err)
	}
	w := pool.ObsDim + pool.ActDim
	for i := 0; i < pool.Len(); i++ {
		best := math.Inf(1)
		for k := 0; k < traj.Len(); k++ {
			var s float64
			for j := 0; j < w; j++ {
				d := (pool.value(i, j) - traj.value(k, j)) / scale[j]
				s += d * d
			}
			best = math.Min(best, s)
		}
		want := math.Sqrt(best)
		// float32 arithmetic through |a|²+|b|²−2a·b: absolute error of
		// order 1e-3 in these units, where distances are about 1.
		if math.Abs(got[i]-want) > 2e-3*(1+want) {
			t.Fatalf("transition %d: distance %g, brute force %g", i, got[i], want)
		}
	}
	// The trajectory's own transitions are at distance ~0.
	self := make([]float64, traj.Len())
	Distances(self, traj, traj, scale, 1)
	for i, d := range self {
		if d > 2e-3 {
			t.Fatalf("trajectory point %d is %g from the trajectory", i, d)
		}
	}
}

func TestWeightFunctions(t *testing.T) {
	for _, k := range Weightings {
		prev := 2.0
		for i := 0; i <= 100; i++ {
			d := 1.5 * float64(i) / 100 // beyond the edge at 1.2 too
			w, err := Weight(k, d, 1.2)
			if err != nil {
				t.Fatal(err)
			}
			if w < 0 || w > 1 || w > prev {
				t.Fatalf("%s: weight %g at %g after %g: not in [0, 1] or rising", k, w, d, prev)
			}
			prev = w
		}
		w0, _ := Weight(k, 0, 1.2)
		we, _ := Weight(k, 1.2, 1.2)
		wm, _ := Weight(k, 0.6, 1.2)
		if w0 != 1 || math.Abs(we) > 1e-12 || !(wm > 0 && wm < 1) {
			t.Fatalf("%s: weights %g at 0, %g halfway, %g at the edge", k, w0, wm, we)
		}
	}
	// The three shapes, at a quarter and half of the edge, from their
	// formulas: 1 − x, cos²(πx/2) = (1 + cos πx)/2, and
	// (e^(−5x) − e^(−5)) / (1 − e^(−5)).
	for _, x := range []float64{0.25, 0.5} {
		e5 := math.Exp(-5)
		for k, want := range map[Weighting]float64{
			Linear:      1 - x,
			Cosine:      (1 + math.Cos(math.Pi*x)) / 2,
			Exponential: (math.Exp(-5*x) - e5) / (1 - e5),
		} {
			if got, _ := Weight(k, 1.2*x, 1.2); math.Abs(got-want) > 1e-12 {
				t.Fatalf("%s at %g of the edge: %.15f, want %.15f", k, x, got, want)
			}
		}
	}
	if _, err := Weight("triangle", 0, 1); err == nil {
		t.Fatal("unknown weighting accepted")
	}
	if _, err := Weight("linear", 0, 0); err == nil {
		t.Fatal("zero edge accepted")
	}
	b, _ := RandomEpisodes(classic.PointMass, 2, 3)
	traj := b.Subset([]int{0, 1, 2, 3, 4})
	w, err := Weights("linear", b, traj, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w[0] != 1 || w[2] != 1 {
		t.Fatalf("trajectory transitions weigh %v, want 1", w[:5])
	}
	// Off the trajectory: the weight of each transition's distance (by
	// brute force) with the edge at the farthest one, which weighs 0.
	d := make([]float64, b.Len())
	if err := Distances(d, b, traj, Scale(b), 1); err != nil {
		t.Fatal(err)
	}
	edge, far := 0.0, 0
	for i, v := range d {
		if v > edge {
			edge, far = v, i
		}
	}
	for i, v := range d {
		want, _ := Weight(Linear, v, edge)
		if math.Abs(float64(w[i])-want) > 1e-6 {
			t.Fatalf("transition %d at distance %.4f weighs %g, want %g", i, v, w[i], want)
		}
	}
	if w[far] != 0 {
		t.Fatalf("the farthest transition weighs %g, want 0", w[far])
	}
}

func BenchmarkDistances(b *testing.B) {
	pool := NewBuffer(4, 1)
	src := rng.New(1)
	o := make([]float32, 4)
	for i := 0; i < 1_000_000; i++ {
		src.FillNormal(o, 0, 1)
		pool.Add(o, []float32{src.Float32()}, o, 0, false, true)
	}
	traj := pool.Subset(make([]int, 200))
	for i := range traj.Obs {
		traj.Obs[i] = float32(src.Normal())
	}
	scale := Scale(pool)
	d := make([]float64, pool.Len())
	for b.Loop() {
		Distances(d, pool, traj, scale, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1M-transitions")
}
