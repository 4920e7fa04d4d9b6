package planning

import (
	"fmt"
	"strings"
)

// Config chooses an optimiser by name and holds every optimiser's
// settings, for configuration files; fields an optimiser does not use are
// ignored.
type Config struct {
	Optimizer   string  `yaml:"optimizer"` // cem, icem, mppi or random
	Horizon     int     `yaml:"horizon"`
	Population  int     `yaml:"population"`
	Elites      int     `yaml:"elites"`
	Iterations  int     `yaml:"iterations"`
	Alpha       float64 `yaml:"alpha"`
	MinVariance float64 `yaml:"min_variance"` // CEM
	ReturnBest  bool    `yaml:"return_best"`  // CEM
	NoiseBeta   float64 `yaml:"noise_beta"`   // iCEM
	PopDecay    float64 `yaml:"pop_decay"`    // iCEM
	KeepElites  float64 `yaml:"keep_elites"`  // iCEM
	Gamma       float64 `yaml:"gamma"`        // MPPI
	Sigma       float64 `yaml:"sigma"`        // MPPI
	Beta        float64 `yaml:"beta"`         // MPPI
	// Particles per sequence and their propagation, for model rollouts.
	Particles   int    `yaml:"particles"`
	Propagation string `yaml:"propagation"`
	// ReplanEvery is how many actions of each plan are executed.
	ReplanEvery int `yaml:"replan_every"`
}

// NewOptimizer returns the optimiser c names, for actions in b.
func NewOptimizer(c Config, b Bounds, seed uint64) (Optimizer, error) {
	switch strings.ToLower(c.Optimizer) {
	case "cem":
		return NewCEM(CEMConfig{Horizon: c.Horizon, Population: c.Population, Elites: c.Elites, Iterations: c.Iterations,
			Alpha: c.Alpha, MinVariance: c.MinVariance, ReturnBest: c.ReturnBest}, b, seed)
	case "icem":
		return NewICEM(ICEMConfig{Horizon: c.Horizon, Population: c.Population, Elites: c.Elites, Iterations: c.Iterations,
			Alpha: c.Alpha, NoiseBeta: c.NoiseBeta, PopDecay: c.PopDecay, KeepElites: c.KeepElites}, b, seed)
	case "mppi":
		return NewMPPI(MPPIConfig{Horizon: c.Horizon, Population: c.Population, Iterations: c.Iterations,
			Gamma: c.Gamma, Sigma: c.Sigma, Beta: c.Beta}, b, seed)
	case "random":
		return NewRandomShooting(c.Horizon, c.Population, b, seed)
	}
	return nil, fmt.Errorf("planning: unknown optimizer %q (want cem, icem, mppi or random)", c.Optimizer)
}
