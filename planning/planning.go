// Package planning plans action sequences for model-predictive control:
// optimisers over sequences (CEM in the PETS form, random shooting, MPPI,
// iCEM), objectives that score sequences by rolling them out through a
// learned dynamics model with particles (TS1, TS∞, expectation, mean) or
// through copies of the true simulator, and an MPC agent that replans as it
// acts.
package planning

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mismatch-rl/mismatch/env"
)

// Objective scores action sequences of a fixed horizon.
type Objective interface {
	// Horizon is the length of the sequences it scores, in steps.
	Horizon() int
	// Evaluate scores n action sequences: seqs holds them one after
	// another, each Horizon()×actDim, and it writes each one's return
	// (higher is better) into returns. A sequence that cannot be scored
	// gets −Inf. Cancelling ctx stops it with ctx's error.
	Evaluate(ctx context.Context, returns []float64, seqs []float32, n int) error
}

// ObjectiveFunc makes an Objective of a function scoring sequences of H
// steps.
type ObjectiveFunc struct {
	H int
	F func(ctx context.Context, returns []float64, seqs []float32, n int) error
}

// Horizon is f.H.
func (f ObjectiveFunc) Horizon() int { return f.H }

// Evaluate calls f.F.
func (f ObjectiveFunc) Evaluate(ctx context.Context, returns []float64, seqs []float32, n int) error {
	return f.F(ctx, returns, seqs, n)
}

// checkHorizon refuses an objective of another horizon than the
// optimiser's: the sequences would be read with the wrong stride.
func checkHorizon(obj Objective, h int) error {
	if obj.Horizon() != h {
		return fmt.Errorf("planning: an objective of horizon %d for an optimiser of horizon %d", obj.Horizon(), h)
	}
	return nil
}

// Optimizer searches for the action sequence of highest return.
type Optimizer interface {
	// Optimize writes into plan the best sequence found, starting the
	// search from init (the previous plan shifted, at the MPC agent's
	// call); plan and init are horizon×actDim and may be the same slice.
	// Cancelling ctx stops the search with ctx's error.
	Optimize(ctx context.Context, plan []float32, obj Objective, init []float32) error
	// Reset forgets what the optimiser keeps between calls.
	Reset()
	// Horizon is the length of the sequences, in steps.
	Horizon() int
}

// Bounds are the box the actions of a sequence must lie in.
type Bounds struct {
	Low, High []float32
}

// BoundsOf returns the bounds of an action space.
func BoundsOf(b env.Box) Bounds { return Bounds{Low: b.Low, High: b.High} }

func (b Bounds) dim() int { return len(b.Low) }

func (b Bounds) validate() error {
	if len(b.Low) == 0 || len(b.Low) != len(b.High) {
		return fmt.Errorf("planning: action bounds of lengths %d and %d", len(b.Low), len(b.High))
	}
	for i := range b.Low {
		lo, hi := float64(b.Low[i]), float64(b.High[i])
		if !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			return fmt.Errorf("planning: action dimension %d has bounds [%g, %g]; planners need a finite box", i, lo, hi)
		}
	}
	return nil
}

// Mid is the box's midpoint, the action the agent fills new plan steps with.
func (b Bounds) Mid() []float32 {
	m := make([]float32, len(b.Low))
	for i := range m {
		m[i] = (b.Low[i] + b.High[i]) / 2
	}
	return m
}

// clip moves a sequence's actions into the box.
func (b Bounds) clip(seq []float32) {
	d := len(b.Low)
	for i, v := range seq {
		j := i % d
		seq[i] = min(max(v, b.Low[j]), b.High[j])
	}
}

// sanitize makes every non-finite return −Inf, so that a broken rollout
// ranks below every valid one.
func sanitize(r []float64) {
	for i, v := range r {
		if math.IsNaN(v) || math.IsInf(v, 1) {
			r[i] = math.Inf(-1)
		}
	}
}

// rank orders sequence indices by return, best first; ties keep index
// order, so the ranking is deterministic.
func rank(order []int, returns []float64) {
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(returns[b], returns[a]) })
}

func checkPlan(plan, init []float32, n int, obj Objective, h int) error {
	if err := checkHorizon(obj, h); err != nil {
		return err
	}
	if len(plan) != n || len(init) != n {
		return fmt.Errorf("planning: plan of %d and start of %d values, want %d", len(plan), len(init), n)
	}
	return nil
}

// errAllFailed is returned when no sequence of a population could be scored.
var errAllFailed = errors.New("planning: every sampled sequence has return −Inf or NaN (the model or simulator diverged)")
