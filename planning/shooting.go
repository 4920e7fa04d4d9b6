package planning

import (
	"context"
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/internal/fields"

	"github.com/mismatch-rl/mismatch/rng"
)

// RandomShooting samples sequences uniformly in the action box and keeps
// the best.
type RandomShooting struct {
	horizon, pop int
	b            Bounds
	src          *rng.Source
	samples      []float32
	returns      []float64
	order        []int
}

// NewRandomShooting returns a random-shooting optimiser of the given
// population.
func NewRandomShooting(horizon, population int, b Bounds, seed uint64) (*RandomShooting, error) {
	if err := validateShooting(horizon, population); err != nil {
		return nil, fmt.Errorf("planning: invalid random-shooting config:\n%w", err)
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	n := horizon * b.dim()
	return &RandomShooting{horizon: horizon, pop: population, b: b, src: rng.New(seed),
		samples: make([]float32, population*n), returns: make([]float64, population), order: make([]int, population)}, nil
}

func validateShooting(horizon, population int) error {
	var errs fields.Errors
	checkCommon(&errs, horizon, population)
	return errs.Err()
}

// Horizon is the planning horizon.
func (r *RandomShooting) Horizon() int { return r.horizon }

// Reset does nothing.
func (r *RandomShooting) Reset() {}

// Optimize samples the population once; init is the first sample, so a
// good previous plan is never lost.
func (r *RandomShooting) Optimize(ctx context.Context, plan []float32, obj Objective, init []float32) error {
	n := r.horizon * r.b.dim()
	if err := checkPlan(plan, init, n, obj, r.horizon); err != nil {
		return err
	}
	d := r.b.dim()
	copy(r.samples, init)
	for i := n; i < len(r.samples); i++ {
		j := i % d
		r.samples[i] = r.b.Low[j] + (r.b.High[j]-r.b.Low[j])*r.src.Float32()
	}
	r.b.clip(r.samples[:n])
	if err := obj.Evaluate(ctx, r.returns, r.samples, r.pop); err != nil {
		return err
	}
	sanitize(r.returns)
	rank(r.order, r.returns)
	if math.IsInf(r.returns[r.order[0]], -1) {
		return errAllFailed
	}
	copy(plan, r.samples[r.order[0]*n:(r.order[0]+1)*n])
	return nil
}
