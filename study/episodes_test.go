package study

import (
	"context"
	"slices"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
)

// pointMassModel is a small ensemble trained on random point-mass episodes.
func pointMassModel(t *testing.T) *dynamics.Model {
	t.Helper()
	buf, err := data.RandomEpisodes(classic.PointMass, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := dynamics.New(classic.PointMass, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Swish}, 2)
	tr := dynamics.NewTrainer(m, 1)
	defer tr.Close()
	if _, err := tr.Train(context.Background(), buf, dynamics.TrainConfig{LR: 3e-3, Epochs: 10, BatchSize: 32, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestScoreEpisodesWorkers: episodes scored side by side give the numbers
// of one after another.
func TestScoreEpisodesWorkers(t *testing.T) {
	m := pointMassModel(t)
	planner := planning.Config{Optimizer: planning.MethodCEM, Horizon: 6, Population: 20, Elites: 4, Iterations: 2, Alpha: 0.1, MinVariance: 0.001, Particles: 2, Propagation: planning.TSInf, ReplanEvery: 1}
	e := EvalSpec{Episodes: 5, Planner: planner}
	one, err := ScoreEpisodes(context.Background(), classic.PointMass, m, e, 3, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	three, err := ScoreEpisodes(context.Background(), classic.PointMass, m, e, 3, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	for ep := range one.Rewards {
		if one.Rewards[ep] != three.Rewards[ep] || !slices.Equal(one.Observations[ep], three.Observations[ep]) {
			t.Fatalf("episode %d: reward %v on one worker, %v on three", ep, one.Rewards[ep], three.Rewards[ep])
		}
	}
	if one.Rewards[0] == one.Rewards[1] {
		t.Fatalf("episodes 0 and 1 scored the same %v: not different episodes", one.Rewards[0])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScoreEpisodes(ctx, classic.PointMass, m, e, 3, 4, 2); err == nil {
		t.Fatal("a cancelled scoring returned no error")
	}
}
