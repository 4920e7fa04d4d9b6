package nn

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/rng"
)

var allActivations = []Activation{Swish, Tanh, ReLU, LeakyReLU, Identity}

func randInput(src *rng.Source, n int) []float32 {
	x := make([]float32, n)
	src.FillNormal(x, 0, 1)
	return x
}

func mustNew(t testing.TB, cfg Config, seed uint64) *MLP {
	t.Helper()
	m, err := New(cfg, rng.New(seed))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestForwardMatchesFloat64Reference(t *testing.T) {
	shapes := []struct {
		members, in, out, rows int
		hidden                 []int
	}{
		{1, 1, 1, 1, []int{3}},
		{2, 1, 4, 7, []int{5, 5}},
		{3, 6, 8, 300, []int{16, 9}}, // rows not a multiple of the chunk
		{5, 6, 8, 513, []int{20, 20, 20}},
		{2, 4, 3, 2, nil}, // linear
	}
	for _, act := range allActivations {
		for _, s := range shapes {
			name := fmt.Sprintf("%v/E%d_in%d_h%v_out%d_B%d", act, s.members, s.in, s.hidden, s.out, s.rows)
			t.Run(name, func(t *testing.T) {
				cfg := Config{Members: s.members, In: s.in, Hidden: s.hidden, Out: s.out, Activation: act}
				m := mustNew(t, cfg, 11)
				// Non-zero biases, so bias handling is tested.
				src := rng.New(12)
				for _, l := range m.Layers {
					src.FillNormal(l.B, 0, 0.3)
				}
				x := randInput(src, s.members*s.rows*s.in)
				for _, threads := range []int{1, 2, 3} {
					ev := NewEvaluator(m, threads)
					got := make([]float32, s.members*s.rows*s.out)
					if err := ev.Forward(got, x, s.rows); err != nil {
						t.Fatal(err)
					}
					ev.Close()
					want := refFromMLP(m).forwardAll(x, s.rows)
					for i := range got {
						if math.Abs(float64(got[i])-want[i]) > 2e-5*(1+math.Abs(want[i])) {
							t.Fatalf("threads %d: output %d = %g, reference %g (backend %s)", threads, i, got[i], want[i], kernel.Backend)
						}
					}
				}
			})
		}
	}
}

func TestForwardMembersAndThreadsAgree(t *testing.T) {
	cfg := Config{Members: 4, In: 5, Hidden: []int{32, 32}, Out: 3, Activation: Swish}
	m := mustNew(t, cfg, 3)
	const rows = 700
	x := randInput(rng.New(4), cfg.Members*rows*cfg.In)
	all := make([]float32, cfg.Members*rows*cfg.Out)
	ev := NewEvaluator(m, 1)
	defer ev.Close()
	if err := ev.Forward(all, x, rows); err != nil {
		t.Fatal(err)
	}
	// Bit-identical whatever the number of goroutines.
	ev2 := NewEvaluator(m, 2)
	defer ev2.Close()
	all2 := make([]float32, len(all))
	if err := ev2.Forward(all2, x, rows); err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if all[i] != all2[i] {
			t.Fatalf("1 and 2 goroutines differ at %d: %g vs %g", i, all[i], all2[i])
		}
	}
	// Members 2 and 0, fed blocks 2 and 0 of x, reproduce those blocks.
	members := []int{2, 0}
	xs := append(append([]float32(nil), x[2*rows*cfg.In:3*rows*cfg.In]...), x[:rows*cfg.In]...)
	sub := make([]float32, 2*rows*cfg.Out)
	if err := ev.ForwardMembers(sub, xs, rows, members); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rows*cfg.Out; i++ {
		if sub[i] != all[2*rows*cfg.Out+i] || sub[rows*cfg.Out+i] != all[i] {
			t.Fatalf("member subset differs at %d", i)
		}
	}
	if err := ev.ForwardMembers(sub, xs, rows, []int{4}); err == nil {
		t.Fatal("member 4 of 4 accepted")
	}
}

// TestPackedForwardThreadsAgree: a packed pass gives the same bits on 1,
// 2 and 3 goroutines, whose tasks split the rows differently (packedChunk),
// at planning's sizes small and large.
func TestPackedForwardThreadsAgree(t *testing.T) {
	for _, c := range []struct{ rows, k, workers, chunk int }{
		{200, 5, 2, 128}, {2000, 5, 2, 512}, {500, 5, 2, 320}, {1, 1, 2, 32}, {200, 5, 1, chunkRows}, {40, 3, 3, 32},
	} {
		if got := packedChunk(c.rows, c.k, c.workers); got != c.chunk {
			t.Errorf("packedChunk(%d rows, %d blocks, %d workers) = %d, want %d", c.rows, c.k, c.workers, got, c.chunk)
		}
	}
	cfg := Config{Members: 5, In: 7, Hidden: []int{48, 48}, Out: 6, Activation: Swish}
	m := mustNew(t, cfg, 8)
	for _, p := range []Precision{FP32, BF16} {
		for _, rows := range []int{200, 37, 1100} {
			x := randInput(rng.New(9), cfg.Members*rows*cfg.In)
			var first []float32
			for _, threads := range []int{1, 2, 3} {
				ev, err := NewPackedEvaluator(m, threads, p)
				if errors.Is(err, ErrUnsupported) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				out := make([]float32, cfg.Members*rows*cfg.Out)
				err = ev.Forward(out, x, rows)
				ev.Close()
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = out
					continue
				}
				for i := range out {
					if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
						t.Fatalf("%v, %d rows: output %d is %v on %d goroutines, %v on 1", p, rows, i, out[i], threads, first[i])
					}
				}
			}
		}
	}
}

// fdCheck compares analytic gradients with central differences of f in
// float64, for every parameter index in idx.
func fdCheck(t *testing.T, what string, p []float64, grad []float32, f func([]float64) float64) {
	t.Helper()
	const h = 1e-6
	worst := 0.0
	for i := range p {
		orig := p[i]
		p[i] = orig + h
		fp := f(p)
		p[i] = orig - h
		fm := f(p)
		p[i] = orig
		fd := (fp - fm) / (2 * h)
		err := math.Abs(float64(grad[i]) - fd)
		// float32 gradients carry relative error of order 1e-6; a wrong
		// formula is off by O(1).
		if err > 2e-3*math.Abs(fd)+2e-5 {
			t.Errorf("%s: gradient %d = %.7g, finite difference %.7g", what, i, grad[i], fd)
		}
		worst = math.Max(worst, err)
	}
	t.Logf("%s: %d gradients, worst absolute error %.2g", what, len(p), worst)
}

func TestGradientsAgainstFiniteDifferences(t *testing.T) {
	for _, act := range allActivations {
		for _, learnBounds := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/learnBounds=%v", act, learnBounds), func(t *testing.T) {
				const members, rows, d = 2, 6, 3
				cfg := Config{Members: members, In: 4, Hidden: []int{7, 5}, Out: 2 * d, Activation: act, LeakySlope: 0.1}
				m := mustNew(t, cfg, 21)
				src := rng.New(22)
				for _, l := range m.Layers {
					src.FillNormal(l.B, 0, 0.2)
				}
				x := randInput(src, members*rows*cfg.In)
				y := randInput(src, members*rows*d)
				w := make([]float32, members*rows)
				src.FillUniform(w, 0, 2)
				g := NewGaussian(d)
				// Bounds near the outputs' range, so both softpluses bend.
				for j := range d {
					g.MaxLogVar[j] = 0.3 + 0.1*float32(j)
					g.MinLogVar[j] = -1.5 - 0.2*float32(j)
				}
				lambda := []float32{1e-2, 2e-2, 5e-2}
				const penalty = 0.01

				p := NewPass(m, 2)
				defer p.Close()
				out, err := p.Forward(x, rows)
				if err != nil {
					t.Fatal(err)
				}
				dOut := make([]float32, len(out))
				dMax, dMin := make([]float32, d), make([]float32, d)
				if _, err := g.Loss(out, y, w, members, rows, dOut, dMax, dMin); err != nil {
					t.Fatal(err)
				}
				if err := p.Backward(dOut); err != nil {
					t.Fatal(err)
				}
				if err := m.WeightDecay(lambda, p.Grad); err != nil {
					t.Fatal(err)
				}
				g.BoundPenalty(penalty, dMax, dMin)

				ref := refFromMLP(m)
				hi := make([]float64, d)
				lo := make([]float64, d)
				for j := range d {
					hi[j], lo[j] = float64(g.MaxLogVar[j]), float64(g.MinLogVar[j])
				}
				total := func() float64 {
					l := refGaussianLoss(ref.forwardAll(x, rows), y, w, members, rows, d, hi, lo)
					var s float64
					for j := range d {
						s += hi[j] - lo[j]
					}
					return l + ref.refDecay(lambda) + penalty*s
				}
				fdCheck(t, "weights", ref.params, p.Grad, func([]float64) float64 { return total() })
				if learnBounds {
					fdCheck(t, "max log-variance", hi, dMax, func([]float64) float64 { return total() })
					fdCheck(t, "min log-variance", lo, dMin, func([]float64) float64 { return total() })
				}
			})
		}
	}
}

func TestMSEGradient(t *testing.T) {
	const members, rows, d = 3, 5, 2
	cfg := Config{Members: members, In: 3, Hidden: []int{8}, Out: d, Activation: Tanh}
	m := mustNew(t, cfg, 31)
	src := rng.New(32)
	x := randInput(src, members*rows*cfg.In)
	y := randInput(src, members*rows*d)
	w := make([]float32, members*rows)
	src.FillUniform(w, 0, 1)
	p := NewPass(m, 1)
	defer p.Close()
	out, _ := p.Forward(x, rows)
	dOut := make([]float32, len(out))
	loss, err := MSE(out, y, w, members, rows, d, dOut)
	if err != nil {
		t.Fatal(err)
	}
	ref := refFromMLP(m)
	if want := refMSE(ref.forwardAll(x, rows), y, w, members, rows, d); math.Abs(loss-want) > 1e-5*want {
		t.Fatalf("MSE %g, reference %g", loss, want)
	}
	if err := p.Backward(dOut); err != nil {
		t.Fatal(err)
	}
	fdCheck(t, "mse", ref.params, p.Grad, func(q []float64) float64 {
		return refMSE(ref.forwardAll(x, rows), y, w, members, rows, d)
	})
}

func TestGaussianSplitAndNLL(t *testing.T) {
	g := NewGaussian(2)
	g.MaxLogVar[1], g.MinLogVar[1] = 1, -3
	raws := []float32{-40, -12, -3.5, -1, 0, 0.4, 0.6, 3, 40}
	out := make([]float32, 0, 4*len(raws))
	for _, r := range raws {
		out = append(out, 0.5, -0.5, r, r)
	}
	n := len(raws)
	mean, lv := make([]float32, 2*n), make([]float32, 2*n)
	if err := g.Split(mean, lv, out, n); err != nil {
		t.Fatal(err)
	}
	for i, r := range raws {
		for j := 0; j < 2; j++ {
			want := refClamp(float64(r), float64(g.MaxLogVar[j]), float64(g.MinLogVar[j]))
			if math.Abs(float64(lv[2*i+j])-want) > 2e-6*(1+math.Abs(want)) {
				t.Errorf("clamp(%g) dim %d = %g, want %g", r, j, lv[2*i+j], want)
			}
			// The clamp is soft: the min-side softplus lifts values at the
			// top by log1p(exp(−(max−min))), 2.8e-5 for bounds 0.5 and −10.
			slack := math.Log1p(math.Exp(-float64(g.MaxLogVar[j] - g.MinLogVar[j])))
			if float64(lv[2*i+j]) > float64(g.MaxLogVar[j])+slack+1e-6 || lv[2*i+j] < g.MinLogVar[j]-1e-6 {
				t.Errorf("clamp(%g) = %g escapes [%g, %g+%.2g]", r, lv[2*i+j], g.MinLogVar[j], g.MaxLogVar[j], slack)
			}
		}
		if mean[2*i] != 0.5 || mean[2*i+1] != -0.5 {
			t.Fatalf("mean row %d = %v", i, mean[2*i:2*i+2])
		}
	}
	// Sample draws mean + exp(lv/2)·eps with Split's log-variance.
	eps := make([]float32, 2*n)
	for i := range eps {
		eps[i] = float32(i%5) - 2
	}
	sample := make([]float32, 2*n)
	if err := g.Sample(sample, out, eps, n); err != nil {
		t.Fatal(err)
	}
	for i := range sample {
		want := float64(mean[i]) + math.Exp(float64(lv[i])/2)*float64(eps[i])
		if math.Abs(float64(sample[i])-want) > 1e-6*(1+math.Abs(want)) {
			t.Errorf("sample %d (raw %g, ε %g) = %g, want %g", i, out[i/2*4+2+i%2], eps[i], sample[i], want)
		}
	}
	if err := g.Sample(sample, out, eps[:2*n-1], n); err == nil {
		t.Error("Sample took too few normal draws without an error")
	}
	// Far outside the bounds the clamp saturates at them.
	if math.Abs(float64(lv[2*(n-1)])-0.5) > 3e-5 || math.Abs(float64(lv[0])+10) > 1e-6 {
		t.Errorf("saturation: clamp(40) = %g, clamp(−40) = %g, want 0.5 and −10", lv[2*(n-1)], lv[0])
	}
	// NLL of the mean itself at unit variance is ½·D·log 2π; at variance v
	// and error e per dimension it is ½ Σ (e²/v + log v + log 2π).
	one := NewGaussian(1)
	one.MaxLogVar[0], one.MinLogVar[0] = 50, -50
	raw := float32(math.Log(0.25))
	rawOut := []float32{1, raw, 1, raw}
	dst := make([]float64, 2)
	if err := one.NLL(dst, rawOut, []float32{1, 1.5}, 2); err != nil {
		t.Fatal(err)
	}
	lvv := refClamp(float64(raw), 50, -50)
	want0 := 0.5 * (lvv + math.Log(2*math.Pi))
	want1 := 0.5 * (0.25/math.Exp(lvv) + lvv + math.Log(2*math.Pi))
	if math.Abs(dst[0]-want0) > 1e-9 || math.Abs(dst[1]-want1) > 1e-9 {
		t.Fatalf("NLL %v, want [%g %g]", dst, want0, want1)
	}
}

func TestInitialisation(t *testing.T) {
	cfg := Config{Members: 5, In: 200, Hidden: []int{200}, Out: 200, Activation: Swish}
	m := mustNew(t, cfg, 1)
	sigma := 1 / (2 * math.Sqrt(200))
	for li, l := range m.Layers {
		var s, ss float64
		for _, w := range l.W {
			if math.Abs(float64(w)) > 2*sigma*(1+1e-6) {
				t.Fatalf("layer %d weight %g beyond 2σ = %g", li, w, 2*sigma)
			}
			s += float64(w)
			ss += float64(w) * float64(w)
		}
		n := float64(len(l.W))
		mean, std := s/n, math.Sqrt(ss/n-(s/n)*(s/n))
		// A normal truncated at ±2σ has standard deviation 0.8796σ.
		if math.Abs(mean) > 0.01*sigma || math.Abs(std-0.8796*sigma) > 0.01*sigma {
			t.Fatalf("layer %d: mean %g std %g, want 0 and %g", li, mean, std, 0.8796*sigma)
		}
		for _, b := range l.B {
			if b != 0 {
				t.Fatalf("layer %d has a non-zero initial bias", li)
			}
		}
	}
	same := mustNew(t, cfg, 1)
	other := mustNew(t, cfg, 2)
	diff := false
	for i := range m.params {
		if m.params[i] != same.params[i] {
			t.Fatal("same seed gave different weights")
		}
		diff = diff || m.params[i] != other.params[i]
	}
	if !diff {
		t.Fatal("seeds 1 and 2 gave the same weights")
	}
}

// TestAdamFitsRegression trains a small tanh network on y = sin(2x) over
// [−2, 2] with full-batch Adam and requires the MSE to fall below 1e-3 (the
// initial MSE is about 0.45).
func TestAdamFitsRegression(t *testing.T) {
	const rows = 128
	cfg := Config{Members: 1, In: 1, Hidden: []int{32, 32}, Out: 1, Activation: Tanh}
	m := mustNew(t, cfg, 5)
	x := make([]float32, rows)
	y := make([]float32, rows)
	for i := range x {
		x[i] = -2 + 4*float32(i)/(rows-1)
		y[i] = float32(math.Sin(2 * float64(x[i])))
	}
	p := NewPass(m, 1)
	defer p.Close()
	opt := NewAdam(1e-2)
	dOut := make([]float32, rows)
	var first, loss float64
	for step := 0; step < 1500; step++ {
		out, err := p.Forward(x, rows)
		if err != nil {
			t.Fatal(err)
		}
		loss, _ = MSE(out, y, nil, 1, rows, 1, dOut)
		if step == 0 {
			first = loss
		}
		if err := p.Backward(dOut); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step([][]float32{m.Params()}, [][]float32{p.Grad}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("MSE %.3g → %.3g", first, loss)
	if loss > 1e-3 {
		t.Fatalf("MSE after 1500 Adam steps is %.3g, want < 1e-3 (started at %.3g)", loss, first)
	}
}

func TestAdamFirstStepIsLR(t *testing.T) {
	// With bias correction the first step moves every parameter by lr in
	// the direction against its gradient's sign (up to ε).
	p := []float32{1, -2, 3}
	g := []float32{0.5, -3, 1e-3}
	opt := NewAdam(0.1)
	if err := opt.Step([][]float32{p}, [][]float32{g}); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.9, -1.9, 2.9}
	for i := range p {
		if math.Abs(float64(p[i]-want[i])) > 1e-5 {
			t.Fatalf("after one step %v, want %v", p, want)
		}
	}
	if err := opt.Step([][]float32{p[:2]}, [][]float32{g[:2]}); err == nil {
		t.Fatal("a parameter changing length was accepted")
	}
}

// TestTrainingIsReproducible: 20 steps of training give the same weights
// on one goroutine twice and on three; and they are training — the loss
// falls and every weight matrix moves.
func TestTrainingIsReproducible(t *testing.T) {
	var initial []float32
	var losses [][2]float64
	run := func(threads int) []float32 {
		cfg := Config{Members: 3, In: 4, Hidden: []int{16, 16}, Out: 4, Activation: Swish}
		m := mustNew(t, cfg, 9)
		src := rng.New(10)
		x := randInput(src, 3*40*4)
		y := randInput(src, 3*40*2)
		p := NewPass(m, threads)
		defer p.Close()
		g := NewGaussian(2)
		opt := NewAdam(1e-3)
		dOut := make([]float32, 3*40*4)
		initial = append([]float32(nil), m.Params()...)
		var first, last float64
		for i := 0; i < 20; i++ {
			out, _ := p.Forward(x, 40)
			last, _ = g.Loss(out, y, nil, 3, 40, dOut, nil, nil)
			if i == 0 {
				first = last
			}
			p.Backward(dOut)
			opt.Step([][]float32{m.Params()}, [][]float32{p.Grad})
		}
		losses = append(losses, [2]float64{first, last})
		return append([]float32(nil), m.Params()...)
	}
	a, b, c := run(1), run(1), run(3)
	for i := range a {
		if a[i] != b[i] || a[i] != c[i] {
			t.Fatalf("parameter %d differs between runs: %g %g %g", i, a[i], b[i], c[i])
		}
	}
	moved := 0
	for i := range a {
		if a[i] != initial[i] {
			moved++
		}
	}
	t.Logf("loss %.4f → %.4f; %d of %d parameters moved", losses[0][0], losses[0][1], moved, len(a))
	if !(losses[0][1] < losses[0][0]-0.01) || moved < len(a)*9/10 {
		t.Fatalf("loss %.4f → %.4f, %d of %d parameters moved: not training", losses[0][0], losses[0][1], moved, len(a))
	}
}

func TestBadInput(t *testing.T) {
	if _, err := New(Config{Members: 0, In: 2, Out: 1}, rng.New(1)); err == nil || !strings.Contains(err.Error(), "members") {
		t.Fatalf("zero members: %v", err)
	}
	if _, err := New(Config{Members: 1, In: 2, Out: 1, Hidden: []int{4, 0}}, rng.New(1)); err == nil || !strings.Contains(err.Error(), "hidden layer 1") {
		t.Fatalf("zero-width hidden layer: %v", err)
	}
	m := mustNew(t, Config{Members: 2, In: 3, Hidden: []int{4}, Out: 2}, 1)
	ev := NewEvaluator(m, 1)
	defer ev.Close()
	dst := make([]float32, 2*5*2)
	if err := ev.Forward(dst, make([]float32, 2*5*3-1), 5); err == nil {
		t.Fatal("short input accepted")
	}
	if err := ev.Forward(dst[:3], make([]float32, 2*5*3), 5); err == nil {
		t.Fatal("short output accepted")
	}
	x := make([]float32, 2*5*3)
	x[17] = float32(math.NaN())
	if err := ev.Forward(dst, x, 5); err != nil {
		t.Fatalf("NaN rejected without CheckFinite: %v", err)
	}
	ev.CheckFinite = true
	if err := ev.Forward(dst, x, 5); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN input with CheckFinite: %v", err)
	}
	x[17] = float32(math.Inf(-1))
	if err := ev.Forward(dst, x, 5); err == nil || !strings.Contains(err.Error(), "Inf") {
		t.Fatalf("Inf input with CheckFinite: %v", err)
	}
	p := NewPass(m, 1)
	defer p.Close()
	if err := p.Backward(make([]float32, 20)); err == nil {
		t.Fatal("Backward before Forward accepted")
	}
	if _, err := p.Forward(make([]float32, 5), 5); err == nil {
		t.Fatal("short training input accepted")
	}
	if err := m.WeightDecay([]float32{1}, p.Grad); err == nil {
		t.Fatal("one decay coefficient for two layers accepted")
	}
	g := NewGaussian(2)
	if _, err := g.Loss(make([]float32, 8), make([]float32, 3), nil, 1, 2, make([]float32, 8), nil, nil); err == nil {
		t.Fatal("short targets accepted")
	}
	if _, err := ParseActivation("sigmoidal"); err == nil {
		t.Fatal("unknown activation name accepted")
	}
	ev.Close()
	if err := ev.Forward(dst, x, 5); err == nil {
		t.Fatal("Forward after Close accepted")
	}
	p.Close()
	if _, err := p.Forward(x, 5); err == nil {
		t.Fatal("training Forward after Close accepted")
	}
	for _, a := range allActivations {
		if b, err := ParseActivation(a.String()); err != nil || b != a {
			t.Fatalf("ParseActivation(%q) = %v, %v", a.String(), b, err)
		}
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	cfg := Config{Members: 5, In: 6, Hidden: []int{64, 64}, Out: 8, Activation: Swish}
	m := mustNew(t, cfg, 1)
	ev := NewEvaluator(m, 2)
	defer ev.Close()
	const rows = 600
	x := randInput(rng.New(2), cfg.Members*rows*cfg.In)
	dst := make([]float32, cfg.Members*rows*cfg.Out)
	if a := testing.AllocsPerRun(20, func() { ev.Forward(dst, x, rows) }); a != 0 {
		t.Fatalf("Forward allocated %.1f times per call", a)
	}
	p := NewPass(m, 2)
	defer p.Close()
	dOut := make([]float32, len(dst))
	if a := testing.AllocsPerRun(20, func() { p.Forward(x, rows); p.Backward(dOut) }); a != 0 {
		t.Fatalf("a training pass allocated %.1f times per call", a)
	}
}

// TestFeatures: the output layer applied to the features by hand gives the
// forward pass's output.
func TestFeatures(t *testing.T) {
	cfg := Config{Members: 2, In: 3, Hidden: []int{5, 4}, Out: 2, Activation: Tanh}
	m := mustNew(t, cfg, 1)
	src := rng.New(2)
	for _, l := range m.Layers {
		src.FillNormal(l.B, 0, 0.3)
	}
	const rows = 7
	x := randInput(src, 2*rows*3)
	ev := NewEvaluator(m, 2)
	defer ev.Close()
	feat := make([]float32, 2*rows*4)
	out := make([]float32, 2*rows*2)
	if err := ev.Features(feat, x, rows); err != nil {
		t.Fatal(err)
	}
	ev.Forward(out, x, rows)
	l := m.Layers[2]
	for e := 0; e < 2; e++ {
		for r := 0; r < rows; r++ {
			for j := 0; j < 2; j++ {
				s := float64(l.MemberB(e)[j])
				for i := 0; i < 4; i++ {
					s += float64(feat[(e*rows+r)*4+i]) * float64(l.MemberW(e)[i*2+j])
				}
				if math.Abs(s-float64(out[(e*rows+r)*2+j])) > 1e-5 {
					t.Fatalf("member %d row %d output %d: %g from features, %g from forward", e, r, j, s, out[(e*rows+r)*2+j])
				}
			}
		}
	}
	lin := mustNew(t, Config{Members: 1, In: 2, Out: 1}, 1)
	if err := NewEvaluator(lin, 1).Features(make([]float32, 10), make([]float32, 10), 2); err == nil {
		t.Fatal("features of a linear model accepted")
	}
}

// TestLayerViews: Range and Index name the parameters that Layers' views
// alias, member by member, weights then biases.
func TestLayerViews(t *testing.T) {
	m := mustNew(t, Config{Members: 3, In: 2, Hidden: []int{4}, Out: 5, Activation: Tanh}, 1)
	p := m.Params()
	for i, l := range m.Layers {
		lo, hi := m.Range(i)
		if hi-lo != len(l.W)+len(l.B) || l.Members() != 3 {
			t.Fatalf("layer %d: range [%d, %d), %d members", i, lo, hi, l.Members())
		}
		for e := 0; e < 3; e++ {
			for j := 0; j < l.Out; j++ {
				for k := 0; k <= l.In; k++ {
					idx := lo + l.Index(e, k, j)
					want := &l.MemberB(e)[j]
					if k < l.In {
						want = &l.MemberW(e)[k*l.Out+j]
					}
					if &p[idx] != want {
						t.Fatalf("layer %d member %d input %d output %d: index %d is not the view's element", i, e, k, j, idx)
					}
				}
			}
		}
	}
}

// TestStepDecayedIsDecayThenStep checks Adam.StepDecayed with
// MLP.DecaySpans against WeightDecay followed by Step, bit for bit over
// several steps, and its refusal of spans out of order or range.
func TestStepDecayedIsDecayThenStep(t *testing.T) {
	cfg := Config{Members: 3, In: 5, Hidden: []int{8, 6}, Out: 4, Activation: Swish}
	lambda := []float32{1e-2, 0, 5e-2} // a layer without decay in the middle
	a, b := mustNew(t, cfg, 41), mustNew(t, cfg, 41)
	extraA, extraB := []float32{0.5, -0.25}, []float32{0.5, -0.25} // a second vector, never decayed
	optA, optB := NewAdam(1e-2), NewAdam(1e-2)
	spans, err := b.DecaySpans(lambda)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("%d spans for two decayed layers", len(spans))
	}
	src := rng.New(42)
	for step := 0; step < 4; step++ {
		g := randInput(src, len(a.Params()))
		ge := randInput(src, 2)
		ga := append([]float32(nil), g...)
		if err := a.WeightDecay(lambda, ga); err != nil {
			t.Fatal(err)
		}
		if err := optA.Step([][]float32{a.Params(), extraA}, [][]float32{ga, ge}); err != nil {
			t.Fatal(err)
		}
		gb := append([]float32(nil), g...)
		if err := optB.StepDecayed([][]float32{b.Params(), extraB}, [][]float32{gb, ge}, [][]Decay{spans, nil}); err != nil {
			t.Fatal(err)
		}
		for i, p := range a.Params() {
			if math.Float32bits(p) != math.Float32bits(b.Params()[i]) {
				t.Fatalf("step %d, parameter %d: %g after WeightDecay and Step, %g after StepDecayed", step, i, p, b.Params()[i])
			}
		}
		if extraA[0] != extraB[0] || extraA[1] != extraB[1] {
			t.Fatalf("step %d: the undecayed vector %v against %v", step, extraB, extraA)
		}
		for i := range g {
			if gb[i] != g[i] {
				t.Fatalf("StepDecayed changed gradient %d", i)
			}
		}
	}
	n := len(b.Params())
	for _, bad := range [][]Decay{
		{{Lo: 5, Hi: 3, Lambda: 1}},
		{{Lo: 0, Hi: n + 1, Lambda: 1}},
		{{Lo: 4, Hi: 8, Lambda: 1}, {Lo: 6, Hi: 9, Lambda: 1}},
	} {
		if err := optB.StepDecayed([][]float32{b.Params(), extraB}, [][]float32{make([]float32, n), make([]float32, 2)}, [][]Decay{bad, nil}); err == nil {
			t.Errorf("spans %v accepted", bad)
		}
	}
	if optB.Steps() != 4 {
		t.Errorf("refused steps counted: %d steps, want 4", optB.Steps())
	}
}
