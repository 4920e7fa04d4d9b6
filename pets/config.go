// Package pets runs probabilistic ensembles with trajectory sampling
// (Chua et al., 2018), the MBRL loop of the objective-mismatch paper's
// Algorithm 1: fill a dataset with random-action episodes, then repeat —
// train the dynamics model on all data, run one episode of model-predictive
// control on the real task, add it to the data. Every trial's model is
// saved with that trial's reward, because the paper's studies use these
// models as populations.
package pets

import (
	"errors"
	"fmt"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
)

// Config is a PETS run's configuration.
type Config struct {
	Task string `yaml:"task"`
	Seed uint64 `yaml:"seed"`
	// Threads is the number of goroutines for training and planning
	// (0: one per CPU).
	Threads int `yaml:"threads"`
	// RandomTrials episodes of uniformly random actions seed the data.
	RandomTrials int `yaml:"random_trials"`
	// Trials episodes of model-predictive control follow.
	Trials  int             `yaml:"trials"`
	Model   ModelConfig     `yaml:"model"`
	Train   TrainConfig     `yaml:"train"`
	Planner planning.Config `yaml:"planner"`
}

// ModelConfig is the dynamics model's architecture.
type ModelConfig struct {
	Class             string    `yaml:"class"`   // P, PE, D or DE
	Members           int       `yaml:"members"` // ensemble size of PE and DE
	Hidden            []int     `yaml:"hidden"`
	Activation        string    `yaml:"activation"` // swish, tanh, relu, leaky_relu
	LearnLogVarBounds bool      `yaml:"learn_logvar_bounds"`
	WeightDecay       []float32 `yaml:"weight_decay"` // one per layer, or one for all
}

// TrainConfig is how the model is trained before each trial.
type TrainConfig struct {
	Epochs    int     `yaml:"epochs"`
	BatchSize int     `yaml:"batch_size"`
	LR        float64 `yaml:"lr"`
	HoldOut   float64 `yaml:"hold_out"`
	Patience  int     `yaml:"patience"`
	Elites    int     `yaml:"elites"`
	// Reweight, when set to a weighting (linear, exponential, cosine),
	// weights each transition's loss by its distance to the best episode
	// collected so far: the paper's suggested online re-weighting.
	Reweight string `yaml:"reweight"`
}

// Dynamics returns the dynamics model configuration c describes.
func (c ModelConfig) Dynamics() (dynamics.Config, error) {
	prob, members, err := dynamics.ParseClass(c.Class, c.Members)
	if err != nil {
		return dynamics.Config{}, err
	}
	act, err := nn.ParseActivation(c.Activation)
	if err != nil {
		return dynamics.Config{}, err
	}
	cfg := dynamics.Config{Probabilistic: prob, Members: members, Hidden: c.Hidden, Activation: act,
		LearnLogVarBounds: c.LearnLogVarBounds, WeightDecay: c.WeightDecay}
	return cfg, cfg.Validate()
}

// Validate reports every out-of-range field of c by its name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.Task == "" {
		bad("task", "is empty")
	}
	if c.Threads < 0 {
		bad("threads", "is %d, want 0 (one per CPU) or more", c.Threads)
	}
	if c.RandomTrials < 1 {
		bad("random_trials", "is %d, want at least 1 (the first model needs data)", c.RandomTrials)
	}
	if c.Trials < 0 {
		bad("trials", "is %d, want 0 or more", c.Trials)
	}
	if _, err := c.Model.Dynamics(); err != nil {
		bad("model", "%v", err)
	}
	for i, h := range c.Model.Hidden {
		if h < 1 {
			bad(fmt.Sprintf("model.hidden[%d]", i), "is %d, want at least 1", h)
		}
	}
	t := c.Train
	if t.Epochs < 1 {
		bad("train.epochs", "is %d, want at least 1", t.Epochs)
	}
	if t.BatchSize < 1 {
		bad("train.batch_size", "is %d, want at least 1", t.BatchSize)
	}
	if !(t.LR > 0) {
		bad("train.lr", "is %g, want a positive number", t.LR)
	}
	if !(t.HoldOut >= 0 && t.HoldOut < 0.5) {
		bad("train.hold_out", "is %g, want it in [0, 0.5)", t.HoldOut)
	}
	if t.Patience < 0 {
		bad("train.patience", "is %d, want 0 (off) or more", t.Patience)
	}
	if t.Reweight != "" {
		if _, err := data.Weight(t.Reweight, 0, 1); err != nil {
			bad("train.reweight", "%v", err)
		}
	}
	if t.Patience > 0 && t.HoldOut == 0 {
		bad("train.patience", "needs train.hold_out > 0")
	}
	p := c.Planner
	switch {
	case p.Horizon < 1:
		bad("planner.horizon", "is %d, want at least 1", p.Horizon)
	case p.Population < 1:
		bad("planner.population", "is %d, want at least 1", p.Population)
	case p.Iterations < 1 && p.Optimizer != "random":
		bad("planner.iterations", "is %d, want at least 1", p.Iterations)
	case (p.Optimizer == "cem" || p.Optimizer == "icem") && (p.Elites < 1 || p.Elites > p.Population):
		bad("planner.elites", "is %d, want 1 to planner.population (%d)", p.Elites, p.Population)
	case p.Particles < 1:
		bad("planner.particles", "is %d, want at least 1", p.Particles)
	case p.ReplanEvery < 1 || p.ReplanEvery > p.Horizon:
		bad("planner.replan_every", "is %d, want 1 to planner.horizon (%d)", p.ReplanEvery, p.Horizon)
	}
	if _, err := planning.ParsePropagation(p.Propagation); err != nil {
		bad("planner.propagation", "%v", err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid PETS config:\n%w", err)
	}
	return nil
}

// Presets names the built-in configurations.
var Presets = []string{"default", "fast", "paper"}

// Preset returns a built-in configuration for a task:
//
//   - default: settings that reach the task's known performance in a few
//     trials on a 2-core machine (for cartpole-swingup, mbrl-lib's
//     notebook model, PETS's horizon and a lighter CEM);
//   - fast: a small model and planner that finish a short run in minutes,
//     for demonstrations and smoke tests;
//   - paper: the PETS paper's settings (as the objective-mismatch paper
//     used them), for a cluster.
func Preset(name, task string) (Config, error) {
	c := Config{Task: task, Seed: 1, RandomTrials: 1,
		Model:   ModelConfig{Class: "PE", Members: 5, Hidden: []int{200, 200, 200}, Activation: "swish", WeightDecay: []float32{5e-5}},
		Train:   TrainConfig{Epochs: 50, BatchSize: 32, LR: 1e-3, HoldOut: 0.1, Patience: 5},
		Planner: planning.Config{Optimizer: "cem", Horizon: 25, Population: 300, Elites: 30, Iterations: 5, Alpha: 0.1, MinVariance: 0.001, Particles: 10, Propagation: "ts-inf", ReplanEvery: 1},
	}
	switch task {
	case "cartpole-swingup":
		// A horizon of 25 steps (1 s), PETS's: at 15, even planning on
		// the true simulator peaks near 172 (the swing-up needs the
		// lookahead), and learned models drive the cart into the rail's
		// end; at 25 the simulator scores about 178.
		c.Trials = 15
	case "halfcheetah":
		c.Trials = 50
		c.Model.Hidden = []int{200, 200, 200, 200}
		c.Planner.Horizon = 30
	case "reacher", "pusher":
		c.Trials = 50
	default:
		c.Trials = 10
		c.Planner.Horizon = 15
	}
	switch name {
	case "default":
	case "fast":
		c.Trials = min(c.Trials, 5)
		c.Model.Hidden = []int{64, 64}
		c.Train.Epochs = 20
		c.Planner.Population = 150
		c.Planner.Elites = 15
		c.Planner.Particles = 5
	case "paper":
		c.Train = TrainConfig{Epochs: 5, BatchSize: 32, LR: 1e-3}
		c.Model.LearnLogVarBounds = true
		c.Planner = planning.Config{Optimizer: "cem", Horizon: 25, Population: 400, Elites: 40, Iterations: 5, Alpha: 0.1, MinVariance: 0.001, Particles: 20, Propagation: "ts-inf", ReplanEvery: 1}
		switch task {
		case "cartpole-swingup":
			c.Trials = 20 // the paper's cartpole runs; PETS ran 50
			c.Model.Hidden = []int{500, 500, 500}
			c.Model.WeightDecay = []float32{1e-4, 2.5e-4, 2.5e-4, 5e-4}
		case "halfcheetah":
			c.Trials = 300
			c.Model.Hidden = []int{200, 200, 200, 200}
			c.Model.WeightDecay = []float32{2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4}
			c.Planner.Population, c.Planner.Elites, c.Planner.Horizon = 500, 50, 30
		case "reacher", "pusher":
			c.Trials = 100
			c.Model.Hidden = []int{200, 200, 200, 200}
			c.Model.WeightDecay = []float32{2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4}
		}
	default:
		return Config{}, fmt.Errorf("unknown preset %q (want default, fast or paper)", name)
	}
	return c, nil
}
