package study

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// Episodes is how a model did in MPC episodes on the real task.
type Episodes struct {
	Rewards   []float64 // NaN for an episode the model broke
	Mean, Std float64   // of the rewards
	// Observations holds each episode's observations after each step.
	Observations [][]float32
	// Faults joins the errors of the episodes the model broke (a
	// diverging prediction, a planner that found no finite return).
	Faults error
}

// ScoreEpisodes runs e.Episodes MPC episodes with model m on task, up to
// workers at a time: episode ep starts from the state that seed
// startSeed's stream "episode" gives it — the same for every model scored
// with that seed, so that all face the same start states — and plans from
// planSeed's streams, so the numbers do not depend on workers. A model's
// own numerical failure is recorded in Faults; the error is for failures
// that are not the model's (cancellation, setting up a planner or a world).
func ScoreEpisodes(ctx context.Context, task env.Task, m *dynamics.Model, e EvalSpec, planSeed, startSeed uint64, workers int) (Episodes, error) {
	n := e.Episodes
	streams := rng.New(planSeed).Named("score")
	seeds := make([]uint64, n)
	for ep := range seeds {
		seeds[ep] = streams.Child(uint64(ep)).Uint64()
	}
	// A world per worker: each episode resets its world from its own seed.
	worlds := make([]env.Env, max(min(workers, n), 1))
	for w := range worlds {
		world, err := task.New()
		if err != nil {
			return Episodes{}, err // the worlds made so far close on return
		}
		worlds[w] = world
		defer world.Close()
	}
	rewards := make([]float64, n)
	trajs := make([][]float32, n)
	faults := make([]error, n)
	setup := make([]error, n)
	pool := parallel.New(len(worlds))
	defer pool.Close()
	pool.Run(n, func(w, ep int) {
		agent, err := planning.NewModelAgent(task, m, e.Planner, 1, seeds[ep])
		if err != nil {
			setup[ep] = err
			return
		}
		buf := data.NewBuffer(task.ObservationSpace().Dim(), task.ActionSpace().Dim())
		r, err := data.RunEpisode(ctx, worlds[w], agent.Act, episodeSeed(startSeed, ep), buf, nil)
		agent.Close()
		if err != nil {
			faults[ep] = fmt.Errorf("episode %d: %w", ep, err)
			r = math.NaN()
		}
		rewards[ep], trajs[ep] = r, slices.Clone(buf.Next)
	})
	if err := ctx.Err(); err != nil {
		return Episodes{}, err
	}
	if err := errors.Join(setup...); err != nil {
		return Episodes{}, err
	}
	out := Episodes{Rewards: rewards, Observations: trajs, Faults: errors.Join(faults...)}
	out.Mean, out.Std = stats.MeanStd(rewards)
	return out, nil
}

// episodeSeed is the reset seed of evaluation episode e: the same for every
// model, so that all face the same start states.
func episodeSeed(seed uint64, e int) uint64 {
	return rng.New(seed).Named("episode").Child(uint64(e)).Uint64()
}
