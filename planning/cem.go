package planning

import (
	"context"
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/internal/fields"

	"github.com/mismatch-rl/mismatch/rng"
)

// CEMConfig holds the cross-entropy method's settings.
type CEMConfig struct {
	Horizon     int
	Population  int     // sequences sampled per iteration
	Elites      int     // best sequences the distribution is refitted to
	Iterations  int     // at most
	Alpha       float64 // weight of the old mean and variance in each update
	MinVariance float64 // stop once every variance is below this (PETS: 0.001)
	// ReturnBest returns the best sequence sampled instead of the final
	// mean (PETS returns the mean).
	ReturnBest bool
}

func (c CEMConfig) validate() error {
	var errs fields.Errors
	checkCommon(&errs, c.Horizon, c.Population)
	checkElites(&errs, c.Elites, c.Population)
	checkIterations(&errs, c.Iterations)
	checkAlpha(&errs, c.Alpha)
	if !(c.MinVariance >= 0) || math.IsInf(c.MinVariance, 0) {
		errs.Add("min_variance", "is %g, want a finite number ≥ 0", c.MinVariance)
	}
	return errs.Err()
}

// CEM is the cross-entropy method as PETS runs it: the variance restarts
// at (high−low)²/16 each call; samples come from a normal truncated at ±2σ,
// with the variance capped so that samples stay in the action box; the
// mean and variance move towards the elites' by 1−α per iteration.
type CEM struct {
	cfg     CEMConfig
	b       Bounds
	src     *rng.Source
	mean    []float32
	vari    []float64
	samples []float32
	returns []float64
	order   []int
	best    []float32
}

// NewCEM returns a CEM optimiser for actions in b.
func NewCEM(cfg CEMConfig, b Bounds, seed uint64) (*CEM, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("planning: invalid CEM config:\n%w", err)
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	n := cfg.Horizon * b.dim()
	return &CEM{cfg: cfg, b: b, src: rng.New(seed), mean: make([]float32, n), vari: make([]float64, n),
		samples: make([]float32, cfg.Population*n), returns: make([]float64, cfg.Population),
		order: make([]int, cfg.Population), best: make([]float32, n)}, nil
}

// Horizon is the planning horizon.
func (c *CEM) Horizon() int { return c.cfg.Horizon }

// Reset does nothing: CEM keeps no state between calls but its random stream.
func (c *CEM) Reset() {}

// Optimize runs CEM from the mean init.
func (c *CEM) Optimize(ctx context.Context, plan []float32, obj Objective, init []float32) error {
	n := c.cfg.Horizon * c.b.dim()
	if err := checkPlan(plan, init, n, obj, c.cfg.Horizon); err != nil {
		return err
	}
	d := c.b.dim()
	copy(c.mean, init)
	for i := range c.vari {
		w := float64(c.b.High[i%d] - c.b.Low[i%d])
		c.vari[i] = w * w / 16
	}
	bestRet := math.Inf(-1)
	P, K := c.cfg.Population, c.cfg.Elites
	for it := 0; it < c.cfg.Iterations; it++ {
		maxVar := 0.0
		for _, v := range c.vari {
			maxVar = math.Max(maxVar, v)
		}
		if maxVar < c.cfg.MinVariance {
			break
		}
		for i := 0; i < n; i++ {
			mu := float64(c.mean[i])
			lo, hi := float64(c.b.Low[i%d]), float64(c.b.High[i%d])
			v := math.Min(c.vari[i], math.Min(sq((mu-lo)/2), sq((hi-mu)/2)))
			sd := math.Sqrt(v)
			for p := 0; p < P; p++ {
				c.samples[p*n+i] = float32(mu + sd*c.src.TruncNormal(2))
			}
		}
		// Rounding can put a sample a hair outside the box.
		c.b.clip(c.samples)
		if err := obj.Evaluate(ctx, c.returns, c.samples, P); err != nil {
			return err
		}
		sanitize(c.returns)
		rank(c.order, c.returns)
		if math.IsInf(c.returns[c.order[0]], -1) {
			return errAllFailed
		}
		if r := c.returns[c.order[0]]; r > bestRet {
			bestRet = r
			copy(c.best, c.samples[c.order[0]*n:(c.order[0]+1)*n])
		}
		for i := 0; i < n; i++ {
			var s, ss float64
			for _, p := range c.order[:K] {
				v := float64(c.samples[p*n+i])
				s += v
				ss += v * v
			}
			em := s / float64(K)
			ev := math.Max(ss/float64(K)-em*em, 0)
			c.mean[i] = float32(c.cfg.Alpha*float64(c.mean[i]) + (1-c.cfg.Alpha)*em)
			c.vari[i] = c.cfg.Alpha*c.vari[i] + (1-c.cfg.Alpha)*ev
		}
	}
	if c.cfg.ReturnBest && !math.IsInf(bestRet, -1) {
		copy(plan, c.best)
	} else {
		copy(plan, c.mean)
	}
	return nil
}

func sq(x float64) float64 { return x * x }
