package study

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/report"
)

// TestAttackLowersRewardKeepingLikelihood: CMA-ES finds a model that earns
// at least 30% less, within the likelihood allowance.
func TestAttackLowersRewardKeepingLikelihood(t *testing.T) {
	task := classic.PointMass
	buf, err := data.RandomEpisodes(task, 30, 1)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := data.RandomEpisodes(task, 5, 99)
	m, _ := dynamics.New(task, dynamics.Config{Probabilistic: true, Members: 1, Hidden: []int{32, 32}, Activation: nn.Swish}, 2)
	// The point mass is noiseless; a variance floor keeps the model's
	// likelihood from being so sharp that no weight can move.
	for d := range m.Head.MinLogVar {
		m.Head.MinLogVar[d] = -4
	}
	tr := dynamics.NewTrainer(m, 3e-3, 1)
	if _, err := tr.Train(buf, dynamics.TrainConfig{Epochs: 40, BatchSize: 32, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	planner := planning.Config{Optimizer: "cem", Horizon: 8, Population: 40, Elites: 5, Iterations: 3, Alpha: 0.1, MinVariance: 0.001, Particles: 2, Propagation: "ts-inf", ReplanEvery: 1}
	// The noiseless point mass makes every model's likelihood sharp; a
	// tolerance of one nat lets the search move (the cartpole benchmark
	// holds the adversary to no worse at all).
	cfg := AttackConfig{Subset: "last", Dims: 20, Step: 0.02, Iterations: 15, Seed: 4, Workers: 2, Tolerance: 1,
		Search: EvalSpec{Episodes: 1, Planner: planner}, Final: EvalSpec{Episodes: 3, Planner: planner}}
	res, err := Attack(context.Background(), task, m, held, cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reward %.2f → %.2f, held-out NLL %.4f → %.4f, %d evaluations", res.Before.RewardMean, res.After.RewardMean, res.Before.NLL, res.After.NLL, res.Evaluations)
	if res.After.NLL > res.Before.NLL+cfg.Tolerance {
		t.Fatalf("the adversary's NLL %.5f exceeds the original's %.5f by more than %g", res.After.NLL, res.Before.NLL, cfg.Tolerance)
	}
	// Rewards are negative on the point mass: 30% lower means further
	// from zero by 30% of the original's magnitude.
	if res.After.RewardMean > res.Before.RewardMean-0.3*abs(res.Before.RewardMean) {
		t.Fatalf("reward %.2f → %.2f: not 30%% lower", res.Before.RewardMean, res.After.RewardMean)
	}
	if len(res.BestPerIteration) == 0 || len(res.AdversaryEpisodes) != 3 {
		t.Fatalf("convergence %v, %d episodes", res.BestPerIteration, len(res.AdversaryEpisodes))
	}
	dir := t.TempDir()
	if err := WriteAttack(dir, cfg, res, buf, []string{"x", "v"}); err != nil {
		t.Fatal(err)
	}
	if err := report.CheckOffline(filepath.Join(dir, "report.html"), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamics.Load(filepath.Join(dir, "adversary.safetensors"), task); err != nil {
		t.Fatal(err)
	}
}
