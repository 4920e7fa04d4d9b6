package planning

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/fields"
	"github.com/mismatch-rl/mismatch/nn"
)

// Method names an optimiser.
type Method string

// The optimisers.
const (
	MethodCEM    Method = "cem"    // the cross-entropy method, PETS's form
	MethodICEM   Method = "icem"   // improved CEM (Pinneri et al., 2020)
	MethodMPPI   Method = "mppi"   // model-predictive path integral control
	MethodRandom Method = "random" // random shooting
)

// Methods lists the optimisers.
var Methods = []Method{MethodCEM, MethodICEM, MethodMPPI, MethodRandom}

// ParseMethod returns the optimiser named s (case does not matter).
func ParseMethod(s string) (Method, error) {
	m := Method(strings.ToLower(s))
	if slices.Contains(Methods, m) {
		return m, nil
	}
	return "", fmt.Errorf("unknown optimizer %q (want %s)", s, methodNames())
}

func methodNames() string {
	names := make([]string, len(Methods))
	for i, m := range Methods {
		names[i] = string(m)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// MarshalText writes the optimiser's name.
func (m Method) MarshalText() ([]byte, error) { return []byte(m), nil }

// UnmarshalText reads an optimiser's name, as ParseMethod does; the empty
// text is the zero Method, which Validate refuses.
func (m *Method) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = ""
		return nil
	}
	v, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Config chooses an optimiser by name and holds every optimiser's
// settings, for configuration files; fields the chosen optimiser does not
// use are ignored (and not checked). Its zero value is not a planner:
// start from DefaultConfig.
type Config struct {
	Optimizer   Method  `yaml:"optimizer"`
	Horizon     int     `yaml:"horizon"`
	Population  int     `yaml:"population"`
	Elites      int     `yaml:"elites"`       // CEM, iCEM
	Iterations  int     `yaml:"iterations"`   // CEM, iCEM, MPPI
	Alpha       float64 `yaml:"alpha"`        // CEM, iCEM
	MinVariance float64 `yaml:"min_variance"` // CEM
	ReturnBest  bool    `yaml:"return_best"`  // CEM
	NoiseBeta   float64 `yaml:"noise_beta"`   // iCEM
	PopDecay    float64 `yaml:"pop_decay"`    // iCEM
	KeepElites  float64 `yaml:"keep_elites"`  // iCEM
	NoMeanLast  bool    `yaml:"no_mean_last"` // iCEM
	Gamma       float64 `yaml:"gamma"`        // MPPI
	Sigma       float64 `yaml:"sigma"`        // MPPI
	Beta        float64 `yaml:"beta"`         // MPPI
	// Particles per sequence and their propagation, for model rollouts.
	Particles   int         `yaml:"particles"`
	Propagation Propagation `yaml:"propagation"`
	// ReplanEvery is how many actions of each plan are executed.
	ReplanEvery int `yaml:"replan_every"`
	// Precision is the arithmetic of model rollouts: fp32, or bf16 (about
	// twice the speed where the CPU has AVX512_BF16; elsewhere fp32).
	Precision nn.Precision `yaml:"precision"`
}

// DefaultConfig is PETS's planner (CEM, horizon 25, population 400, 40
// elites, 5 iterations, α 0.1, 20 particles propagated TS∞, replanning
// every step), with mbrl-lib's settings for the other optimisers, so that
// changing Optimizer alone gives a usable planner: iCEM with coloured
// noise of exponent 2, population decay 1.25 and 30% of the elites kept;
// MPPI with γ 10, σ 1 and β 0.7.
func DefaultConfig() Config {
	return Config{Optimizer: MethodCEM, Horizon: 25, Population: 400, Elites: 40, Iterations: 5, Alpha: 0.1, MinVariance: 0.001,
		NoiseBeta: 2, PopDecay: 1.25, KeepElites: 0.3, Gamma: 10, Sigma: 1, Beta: 0.7,
		Particles: 20, Propagation: TSInf, ReplanEvery: 1}
}

func (c Config) cem() CEMConfig {
	return CEMConfig{Horizon: c.Horizon, Population: c.Population, Elites: c.Elites, Iterations: c.Iterations,
		Alpha: c.Alpha, MinVariance: c.MinVariance, ReturnBest: c.ReturnBest}
}

func (c Config) icem() ICEMConfig {
	return ICEMConfig{Horizon: c.Horizon, Population: c.Population, Elites: c.Elites, Iterations: c.Iterations,
		Alpha: c.Alpha, NoiseBeta: c.NoiseBeta, PopDecay: c.PopDecay, KeepElites: c.KeepElites, NoMeanLast: c.NoMeanLast}
}

func (c Config) mppi() MPPIConfig {
	return MPPIConfig{Horizon: c.Horizon, Population: c.Population, Iterations: c.Iterations, Gamma: c.Gamma, Sigma: c.Sigma, Beta: c.Beta}
}

// Validate reports every out-of-range setting of c that its optimiser
// uses, by its YAML name.
func (c Config) Validate() error {
	var errs fields.Errors
	switch c.Optimizer {
	case MethodCEM:
		errs.Nest("", c.cem().validate())
	case MethodICEM:
		errs.Nest("", c.icem().validate())
	case MethodMPPI:
		errs.Nest("", c.mppi().validate())
	case MethodRandom:
		errs.Nest("", validateShooting(c.Horizon, c.Population))
	default:
		errs.Add("optimizer", "is %q, want %s", string(c.Optimizer), methodNames())
	}
	if c.Particles < 1 {
		errs.Add("particles", "is %d, want at least 1", c.Particles)
	}
	if c.Propagation < TSInf || c.Propagation > Mean {
		errs.Add("propagation", "is %d, want ts-inf, ts1, expectation or mean", int(c.Propagation))
	}
	if c.Precision != nn.FP32 && c.Precision != nn.BF16 {
		errs.Add("precision", "is %d, want fp32 or bf16", int(c.Precision))
	}
	if c.ReplanEvery < 1 || (c.Horizon >= 1 && c.ReplanEvery > c.Horizon) {
		errs.Add("replan_every", "is %d, want 1 to the horizon (%d)", c.ReplanEvery, c.Horizon)
	}
	return errs.Err()
}

// Used returns c with the settings its optimiser ignores set to zero: two
// configurations plan alike exactly when their Used forms are equal.
func (c Config) Used() Config {
	u := Config{Optimizer: c.Optimizer, Horizon: c.Horizon, Population: c.Population,
		Particles: c.Particles, Propagation: c.Propagation, ReplanEvery: c.ReplanEvery, Precision: c.Precision}
	switch c.Optimizer {
	case MethodCEM:
		u.Elites, u.Iterations, u.Alpha, u.MinVariance, u.ReturnBest = c.Elites, c.Iterations, c.Alpha, c.MinVariance, c.ReturnBest
	case MethodICEM:
		u.Elites, u.Iterations, u.Alpha = c.Elites, c.Iterations, c.Alpha
		u.NoiseBeta, u.PopDecay, u.KeepElites, u.NoMeanLast = c.NoiseBeta, c.PopDecay, c.KeepElites, c.NoMeanLast
	case MethodMPPI:
		u.Iterations, u.Gamma, u.Sigma, u.Beta = c.Iterations, c.Gamma, c.Sigma, c.Beta
	}
	return u
}

// NewOptimizer returns the optimiser c names, for actions in b.
func NewOptimizer(c Config, b Bounds, seed uint64) (Optimizer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("planning: invalid planner config:\n%w", err)
	}
	switch c.Optimizer {
	case MethodCEM:
		return NewCEM(c.cem(), b, seed)
	case MethodICEM:
		return NewICEM(c.icem(), b, seed)
	case MethodMPPI:
		return NewMPPI(c.mppi(), b, seed)
	}
	return NewRandomShooting(c.Horizon, c.Population, b, seed)
}

// checkCommon reports the settings every optimiser shares.
func checkCommon(errs *fields.Errors, horizon, population int) {
	if horizon < 1 {
		errs.Add("horizon", "is %d, want at least 1", horizon)
	}
	if population < 1 {
		errs.Add("population", "is %d, want at least 1", population)
	}
}

func checkIterations(errs *fields.Errors, n int) {
	if n < 1 {
		errs.Add("iterations", "is %d, want at least 1", n)
	}
}

func checkElites(errs *fields.Errors, elites, population int) {
	if elites < 1 || elites > max(population, 1) {
		errs.Add("elites", "is %d, want 1 to the population (%d)", elites, population)
	}
}

func checkAlpha(errs *fields.Errors, alpha float64) {
	if !(alpha >= 0 && alpha < 1) {
		errs.Add("alpha", "is %g, want it in [0, 1)", alpha)
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Bytes estimates the memory an agent of c holds when it plans through a
// model of mc for task: the sampled sequences, the model rollouts'
// particle states and the model's inputs and outputs for every particle.
func (c Config) Bytes(task env.Task, mc dynamics.Config) float64 {
	od, ad := float64(task.ObservationSpace().Dim()), float64(task.ActionSpace().Dim())
	rows := float64(c.Population) * float64(c.Particles)
	if c.Propagation == Expectation {
		rows = float64(c.Population) * float64(max(mc.Members, 1))
	}
	rows = max(rows, float64(mc.Members)) // every member gets a block of rows
	// Per particle row: state, input and next state, action, reward,
	// flags, return and permutation.
	rollout := rows * (4*(3*od+ad+1) + 19)
	predict := mc.PredictBytes(task, 1) * rows
	packed := 0.0
	if lanes := c.maxLanes(); lanes > 1 {
		packed = float64(lanes) * mc.Bytes(task)
	}
	return c.sequenceBytes(ad) + rollout + predict + packed
}

// maxLanes bounds the lanes an evaluation of the population is rolled out
// in (ModelObjective.laneCount), each lane holding a packed copy of the
// network. The lanes follow the rows each elite member carries, and the
// elites are the training's to choose, so the bound takes the fewest: one
// member carrying every particle's row (under Expectation, every
// sequence's).
func (c Config) maxLanes() int {
	perMember := float64(c.Population) * float64(c.Particles)
	if c.Propagation == Expectation {
		perMember = float64(c.Population)
	}
	return lanesFor(int(min(perMember, math.MaxInt32)), c.Population)
}

// SimBytes estimates the memory an agent of c holds when it plans on the
// true simulator: the sampled sequences (the simulator's copies are a
// task's own).
func (c Config) SimBytes(task env.Task) float64 {
	return c.sequenceBytes(float64(task.ActionSpace().Dim()))
}

func (c Config) sequenceBytes(ad float64) float64 {
	pop := float64(c.Population)
	if c.Optimizer == MethodICEM {
		pop += 2*float64(c.Elites) + 1
	}
	return pop*float64(c.Horizon)*ad*4 + pop*24
}
