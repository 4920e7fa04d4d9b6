package planning

import (
	"context"
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/internal/fields"

	"github.com/mismatch-rl/mismatch/rng"
)

// MPPIConfig holds the settings of model-predictive path integral control
// in the form of Nagabandi et al. (PDDM) and mbrl-lib.
type MPPIConfig struct {
	Horizon    int
	Population int
	Iterations int
	// Gamma scales returns in the weights exp(γ·(R − max R)): larger is
	// greedier.
	Gamma float64
	// Sigma is the standard deviation of the exploration noise, in
	// action units.
	Sigma float64
	// Beta smooths the noise in time: a_t = β·(μ_t + ε_t) + (1−β)·a_{t−1}.
	Beta float64
}

func (c MPPIConfig) validate() error {
	var errs fields.Errors
	checkCommon(&errs, c.Horizon, c.Population)
	checkIterations(&errs, c.Iterations)
	if !(c.Gamma > 0) || !finite(c.Gamma) {
		errs.Add("gamma", "is %g, want a finite positive number", c.Gamma)
	}
	if !(c.Sigma > 0) || !finite(c.Sigma) {
		errs.Add("sigma", "is %g, want a finite positive number", c.Sigma)
	}
	if !(c.Beta > 0 && c.Beta <= 1) {
		errs.Add("beta", "is %g, want it in (0, 1]", c.Beta)
	}
	return errs.Err()
}

// MPPI updates its mean sequence to the return-weighted average of noisy,
// time-smoothed samples around it.
type MPPI struct {
	cfg     MPPIConfig
	b       Bounds
	src     *rng.Source
	mean    []float32
	samples []float32
	returns []float64
	weights []float64
}

// NewMPPI returns an MPPI optimiser for actions in b.
func NewMPPI(cfg MPPIConfig, b Bounds, seed uint64) (*MPPI, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("planning: invalid MPPI config:\n%w", err)
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	n := cfg.Horizon * b.dim()
	return &MPPI{cfg: cfg, b: b, src: rng.New(seed), mean: make([]float32, n),
		samples: make([]float32, cfg.Population*n), returns: make([]float64, cfg.Population), weights: make([]float64, cfg.Population)}, nil
}

// Horizon is the planning horizon.
func (m *MPPI) Horizon() int { return m.cfg.Horizon }

// Reset does nothing.
func (m *MPPI) Reset() {}

// Optimize runs MPPI from the mean init.
func (m *MPPI) Optimize(ctx context.Context, plan []float32, obj Objective, init []float32) error {
	d := m.b.dim()
	n := m.cfg.Horizon * d
	if err := checkPlan(plan, init, n, obj, m.cfg.Horizon); err != nil {
		return err
	}
	copy(m.mean, init)
	P := m.cfg.Population
	beta := float32(m.cfg.Beta)
	for it := 0; it < m.cfg.Iterations; it++ {
		for p := 0; p < P; p++ {
			s := m.samples[p*n : (p+1)*n]
			for t := 0; t < m.cfg.Horizon; t++ {
				for j := 0; j < d; j++ {
					prev := m.mean[j] // before the first step, the plan's first action
					if t > 0 {
						prev = s[(t-1)*d+j]
					}
					e := float32(m.cfg.Sigma * m.src.Normal())
					s[t*d+j] = beta*(m.mean[t*d+j]+e) + (1-beta)*prev
				}
			}
		}
		m.b.clip(m.samples)
		if err := obj.Evaluate(ctx, m.returns, m.samples, P); err != nil {
			return err
		}
		sanitize(m.returns)
		top := math.Inf(-1)
		for _, r := range m.returns {
			top = math.Max(top, r)
		}
		if math.IsInf(top, -1) {
			return errAllFailed
		}
		var norm float64
		for p, r := range m.returns {
			m.weights[p] = math.Exp(m.cfg.Gamma * (r - top))
			norm += m.weights[p]
		}
		for i := 0; i < n; i++ {
			var s float64
			for p := 0; p < P; p++ {
				s += m.weights[p] * float64(m.samples[p*n+i])
			}
			m.mean[i] = float32(s / norm)
		}
	}
	copy(plan, m.mean)
	return nil
}
