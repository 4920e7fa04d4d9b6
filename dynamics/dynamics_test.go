package dynamics

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/rng"
)

// spec is a synthetic task: identity features, optional absolute targets.
type spec struct {
	name     string
	od, ad   int
	absolute []int
}

func (s spec) Name() string                  { return s.name }
func (s spec) ObservationSpace() env.Box     { return env.Unbounded(s.od) }
func (s spec) ActionSpace() env.Box          { return env.Uniform(s.ad, -1, 1) }
func (s spec) InputDim() int                 { return s.od }
func (s spec) Preprocess(dst, obs []float32) { copy(dst, obs) }
func (s spec) AbsoluteTargets() []int        { return s.absolute }

// rewardSpec is spec with reward −x₀² of the state arrived in.
type rewardSpec struct{ spec }

func (rewardSpec) EpisodeSteps() int { return 10 }
func (r rewardSpec) Reward(dst []float32, _, _, next []float32) {
	for i := range dst {
		dst[i] = -next[i*r.od] * next[i*r.od]
	}
}
func (rewardSpec) Terminated(dst []bool, _, _, _ []float32) { clear(dst) }
func (rewardSpec) New() (env.Env, error)                    { return nil, errors.New("no simulator") }

// linearGaussian draws n transitions of x' = x + A x + B u + ε with
// ε ~ N(0, diag(sigma²)), x and u uniform in [−1, 1].
func linearGaussian(n int, sigma []float64, seed uint64) *data.Buffer {
	src := rng.New(seed)
	A := [][]float64{{-0.1, 0.2}, {0.3, -0.2}}
	B := []float64{0.5, -0.4}
	b := data.NewBuffer(2, 1)
	for i := 0; i < n; i++ {
		x := []float32{float32(src.Uniform(-1, 1)), float32(src.Uniform(-1, 1))}
		u := []float32{float32(src.Uniform(-1, 1))}
		next := make([]float32, 2)
		for d := 0; d < 2; d++ {
			v := float64(x[d]) + A[d][0]*float64(x[0]) + A[d][1]*float64(x[1]) + B[d]*float64(u[0]) + sigma[d]*src.Normal()
			next[d] = float32(v)
		}
		b.Add(x, u, next, 0, false, true)
	}
	return b
}

func train(t testing.TB, m *Model, buf *data.Buffer, c TrainConfig) TrainResult {
	t.Helper()
	tr := NewTrainer(m, 2)
	defer tr.Close()
	res, err := tr.Train(context.Background(), buf, c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestLearnsLinearGaussian: a P model's held-out NLL must come within 0.05
// nats of the true conditional entropy, ½·Σ log(2πe·σ²) = −2.4604 for
// σ = (0.05, 0.1), and within 0.03 of the true model's own NLL on the same
// held-out data (which differs from the entropy by sampling only); its
// predicted variances must be within 15% of σ².
func TestLearnsLinearGaussian(t *testing.T) {
	sigma := []float64{0.05, 0.1}
	sp := spec{name: "lg", od: 2, ad: 1}
	m, err := New(sp, Config{Class: P, Members: 1, Hidden: []int{32, 32}, Activation: nn.Swish}, 1)
	if err != nil {
		t.Fatal(err)
	}
	train(t, m, linearGaussian(4000, sigma, 2), TrainConfig{LR: 1e-3, Epochs: 100, BatchSize: 64, Seed: 3})
	test := linearGaussian(20000, sigma, 4)
	met, err := m.Evaluate(test, 2)
	if err != nil {
		t.Fatal(err)
	}
	var h, truth float64
	for _, s := range sigma {
		h += 0.5 * math.Log(2*math.Pi*math.E*s*s)
	}
	A := [][]float64{{-0.1, 0.2}, {0.3, -0.2}}
	B := []float64{0.5, -0.4}
	for i := 0; i < test.Len(); i++ {
		x0, x1, u := float64(test.Obs[2*i]), float64(test.Obs[2*i+1]), float64(test.Act[i])
		for d, s := range sigma {
			e := float64(test.Next[2*i+d]) - (float64(test.Obs[2*i+d]) + A[d][0]*x0 + A[d][1]*x1 + B[d]*u)
			truth += 0.5 * (e*e/(s*s) + math.Log(2*math.Pi*s*s))
		}
	}
	truth /= float64(test.Len())
	t.Logf("held-out NLL %.4f, true model's %.4f, conditional entropy %.4f, MSE %.5f", met.NLL, truth, h, met.MSE)
	if math.Abs(met.NLL-h) > 0.05 || met.NLL-truth > 0.03 {
		t.Fatalf("held-out NLL %.4f, want within 0.05 of the entropy %.4f and 0.03 of the true model's %.4f", met.NLL, h, truth)
	}
	// A model that learned the noise is calibrated: its 1σ and 2σ
	// intervals cover what a Gaussian's do (68.3%, 95.4%); one network
	// has no disagreement.
	t.Logf("coverage %.4f %.4f", met.Coverage1, met.Coverage2)
	if math.Abs(met.Coverage1-0.6827) > 0.03 || math.Abs(met.Coverage2-0.9545) > 0.015 || met.Disagreement != 0 {
		t.Fatalf("coverage %.4f and %.4f (a calibrated model: 0.683, 0.954), disagreement %g", met.Coverage1, met.Coverage2, met.Disagreement)
	}
	p := m.NewPredictor(1)
	defer p.Close()
	mean := make([]float32, test.Len()*2)
	vari := make([]float32, test.Len()*2)
	if err := p.Moments(mean, vari, test.Obs, test.Act, test.Len(), nil); err != nil {
		t.Fatal(err)
	}
	for d, s := range sigma {
		var v float64
		for i := 0; i < test.Len(); i++ {
			v += float64(vari[2*i+d])
		}
		v /= float64(test.Len())
		if math.Abs(v/(s*s)-1) > 0.15 {
			t.Fatalf("dimension %d: mean predicted variance %.5g, noise variance %.5g", d, v, s*s)
		}
	}
}

// TestDeterministicFitsNonlinearMap: a D model fits
// x' = x + 0.3·sin(2x) + 0.2·u·cos(x) to a held-out MSE below 2e-4 (the
// targets' variance is about 0.05).
func TestDeterministicFitsNonlinearMap(t *testing.T) {
	gen := func(n int, seed uint64) *data.Buffer {
		src := rng.New(seed)
		b := data.NewBuffer(1, 1)
		for i := 0; i < n; i++ {
			x := src.Uniform(-2, 2)
			u := src.Uniform(-1, 1)
			nx := x + 0.3*math.Sin(2*x) + 0.2*u*math.Cos(x)
			b.Add([]float32{float32(x)}, []float32{float32(u)}, []float32{float32(nx)}, 0, false, true)
		}
		return b
	}
	m, _ := New(spec{name: "nl", od: 1, ad: 1}, Config{Class: D, Members: 1, Hidden: []int{64, 64}, Activation: nn.Tanh}, 5)
	train(t, m, gen(3000, 6), TrainConfig{LR: 1e-3, Epochs: 80, BatchSize: 32, Seed: 7})
	met, err := m.Evaluate(gen(2000, 8), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out MSE %.3g", met.MSE)
	if met.MSE > 2e-4 {
		t.Fatalf("held-out MSE %.3g, want below 2e-4", met.MSE)
	}
}

func sameParams(t *testing.T, what string, a, b *Model) {
	t.Helper()
	pa, pb := a.Net.Params(), b.Net.Params()
	for i := range pa {
		if pa[i] != pb[i] {
			t.Fatalf("%s: parameter %d differs: %v vs %v", what, i, pa[i], pb[i])
		}
	}
	for i := range a.InMean {
		if a.InMean[i] != b.InMean[i] || a.InStd[i] != b.InStd[i] {
			t.Fatalf("%s: normaliser %d differs", what, i)
		}
	}
}

func peConfig() Config {
	return Config{Class: PE, Members: 3, Hidden: []int{16, 16}, Activation: nn.Swish, LearnLogVarBounds: true, WeightDecay: []float32{1e-4}}
}

func TestWeights(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	buf := linearGaussian(300, []float64{0.05, 0.1}, 9)
	// Zero weight on every third transition, one on the rest.
	w := make([]float32, buf.Len())
	var keep []int
	for i := range w {
		if i%3 != 0 {
			w[i] = 1
			keep = append(keep, i)
		}
	}
	cfg := TrainConfig{LR: 1e-3, Epochs: 3, BatchSize: 16, Seed: 10}
	a, _ := New(sp, peConfig(), 11)
	b, _ := New(sp, peConfig(), 11)
	ca := cfg
	ca.Weights = w
	train(t, a, buf, ca)
	train(t, b, buf.Subset(keep), cfg)
	sameParams(t, "zero weights vs leaving the transitions out", a, b)

	// Doubling all weights changes nothing.
	w2 := make([]float32, len(w))
	src := rng.New(12)
	for i := range w {
		w[i] = src.Float32()
		w2[i] = 2 * w[i]
	}
	c, _ := New(sp, peConfig(), 13)
	d, _ := New(sp, peConfig(), 13)
	cc, cd := cfg, cfg
	cc.Weights, cd.Weights = w, w2
	train(t, c, buf, cc)
	train(t, d, buf, cd)
	sameParams(t, "doubled weights", c, d)

	// Weights matter: non-uniform weights train a different model.
	e, _ := New(sp, peConfig(), 13)
	train(t, e, buf, cfg)
	if e.Net.Params()[0] == c.Net.Params()[0] && e.Net.Params()[1] == c.Net.Params()[1] {
		t.Fatal("random weights trained the same model as none")
	}
	bad := cfg
	bad.Weights = make([]float32, buf.Len())
	bad.Weights[3] = float32(math.NaN())
	tr := NewTrainer(e, 1)
	defer tr.Close()
	if _, err := tr.Train(context.Background(), buf, bad); err == nil {
		t.Fatal("a NaN weight was accepted")
	}
	bad.Weights = make([]float32, buf.Len())
	if _, err := tr.Train(context.Background(), buf, bad); err == nil {
		t.Fatal("all-zero weights were accepted")
	}
}

func TestReproducible(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	buf := linearGaussian(500, []float64{0.05, 0.1}, 14)
	run := func(threads int) *Model {
		m, _ := New(sp, peConfig(), 15)
		tr := NewTrainer(m, threads)
		defer tr.Close()
		if _, err := tr.Train(context.Background(), buf, TrainConfig{LR: 1e-3, Epochs: 3, BatchSize: 32, HoldOut: 0.1, Seed: 16}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b, c := run(1), run(1), run(3)
	sameParams(t, "same seed", a, b)
	sameParams(t, "another thread count", a, c)

	// Two calls, the optimiser's state carried from the first to the
	// second: the same whether the trainer changes its threads between
	// them or not.
	twice := func(threads ...int) *Model {
		m, _ := New(sp, peConfig(), 15)
		tr := NewTrainer(m, threads[0])
		defer tr.Close()
		for i, n := range threads {
			tr.SetThreads(n)
			if _, err := tr.Train(context.Background(), buf, TrainConfig{LR: 1e-3, Epochs: 2, BatchSize: 32, HoldOut: 0.1, Seed: uint64(16 + i)}); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	sameParams(t, "threads changed between calls", twice(1, 1), twice(1, 3))
	sameParams(t, "threads changed between calls", twice(2, 2), twice(2, 1))
}

func TestCallbackEarlyStoppingAndElites(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	buf := linearGaussian(600, []float64{0.05, 0.1}, 17)
	m, _ := New(sp, peConfig(), 18)
	var epochs []EpochStats
	res := train(t, m, buf, TrainConfig{LR: 1e-3, Epochs: 400, BatchSize: 32, HoldOut: 0.2, Patience: 3, Elites: 2, Seed: 19,
		OnEpoch: func(s EpochStats) error { epochs = append(epochs, s); return nil }})
	if len(epochs) != res.Epochs || epochs[0].Epoch != 1 || epochs[0].HoldOut == nil {
		t.Fatalf("callback saw %d epochs, training ran %d", len(epochs), res.Epochs)
	}
	if res.Epochs == 400 || res.BestEpoch > res.Epochs-3 {
		t.Fatalf("patience 3: ran %d epochs, best %d", res.Epochs, res.BestEpoch)
	}
	// The kept weights are those of the best epoch.
	if res.HoldOut == nil || res.HoldOut.MSE != epochs[res.BestEpoch-1].HoldOut.MSE {
		t.Fatalf("kept hold-out MSE %v, epoch %d had %v", res.HoldOut, res.BestEpoch, epochs[res.BestEpoch-1].HoldOut.MSE)
	}
	if len(m.Elites) != 2 {
		t.Fatalf("elites %v, want 2", m.Elites)
	}
	if mm := res.HoldOut.MemberMSE; mm[m.Elites[0]] > mm[m.Elites[1]] {
		t.Fatalf("elites %v not ranked by %v", m.Elites, mm)
	}
	stopped := train(t, m, buf, TrainConfig{LR: 1e-3, Epochs: 50, BatchSize: 32, Seed: 1,
		OnEpoch: func(s EpochStats) error {
			if s.Epoch == 4 {
				return ErrStop
			}
			return nil
		}})
	if stopped.Epochs != 4 {
		t.Fatalf("ErrStop at epoch 4 stopped after %d", stopped.Epochs)
	}
	tr := NewTrainer(m, 1)
	defer tr.Close()
	if _, err := tr.Train(context.Background(), buf, TrainConfig{LR: 1e-3, Epochs: 5, BatchSize: 8, OnEpoch: func(EpochStats) error { return errors.New("boom") }}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("callback error: %v", err)
	}
}

func TestMetricsAndOpenLoop(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	m, _ := New(sp, peConfig(), 20)
	// Episodes of 10 chained steps.
	b := data.NewBuffer(2, 1)
	src := rng.New(21)
	for ep := 0; ep < 20; ep++ {
		x := []float32{float32(src.Uniform(-1, 1)), float32(src.Uniform(-1, 1))}
		for s := 0; s < 10; s++ {
			u := []float32{float32(src.Uniform(-1, 1))}
			nx := []float32{0.9*x[0] + 0.1*u[0], 0.8*x[1] - 0.2*u[0]}
			b.Add(x, u, nx, 0, false, s == 9)
			x = nx
		}
	}
	train(t, m, b, TrainConfig{LR: 1e-3, Epochs: 5, BatchSize: 16, Seed: 22})
	met, err := m.Evaluate(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	if met.MixtureNLL > met.NLL+1e-9 {
		t.Fatalf("mixture NLL %g above the members' mean %g (Jensen)", met.MixtureNLL, met.NLL)
	}
	// Coverage and disagreement by hand from the members' moments, for
	// the trained ensemble and an untrained one (whose members disagree
	// more than they predict noise).
	untrained, _ := New(sp, peConfig(), 99)
	untrained.FitNormalizer(b.Obs, b.Act, b.Len())
	// Trained long on noiseless data, the members predict little noise,
	// and their disagreement decides the intervals.
	sharp, _ := New(sp, peConfig(), 98)
	train(t, sharp, b, TrainConfig{LR: 3e-3, Epochs: 150, BatchSize: 16, Seed: 23})
	for _, mm := range []*Model{m, untrained, sharp} {
		got, err := mm.Evaluate(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		cov1, cov2, dis := handCoverage(t, mm, b)
		t.Logf("coverage %.4f %.4f, disagreement %.4g", cov1, cov2, dis)
		if math.Abs(got.Coverage1-cov1) > 1e-9 || math.Abs(got.Coverage2-cov2) > 1e-9 || math.Abs(got.Disagreement-dis) > 1e-6*dis || dis == 0 {
			t.Fatalf("coverage %g %g, disagreement %g; by hand %g %g %g", got.Coverage1, got.Coverage2, got.Disagreement, cov1, cov2, dis)
		}
	}
	n := b.Len()
	// Per-transition errors average to the MSE.
	errs, err := m.Errors(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mse float64
	for _, e := range errs {
		mse += e / float64(len(errs))
	}
	if len(errs) != b.Len() || math.Abs(mse-met.MSE) > 1e-6*met.MSE {
		t.Fatalf("per-transition errors average %g over %d, MSE %g", mse, len(errs), met.MSE)
	}
	// Weighted: weight 1 on the first episode and 0 elsewhere scores that
	// episode alone.
	w := make([]float32, n)
	for i := 0; i < 10; i++ {
		w[i] = 1
	}
	wm, err := m.EvaluateWeighted(b, w, 1)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := m.Evaluate(b.Subset([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 1)
	// (The rows run through the network in other batches: rounding
	// differs in the last float32 digits.)
	if math.Abs(wm.NLL-first.NLL) > 1e-6*(1+math.Abs(first.NLL)) || math.Abs(wm.MSE-first.MSE) > 1e-5*first.MSE || wm.NLL == met.NLL {
		t.Fatalf("weighted to the first episode: NLL %g MSE %g; that episode alone: %g %g", wm.NLL, wm.MSE, first.NLL, first.MSE)
	}
	for _, bad := range [][]float32{make([]float32, n), w[:5], append([]float32{-1}, w[1:]...)} {
		if _, err := m.EvaluateWeighted(b, bad, 1); err == nil {
			t.Fatalf("weights %v... accepted", bad[:3])
		}
	}
	ol, err := m.OpenLoopError(b, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	one, _ := m.OpenLoopError(b, 1, 1)
	// One step from every transition is the ensemble mean's MSE.
	if math.Abs(one[0]-met.MSE) > 1e-6*met.MSE {
		t.Fatalf("1-step open-loop error %g, evaluation MSE %g", one[0], met.MSE)
	}
	if len(ol) != 4 || ol[3] < ol[0] {
		t.Fatalf("open-loop errors %v should grow with the horizon", ol)
	}
	if _, err := m.OpenLoopError(b, 11, 1); err == nil {
		t.Fatal("a horizon longer than every episode was accepted")
	}
	// The predicted return's error, by hand: the task's reward of the
	// predicted transitions under the recorded actions, summed over k
	// steps, against the recorded rewards' sum.
	rb := b.Subset(nil)
	for i := 0; i < b.Len(); i++ {
		rb.Add(b.Obs[i*2:i*2+2], b.Act[i:i+1], b.Next[i*2:i*2+2], float32(-b.Next[i*2]*b.Next[i*2]), false, i%10 == 9)
	}
	task := rewardSpec{sp}
	res, err := m.OpenLoop(rb, 3, task, 1)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for e := 0; e < 20; e++ {
		for s0 := 0; s0+3 <= 10; s0++ {
			t0 := e*10 + s0
			along, err := m.PredictAlong(rb.Subset([]int{t0, t0 + 1, t0 + 2}))
			if err != nil {
				t.Fatal(err)
			}
			var pred, rec float64
			for h := 0; h < 3; h++ {
				pred += -float64(along[h*2]) * float64(along[h*2])
				rec += float64(rb.Reward[t0+h])
			}
			want += math.Abs(pred-rec) / float64(20*8)
		}
	}
	if res.Starts != 160 || math.Abs(res.ReturnError-want) > 1e-5*want || want == 0 {
		t.Fatalf("return error %g over %d starts, by hand %g", res.ReturnError, res.Starts, want)
	}
	// Along one whole episode, the prediction's error after h steps is the
	// h-step open-loop error of that episode's only start.
	ep := b.Subset([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	along, err := m.PredictAlong(ep)
	if err != nil || len(along) != 10*2 {
		t.Fatalf("PredictAlong: %v, %d values", err, len(along))
	}
	full, _ := m.OpenLoopError(ep, 10, 1)
	for h := 0; h < 10; h++ {
		var se float64
		for d := 0; d < 2; d++ {
			e := float64(along[h*2+d] - ep.Next[h*2+d])
			se += e * e / 2
		}
		if math.Abs(se-full[h]) > 1e-6*(full[h]+1e-12) {
			t.Fatalf("step %d: PredictAlong's squared error %g, open-loop error %g", h+1, se, full[h])
		}
	}
}

// handCoverage computes Metrics' coverage and disagreement of m on b from
// the members' predicted moments.
func handCoverage(t *testing.T, m *Model, b *data.Buffer) (cov1, cov2, dis float64) {
	t.Helper()
	E, od, n := m.Members(), b.ObsDim, b.Len()
	p := m.NewPredictor(1)
	defer p.Close()
	obsE, actE := make([]float32, E*n*od), make([]float32, E*n*b.ActDim)
	for e := 0; e < E; e++ {
		copy(obsE[e*n*od:], b.Obs)
		copy(actE[e*n*b.ActDim:], b.Act)
	}
	mean, vari := make([]float32, E*n*od), make([]float32, E*n*od)
	if err := p.Moments(mean, vari, obsE, actE, n, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		for d := 0; d < od; d++ {
			var mu, v, spread float64
			for e := 0; e < E; e++ {
				mu += float64(mean[(e*n+i)*od+d]) / float64(E)
				v += float64(vari[(e*n+i)*od+d]) / float64(E)
			}
			for e := 0; e < E; e++ {
				dm := float64(mean[(e*n+i)*od+d]) - mu
				spread += dm * dm / float64(E)
			}
			err := math.Abs(float64(b.Next[i*od+d]) - mu)
			if err <= math.Sqrt(v+spread) {
				cov1++
			}
			if err <= 2*math.Sqrt(v+spread) {
				cov2++
			}
			dis += math.Sqrt(spread)
		}
	}
	k := float64(od * n)
	return cov1 / k, cov2 / k, dis / k
}

func TestAbsoluteTargetsAndSampling(t *testing.T) {
	// Dimension 1 is absolute: next[1] = 2·u regardless of the state.
	sp := spec{name: "abs", od: 2, ad: 1, absolute: []int{1}}
	b := data.NewBuffer(2, 1)
	src := rng.New(23)
	for i := 0; i < 2000; i++ {
		x := []float32{float32(src.Uniform(-1, 1)), float32(src.Uniform(-5, 5))}
		u := []float32{float32(src.Uniform(-1, 1))}
		b.Add(x, u, []float32{x[0], 2 * u[0]}, 0, false, true)
	}
	m, _ := New(sp, Config{Class: PE, Members: 2, Hidden: []int{32}, Activation: nn.Swish}, 24)
	train(t, m, b, TrainConfig{LR: 1e-3, Epochs: 40, BatchSize: 32, Seed: 25})
	p := m.NewPredictor(1)
	defer p.Close()
	obs := []float32{0.5, 4, 0.5, -4}
	act := []float32{0.25, 0.25}
	next := make([]float32, 4)
	if err := p.Next(next, obs, act, 1, []int{0, 1}, nil); err != nil {
		t.Fatal(err)
	}
	for e := 0; e < 2; e++ {
		if math.Abs(float64(next[2*e+1])-0.5) > 0.1 || math.Abs(float64(next[2*e])-0.5) > 0.1 {
			t.Fatalf("member %d predicts %v, want about [0.5 0.5] whatever the old absolute value", e, next[2*e:2*e+2])
		}
	}
	// Samples spread around the mean with the predicted variance.
	const n = 4000
	ob := make([]float32, 2*n)
	ac := make([]float32, n)
	for i := 0; i < n; i++ {
		ob[2*i], ob[2*i+1], ac[i] = 0.2, 1, -0.5
	}
	mean := make([]float32, 2*n)
	vari := make([]float32, 2*n)
	p.Moments(mean, vari, ob, ac, n, []int{0})
	samp := make([]float32, 2*n)
	if err := p.Next(samp, ob, ac, n, []int{0}, rng.New(26)); err != nil {
		t.Fatal(err)
	}
	var s, ss float64
	for i := 0; i < n; i++ {
		d := float64(samp[2*i] - mean[2*i])
		s += d
		ss += d * d
	}
	if sd := math.Sqrt(float64(vari[0])); math.Abs(s/n) > 4*sd/math.Sqrt(n) || math.Abs(math.Sqrt(ss/n)/sd-1) > 0.1 {
		t.Fatalf("samples: mean offset %g, std %g, predicted std %g", s/n, math.Sqrt(ss/n), sd)
	}
	// The samples' chunks draw from their own streams: three goroutines
	// give the same samples, and no two chunks the same noise.
	p3 := m.NewPredictor(3)
	defer p3.Close()
	samp3 := make([]float32, 2*n)
	if err := p3.Next(samp3, ob, ac, n, []int{0}, rng.New(26)); err != nil {
		t.Fatal(err)
	}
	for i := range samp {
		if samp3[i] != samp[i] {
			t.Fatalf("sample %d is %v on 3 goroutines, %v on 1", i, samp3[i], samp[i])
		}
	}
	if c := predictChunk * 2; samp[0] == samp[c] && samp[2] == samp[c+2] {
		t.Fatal("the first two chunks drew the same noise")
	}
}

func TestCheckpoints(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	buf := linearGaussian(300, []float64{0.05, 0.1}, 27)
	m, _ := New(sp, peConfig(), 28)
	train(t, m, buf, TrainConfig{LR: 1e-3, Epochs: 2, BatchSize: 32, HoldOut: 0.2, Elites: 2, Seed: 29})
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path, sp)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config().Class != PE || len(l.Elites) != 2 || l.Elites[0] != m.Elites[0] {
		t.Fatalf("loaded %s with elites %v, saved PE with %v", l.Config().Class, l.Elites, m.Elites)
	}
	predict := func(m *Model) []float32 {
		p := m.NewPredictor(1)
		defer p.Close()
		out := make([]float32, 3*buf.Len()*2)
		obs := append(append(append([]float32(nil), buf.Obs...), buf.Obs...), buf.Obs...)
		act := append(append(append([]float32(nil), buf.Act...), buf.Act...), buf.Act...)
		if err := p.Next(out, obs, act, buf.Len(), nil, rng.New(1)); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := predict(m), predict(l)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("prediction %d differs after loading: %v vs %v", i, a[i], b[i])
		}
	}
	// The digest: the same for the loaded model and a clone, another for a
	// weight, a normaliser statistic or the elites changed.
	digest := func(m *Model) string {
		d, err := m.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d0 := digest(m)
	if digest(l) != d0 || digest(m.Clone()) != d0 {
		t.Fatal("a loaded model or a clone has another digest")
	}
	for i, change := range []func(*Model){
		func(c *Model) { c.Net.Params()[5] += 1e-3 },
		func(c *Model) { c.InStd[0] *= 2 },
		func(c *Model) { c.Elites = c.Elites[:1] },
	} {
		c := m.Clone()
		change(c)
		if digest(c) == d0 {
			t.Errorf("change %d left the digest as it was", i)
		}
	}
	weights, _ := os.ReadFile(path)
	side, _ := os.ReadFile(SidecarPath(path))
	restore := func() {
		os.WriteFile(path, weights, 0o644)
		os.WriteFile(SidecarPath(path), side, 0o644)
	}
	cases := []struct {
		name   string
		change func()
		spec   Spec
		want   string
	}{
		{"truncated weights", func() { os.WriteFile(path, weights[:len(weights)/2], 0o644) }, sp, "checksum"},
		{"altered weight", func() {
			w := append([]byte(nil), weights...)
			w[len(w)-3] ^= 1
			os.WriteFile(path, w, 0o644)
		}, sp, "checksum"},
		{"altered sidecar shape", func() {
			os.WriteFile(SidecarPath(path), []byte(strings.Replace(string(side), `"hidden": [
      16,`, `"hidden": [
      17,`, 1)), 0o644)
		}, sp, "shape"},
		{"unknown sidecar field", func() {
			os.WriteFile(SidecarPath(path), []byte(strings.Replace(string(side), `"version"`, `"colour": 1, "version"`, 1)), 0o644)
		}, sp, "unknown field"},
		{"missing sidecar", func() { os.Remove(SidecarPath(path)) }, sp, "no such file"},
		{"another task", func() {}, spec{name: "lg", od: 3, ad: 1}, "widths"},
		{"another task name", func() {}, spec{name: "other", od: 2, ad: 1}, `saved for task "lg"`},
		{"unregistered task", func() {}, nil, "unknown task"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer restore()
			c.change()
			_, err := Load(path, c.spec)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// TestConfigValidate: each bad field is reported by its YAML name, all
// of them at once; the defaults are valid; the zero value is not.
func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("the zero config is valid")
	}
	with := func(f func(*Config)) Config {
		c := DefaultConfig()
		c.Hidden = slices.Clone(c.Hidden)
		f(&c)
		return c
	}
	for _, tc := range []struct {
		c      Config
		fields []string
	}{
		{with(func(c *Config) { c.Members = 0 }), []string{"members"}},
		{with(func(c *Config) { c.Members = -3 }), []string{"members"}},
		{with(func(c *Config) { c.Members = 1 }), []string{"members"}},              // PE of one
		{with(func(c *Config) { c.Class = P; c.Members = 7 }), []string{"members"}}, // P of seven
		{with(func(c *Config) { c.Class = "Q" }), []string{"class"}},                // no such class
		{with(func(c *Config) { c.Hidden = nil }), []string{"hidden"}},              // no hidden layer
		{with(func(c *Config) { c.Hidden[1] = 0 }), []string{"hidden[1]"}},          // empty layer
		{with(func(c *Config) { c.Activation = 99 }), []string{"activation"}},       // unknown activation
		{with(func(c *Config) { c.WeightDecay = []float32{1, 2, 3} }), []string{"weight_decay"}},
		{with(func(c *Config) { c.WeightDecay = []float32{float32(math.NaN())} }), []string{"weight_decay[0]"}},
		{with(func(c *Config) { c.Members = 0; c.Hidden[0] = -1 }), []string{"members", "hidden[0]"}},
	} {
		err := tc.c.Validate()
		if err == nil {
			t.Fatalf("%+v accepted", tc.c)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tc.fields) {
			t.Fatalf("%+v: %d errors, want %d:\n%v", tc.c, len(lines), len(tc.fields), err)
		}
		for i, f := range tc.fields {
			if !strings.HasPrefix(lines[i], f+": ") {
				t.Fatalf("%+v: error %q does not name %s", tc.c, lines[i], f)
			}
		}
		if _, err := New(spec{name: "lg", od: 2, ad: 1}, tc.c, 1); err == nil {
			t.Fatalf("New accepted %+v", tc.c)
		}
	}
	for _, c := range Classes {
		got, err := ParseClass(strings.ToLower(string(c)))
		if err != nil || got != c {
			t.Fatalf("class %s parses to %s, %v", c, got, err)
		}
		if w := DefaultConfig().WithClass(c); w.Validate() != nil || w.Class.Ensemble() != (w.Members > 1) {
			t.Fatalf("WithClass(%s) = %+v", c, w)
		}
	}
	if _, err := ParseClass("X"); err == nil {
		t.Fatal("class X accepted")
	}

	if err := DefaultTrainConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c     TrainConfig
		field string
	}{
		{TrainConfig{Epochs: 0, BatchSize: 1, LR: 1e-3}, "epochs"},
		{TrainConfig{Epochs: 1, BatchSize: 0, LR: 1e-3}, "batch_size"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: 0}, "lr"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: math.NaN()}, "lr"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: math.Inf(1)}, "lr"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: 1e-3, HoldOut: 0.7}, "hold_out"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: 1e-3, HoldOut: math.NaN()}, "hold_out"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: 1e-3, Patience: 3}, "patience"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: 1e-3, Patience: -1}, "patience"},
		{TrainConfig{Epochs: 1, BatchSize: 1, LR: 1e-3, Elites: -1}, "elites"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Fatalf("%+v: %v, want an error on %s", tc.c, err, tc.field)
		}
	}
	m, _ := New(spec{name: "lg", od: 2, ad: 1}, peConfig(), 1)
	tr := NewTrainer(m, 1)
	defer tr.Close()
	if _, err := tr.Train(context.Background(), linearGaussian(10, []float64{0.1, 0.1}, 1), TrainConfig{Epochs: 0, BatchSize: 1, LR: 1e-3}); err == nil {
		t.Fatal("Train accepted zero epochs")
	}
	if _, err := tr.Train(context.Background(), data.NewBuffer(3, 1), TrainConfig{LR: 1e-3, Epochs: 1, BatchSize: 1}); err == nil {
		t.Fatal("data of the wrong width accepted")
	}
}

// TestKeepNormalizer: fine-tuning on data from elsewhere in the input space
// leaves a trained model's normaliser as it was when asked to, and refits
// it otherwise.
func TestKeepNormalizer(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	m, _ := New(sp, peConfig(), 21)
	train(t, m, linearGaussian(300, []float64{0.05, 0.1}, 22), TrainConfig{LR: 1e-3, Epochs: 2, BatchSize: 32, Seed: 23})
	shifted := linearGaussian(300, []float64{0.05, 0.1}, 24)
	for i := range shifted.Obs {
		shifted.Obs[i] = 3*shifted.Obs[i] + 2
	}
	mean, std := append([]float32(nil), m.InMean...), append([]float32(nil), m.InStd...)
	kept := m.Clone()
	train(t, kept, shifted, TrainConfig{LR: 1e-3, Epochs: 1, BatchSize: 32, Seed: 25, KeepNormalizer: true})
	for i := range mean {
		if kept.InMean[i] != mean[i] || kept.InStd[i] != std[i] {
			t.Fatalf("input %d normalised by %g, %g after fine-tuning, was %g, %g", i, kept.InMean[i], kept.InStd[i], mean[i], std[i])
		}
	}
	refit := m.Clone()
	train(t, refit, shifted, TrainConfig{LR: 1e-3, Epochs: 1, BatchSize: 32, Seed: 25})
	if math.Abs(float64(refit.InMean[0])-2) > 0.3 || math.Abs(float64(refit.InStd[0]-3*std[0])) > 0.3*float64(std[0]) {
		t.Fatalf("refitted normaliser of input 0: mean %g std %g, want about 2 and %g", refit.InMean[0], refit.InStd[0], 3*std[0])
	}
}

// TestNextShared: NextShared gives what Next gives for the input rows
// repeated as its map says — means and samples, Gaussian and deterministic
// models, plain and packed predictors, one goroutine and three — bit for
// bit through the packed networks (a row's result does not depend on the
// call's other rows), to float32 rounding through the plain one (OpenBLAS
// may sum a row in another order for another row count); and it refuses a
// map that leaves the input rows.
func TestNextShared(t *testing.T) {
	const E, k, perBlock = 3, 7, 1500 // result rows per block: two chunks and a bit
	for _, class := range []Class{PE, DE} {
		m, err := New(spec{name: "share", od: 3, ad: 2, absolute: []int{2}}, Config{Class: class, Members: E, Hidden: []int{32, 32}, Activation: nn.Swish}, 41)
		if err != nil {
			t.Fatal(err)
		}
		src := rng.New(42)
		obs := make([]float32, E*k*3)
		act := make([]float32, E*k*2)
		src.FillUniform(obs, -2, 2)
		src.FillUniform(act, -1, 1)
		from := make([]int, E*perBlock)
		rep := struct{ obs, act []float32 }{make([]float32, len(from)*3), make([]float32, len(from)*2)}
		for j := range from {
			from[j] = j/perBlock*k + src.IntN(k) // an input row of the result row's member
			copy(rep.obs[j*3:(j+1)*3], obs[from[j]*3:])
			copy(rep.act[j*2:(j+1)*2], act[from[j]*2:])
		}
		members := []int{2, 0, 1}
		preds := map[string]func(threads int) (*Predictor, error){
			"plain": func(th int) (*Predictor, error) { return m.NewPredictor(th), nil },
			"fp32":  func(th int) (*Predictor, error) { return m.NewPackedPredictor(th, nn.FP32) },
			"bf16":  func(th int) (*Predictor, error) { return m.NewPackedPredictor(th, nn.BF16) },
		}
		for name, newPred := range preds {
			for _, threads := range []int{1, 3} {
				p, err := newPred(threads)
				if errors.Is(err, nn.ErrUnsupported) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, seed := range []uint64{0, 43} {
					var s1, s2 *rng.Source
					if seed != 0 {
						s1, s2 = rng.New(seed), rng.New(seed)
					}
					want := make([]float32, len(from)*3)
					got := make([]float32, len(from)*3)
					if err := p.Next(want, rep.obs, rep.act, perBlock, members, s1); err != nil {
						t.Fatal(err)
					}
					if err := p.NextShared(got, obs, act, k, members, from, s2); err != nil {
						t.Fatal(err)
					}
					for i := range want {
						tol := 0.0
						if name == "plain" {
							tol = 1e-5 * (1 + math.Abs(float64(want[i])))
						}
						if math.Abs(float64(got[i]-want[i])) > tol {
							t.Fatalf("%v %s, %d goroutines, seed %d: value %d is %v shared, %v repeated", class, name, threads, seed, i, got[i], want[i])
						}
					}
				}
				bad := append([]int(nil), from...)
				bad[len(bad)/2] = E * k
				if err := p.NextShared(make([]float32, len(from)*3), obs, act, k, members, bad, nil); err == nil || !strings.Contains(err.Error(), "input row 21 of 21") {
					t.Fatalf("%v %s: a map beyond the input rows gave %v", class, name, err)
				}
				if err := p.NextShared(make([]float32, len(from)*3-1), obs, act, k, members, from, nil); err == nil {
					t.Fatalf("%v %s: a short result buffer was accepted", class, name)
				}
				p.Close()
			}
		}
	}
}

// TestWeightDecayShrinksWeights trains the same model with and without
// weight decay: the decayed one ends with smaller weights, its biases (not
// decayed) aside.
func TestWeightDecayShrinksWeights(t *testing.T) {
	sp := spec{name: "lg", od: 2, ad: 1}
	buf := linearGaussian(300, []float64{0.05, 0.1}, 24)
	sumSq := func(decay float32) float64 {
		cfg := peConfig()
		cfg.WeightDecay = []float32{decay}
		m, err := New(sp, cfg, 25)
		if err != nil {
			t.Fatal(err)
		}
		train(t, m, buf, TrainConfig{LR: 1e-3, Epochs: 3, BatchSize: 32, Seed: 26})
		var s float64
		for _, l := range m.Net.Layers {
			for _, w := range l.W {
				s += float64(w) * float64(w)
			}
		}
		return s
	}
	without, with := sumSq(0), sumSq(1)
	t.Logf("Σw² %.4g with weight decay 1, %.4g without", with, without)
	if !(with < 0.9*without) {
		t.Errorf("Σw² %g with weight decay 1, %g without: want it at least 10%% smaller", with, without)
	}
}
