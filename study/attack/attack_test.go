package attack

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study"
)

// TestAttackLowersRewardKeepingLikelihood: from the refitted start,
// CMA-ES finds a model whose held-out NLL is no worse than the original's
// (no tolerance) and that earns far less (−8.4 → about −180 on the noisy
// point mass; the test asks for 30% less); the adversary saved to disk is
// that model: re-measured from its file, it has the same NLL and rewards.
func TestAttackLowersRewardKeepingLikelihood(t *testing.T) {
	task := classic.PointMass
	m, held := trainedPointMass(t, 40)
	planner := planning.Config{Optimizer: planning.MethodCEM, Horizon: 8, Population: 40, Elites: 5, Iterations: 3, Alpha: 0.1, MinVariance: 0.001, Particles: 2, Propagation: planning.TSInf, ReplanEvery: 1}
	// The search is random and its adversary does not always carry over
	// to the final episodes: with the planner's noise streams of
	// 2026-12-02 (kernel.Normals), seeds 1–8 but 4 lower the reward 3× to
	// 50×, seed 4 by 21%. Seed 1 is the first of them.
	cfg := Config{Subset: "last", Dims: 20, Step: 0.02, Iterations: 15, Seed: 1, Workers: 2,
		Search: study.EvalSpec{Episodes: 1, Planner: planner}, Final: study.EvalSpec{Episodes: 3, Planner: planner}}
	res, err := Run(context.Background(), task, m, held, cfg, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reward %.2f → %.2f, held-out NLL %.4f → %.4f, %d evaluations", res.Before.RewardMean, res.After.RewardMean, res.Before.NLL, res.After.NLL, res.Evaluations)
	if res.After.NLL > res.Before.NLL {
		t.Fatalf("the adversary's NLL %.5f is worse than the original's %.5f", res.After.NLL, res.Before.NLL)
	}
	// Rewards are negative on the point mass: 30% lower means further
	// from zero by 30% of the original's magnitude.
	if res.After.RewardMean > res.Before.RewardMean-0.3*abs(res.Before.RewardMean) {
		t.Fatalf("reward %.2f → %.2f: not 30%% lower", res.Before.RewardMean, res.After.RewardMean)
	}
	if res.Start == nil || res.Start.NLL > res.Before.NLL {
		t.Fatalf("the refitted start %+v should be recorded, at an NLL no worse than %.4f", res.Start, res.Before.NLL)
	}
	if len(res.BestPerIteration) != cfg.Iterations || len(res.AdversaryEpisodes) != 3 {
		t.Fatalf("convergence %v, %d episodes", res.BestPerIteration, len(res.AdversaryEpisodes))
	}
	dir := t.TempDir()
	if err := WriteReport(dir, cfg, res, held, []string{"x", "v"}); err != nil {
		t.Fatal(err)
	}
	if err := report.CheckOffline(filepath.Join(dir, "report.html"), 5); err != nil {
		t.Fatal(err)
	}
	saved, err := dynamics.Load(filepath.Join(dir, "adversary.safetensors"), task)
	if err != nil {
		t.Fatal(err)
	}
	met, err := saved.Evaluate(held, 1)
	if err != nil {
		t.Fatal(err)
	}
	final := rng.New(cfg.Seed).Named("final").Uint64()
	again, err := study.ScoreEpisodes(context.Background(), task, saved, cfg.Final, final, final, 1)
	if err != nil {
		t.Fatal(err)
	}
	if met.NLL != res.After.NLL || !slices.Equal(again.Rewards, res.After.Rewards) {
		t.Fatalf("the saved adversary measures NLL %.6f and rewards %v; the search reported %.6f and %v", met.NLL, again.Rewards, res.After.NLL, res.After.Rewards)
	}
}

// TestRefitMinimisesHeldOutNLL: the refit lands at the held-out NLL's
// minimum in the output layer's mean weights: better than the trained
// model, and every small move from it (along each weight and at random)
// makes it worse.
func TestRefitMinimisesHeldOutNLL(t *testing.T) {
	task := classic.PointMass
	buf, _ := data.RandomEpisodes(task, 10, 1)
	held, _ := data.RandomEpisodes(task, 10, 7)
	m, _ := dynamics.New(task, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16, 16}, Activation: nn.Swish}, 2)
	tr := dynamics.NewTrainer(m, 1)
	if _, err := tr.Train(context.Background(), buf, dynamics.TrainConfig{LR: 3e-3, Epochs: 10, BatchSize: 32, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	nll := func(m *dynamics.Model) float64 {
		met, err := m.Evaluate(held, 1)
		if err != nil {
			t.Fatal(err)
		}
		return met.NLL
	}
	fits, err := fitOutputs(m, held)
	if err != nil {
		t.Fatal(err)
	}
	out := outputOf(m)
	last, h := out.Layer, out.In
	if len(fits) != m.Members()*m.ObsDim() {
		t.Fatalf("%d fits, want %d", len(fits), m.Members()*m.ObsDim())
	}
	r := m.Clone()
	p := r.Net.Params()
	off, _ := r.Net.Range(len(r.Net.Layers) - 1)
	refit(p[off:], fits, out)
	before, at := nll(m), nll(r)
	t.Logf("held-out NLL %.5f → %.5f", before, at)
	if at > before-0.01 {
		t.Fatalf("refit NLL %.5f, trained %.5f: want at least 0.01 nats better", at, before)
	}
	src := rng.New(5)
	for trial := 0; trial < 20; trial++ {
		q := r.Clone()
		qp := q.Net.Params()
		for _, f := range fits {
			for i := 0; i <= h; i++ {
				qp[off+out.index(f.e, f.j, i)] += 0.02 * float32(src.Normal())
			}
		}
		if moved := nll(q); moved <= at {
			t.Fatalf("a random move from the refit lowered the NLL: %.6f → %.6f", at, moved)
		}
	}
	// Probe directions are scaled so that a unit move from the minimum
	// costs at most one nat (exactly one but for the ridge): at z the
	// NLL rises by at most z² (here by more than half of it).
	const dims, z = 6, 0.1
	dirs := make([]float32, dims*(len(last.W)+len(last.B)))
	if err := probeDirections(dirs, fits, m, held, task.ActionSpace(), 1, out, dims); err != nil {
		t.Fatal(err)
	}
	sub := len(dirs) / dims
	for d := 0; d < dims; d++ {
		q := r.Clone()
		qp := q.Net.Params()[off:]
		for i, v := range dirs[d*sub : (d+1)*sub] {
			qp[i] += z * v
		}
		rise := nll(q) - at
		t.Logf("probe direction %d: NLL +%.5f at z=%g", d, rise, z)
		if !(rise > 0.5*z*z && rise <= 1.05*z*z) {
			t.Fatalf("probe direction %d costs %.5f nats at z=%g, want (%.4f, %.4f]", d, rise, z, 0.5*z*z, 1.05*z*z)
		}
	}
	// The least-curved direction really is flatter than the most-curved.
	lo, hi := fits[0].vals[0], fits[0].vals[len(fits[0].vals)-1]
	if !(lo >= -1e-6*hi && lo < 1e-3*hi) {
		t.Fatalf("curvature eigenvalues from %g to %g", lo, hi)
	}
}

// TestAttackResumes: an attack stopped during its search (the lure planted,
// two CMA-ES generations scored) and run again in the same directory reads
// back the lure and the scored candidates, scores only the rest, and ends
// with the result of a run never stopped; run a third time it scores
// nothing. A journal of another config is not used.
func TestAttackResumes(t *testing.T) {
	m, held := trainedPointMass(t, 40)
	planner := planning.Config{Optimizer: planning.MethodCEM, Horizon: 8, Population: 40, Elites: 5, Iterations: 3, Alpha: 0.1, MinVariance: 0.001, Particles: 2, Propagation: planning.TSInf, ReplanEvery: 1}
	cfg := Config{Start: "lure", Lure: LureConfig{Starts: 500, Steps: 30, Distance: 2}, Subset: "last", Dims: 6, Step: 0.02, Iterations: 5, Population: 6, Seed: 4, Workers: 2,
		Search: study.EvalSpec{Episodes: 1, Planner: planner}, Final: study.EvalSpec{Episodes: 2, Planner: planner}}
	whole, err := Run(context.Background(), classic.PointMass, m, held, cfg, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	stopAfter2 := func(f string, a ...any) {
		t.Logf(f, a...)
		if len(a) > 0 && f == "attack: iteration %d, best objective %.2f (%d evaluations)" && a[0] == 2 {
			cancel()
		}
	}
	if _, err := Run(ctx, classic.PointMass, m, held, cfg, dir, stopAfter2); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v", err)
	}
	reset := func() {
		computed.candidates.Store(0)
		computed.lures.Store(0)
		computed.finals.Store(0)
	}
	reset()
	res, err := Run(context.Background(), classic.PointMass, m, held, cfg, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// The lure and the two generations of 6 scored before the stop were
	// kept; the final measurements were still to make.
	if n := computed.candidates.Load(); n == 0 || n > int64(res.Evaluations-2*6) || computed.lures.Load() != 0 || computed.finals.Load() != 3 {
		t.Fatalf("the resumed run scored %d candidates of %d (want the two first generations' read back), planted %d lures, measured %d models",
			n, res.Evaluations, computed.lures.Load(), computed.finals.Load())
	}
	same := func(what string, a, b *Result) {
		t.Helper()
		da, _ := a.Model.Digest()
		db, _ := b.Model.Digest()
		if da != db || !slices.Equal(a.BestPerIteration, b.BestPerIteration) || a.Evaluations != b.Evaluations ||
			!slices.Equal(a.After.Rewards, b.After.Rewards) || a.After.NLL != b.After.NLL || a.Lures != b.Lures || a.LureWeight != b.LureWeight {
			t.Fatalf("%s: adversary %s, convergence %v, %d evaluations, rewards %v (NLL %g); never stopped: %s, %v, %d, %v (%g)", what,
				db, b.BestPerIteration, b.Evaluations, b.After.Rewards, b.After.NLL, da, a.BestPerIteration, a.Evaluations, a.After.Rewards, a.After.NLL)
		}
	}
	same("resumed", whole, res)
	reset()
	again, err := Run(context.Background(), classic.PointMass, m, held, cfg, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	same("run again", whole, again)
	if computed.candidates.Load()+computed.lures.Load()+computed.finals.Load() != 0 {
		t.Fatalf("a run whose journal is complete scored %d candidates, planted %d lures, measured %d models",
			computed.candidates.Load(), computed.lures.Load(), computed.finals.Load())
	}
	// Another seed: another search, the journal replaced.
	other := cfg
	other.Seed = 5
	reset()
	if _, err := Run(context.Background(), classic.PointMass, m, held, other, dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	if n := computed.candidates.Load(); n < int64(other.Iterations*other.Population) || computed.lures.Load() != 1 {
		t.Fatalf("a run of another config scored %d candidates: it read another run's journal", n)
	}
}
