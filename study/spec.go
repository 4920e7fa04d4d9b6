// Package study runs the objective-mismatch paper's experiments on any
// task and any population of dynamics models:
//
//   - likelihood vs reward: every model of a population is scored by its
//     log-likelihood on evaluation datasets (expert, on-policy, grid or
//     uniform coverage) and by the mean reward it earns in MPC episodes on
//     the real task; the correlations between the two (Pearson, Spearman,
//     Kendall, with bootstrap intervals) and total-least-squares trends are
//     the paper's figure 3;
//   - loss vs reward over training: one model is checkpointed as it trains
//     and every checkpoint is scored the same way (figures 4 and 5).
//
// A study is a spec of datasets, a population and an evaluation. It runs in
// stages, each resumable: prepare builds the datasets and the population;
// then every model is a cell, evaluated independently and written to the
// study directory on its own (so cells can run on a local worker pool or as
// shards of a batch job); analysis merges the cells into tables.
package study

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/planning"
)

// The kinds of study.
const (
	LikelihoodReward = "likelihood-reward"
	LossReward       = "loss-reward"
	// Reweight is the paper's figure 8: models trained on S tuples within
	// distance ε of an expert trajectory, with and without weights.
	Reweight = "reweight"
)

// Spec describes a study.
type Spec struct {
	Kind       string         `yaml:"kind"`
	Task       string         `yaml:"task"`
	Seed       uint64         `yaml:"seed"`
	Threads    int            `yaml:"threads"` // worker goroutines (0: one per CPU)
	Datasets   []DatasetSpec  `yaml:"datasets"`
	Population PopulationSpec `yaml:"population"`
	Evaluation EvalSpec       `yaml:"evaluation"`
}

// DatasetSpec describes an evaluation dataset.
type DatasetSpec struct {
	Name string `yaml:"name"`
	// Kind is expert (episodes of a planner on the true simulator, kept if
	// their reward passes Threshold), on-policy (every transition the
	// population's PETS runs collected), grid (Points per observation and
	// action dimension over the box), uniform (Samples drawn over the
	// box) or file (an .npz at Path).
	Kind      string          `yaml:"kind"`
	Episodes  int             `yaml:"episodes"`
	Threshold float64         `yaml:"threshold"`
	Planner   planning.Config `yaml:"planner"`
	Points    int             `yaml:"points"`
	Samples   int             `yaml:"samples"`
	// Low and High bound the observations of grid and uniform data; empty
	// takes the task's coverage box.
	Low  []float32 `yaml:"low"`
	High []float32 `yaml:"high"`
	Path string    `yaml:"path"`
}

// PopulationSpec describes the models a study scores.
type PopulationSpec struct {
	// Kind is pets (Runs PETS runs made by the study with config PETS,
	// seeds Seed+1…; every trial's model), runs (every trial's model of
	// existing run directories Dirs), train (models trained on Dataset for
	// every class, seed and epoch budget listed) or epochs (one model
	// trained on Dataset for Epochs epochs, checkpointed every Every).
	Kind    string      `yaml:"kind"`
	Runs    int         `yaml:"runs"`
	PETS    pets.Config `yaml:"pets"`
	Dirs    []string    `yaml:"dirs"`
	Dataset string      `yaml:"dataset"`
	// For train and epochs.
	Classes []string         `yaml:"classes"`
	Seeds   int              `yaml:"seeds"`
	Budgets []int            `yaml:"budgets"` // epochs of each trained model (train)
	Epochs  int              `yaml:"epochs"`  // epochs of the checkpointed model (epochs)
	Every   int              `yaml:"every"`
	Model   pets.ModelConfig `yaml:"model"`
	Train   pets.TrainConfig `yaml:"train"`
	// For reweight: a pool dataset, sampled by distance to the trajectory
	// of an expert dataset, at every size and distance bound listed
	// (distances in the pool's per-dimension standard deviations), each
	// trained with and without Weighting's weights for at least Steps
	// gradient steps.
	Pool      string    `yaml:"pool"`
	Expert    string    `yaml:"expert"`
	Sizes     []int     `yaml:"sizes"`
	Bounds    []float64 `yaml:"bounds"`
	Weighting string    `yaml:"weighting"`
	Steps     int       `yaml:"steps"`
}

// EvalSpec is how each model is scored.
type EvalSpec struct {
	Episodes int             `yaml:"episodes"` // MPC episodes per model
	Planner  planning.Config `yaml:"planner"`
	// Bootstrap resamples and confidence level of correlation intervals.
	Resamples int     `yaml:"resamples"`
	Level     float64 `yaml:"level"`
}

// Validate reports every out-of-range field by its name.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if s.Kind != LikelihoodReward && s.Kind != LossReward && s.Kind != Reweight {
		bad("kind", "is %q, want %s, %s or %s", s.Kind, LikelihoodReward, LossReward, Reweight)
	}
	if s.Task == "" {
		bad("task", "is empty")
	}
	if s.Threads < 0 {
		bad("threads", "is %d", s.Threads)
	}
	if len(s.Datasets) == 0 {
		bad("datasets", "is empty: a study scores models on at least one dataset")
	}
	names := map[string]bool{}
	for i, d := range s.Datasets {
		f := fmt.Sprintf("datasets[%d]", i)
		if d.Name == "" || !validName(d.Name) {
			bad(f+".name", "is %q, want letters, digits, - and _", d.Name)
		}
		if names[d.Name] {
			bad(f+".name", "%q is used twice", d.Name)
		}
		names[d.Name] = true
		switch d.Kind {
		case "expert":
			if d.Episodes < 1 {
				bad(f+".episodes", "is %d, want at least 1", d.Episodes)
			}
			if err := checkPlanner(d.Planner); err != nil {
				bad(f+".planner", "%v", err)
			}
		case "on-policy":
			if s.Population.Kind != "pets" && s.Population.Kind != "runs" {
				bad(f+".kind", "on-policy data comes from PETS runs; the population is %q", s.Population.Kind)
			}
		case "grid":
			if d.Points < 1 || d.Points > 50 {
				bad(f+".points", "is %d, want 1 to 50", d.Points)
			}
		case "uniform":
			if d.Samples < 1 {
				bad(f+".samples", "is %d, want at least 1", d.Samples)
			}
		case "file":
			if d.Path == "" {
				bad(f+".path", "is empty")
			}
		default:
			bad(f+".kind", "is %q, want expert, on-policy, grid, uniform or file", d.Kind)
		}
		if len(d.Low) != len(d.High) {
			bad(f+".low", "has %d values, high has %d", len(d.Low), len(d.High))
		}
	}
	p := s.Population
	switch p.Kind {
	case "pets":
		if p.Runs < 1 {
			bad("population.runs", "is %d, want at least 1", p.Runs)
		}
		if err := p.PETS.Validate(); err != nil {
			bad("population.pets", "%v", err)
		}
	case "runs":
		if len(p.Dirs) == 0 {
			bad("population.dirs", "is empty")
		}
	case "train", "epochs":
		if !names[p.Dataset] {
			bad("population.dataset", "%q is not one of the datasets", p.Dataset)
		}
		if p.Kind == "train" {
			if len(p.Classes) == 0 || p.Seeds < 1 || len(p.Budgets) == 0 {
				bad("population", "train needs classes, seeds ≥ 1 and budgets")
			}
			for _, b := range p.Budgets {
				if b < 1 {
					bad("population.budgets", "holds %d, want epochs ≥ 1", b)
				}
			}
			for i, cl := range p.Classes {
				mc := p.Model
				mc.Class = cl
				if _, err := mc.Dynamics(); err != nil {
					bad(fmt.Sprintf("population.classes[%d]", i), "%v", err)
				}
			}
		} else {
			if p.Epochs < 1 || p.Every < 1 || p.Every > p.Epochs {
				bad("population", "epochs needs epochs ≥ 1 and 1 ≤ every ≤ epochs (have %d and %d)", p.Epochs, p.Every)
			}
			if _, err := p.Model.Dynamics(); err != nil {
				bad("population.model", "%v", err)
			}
		}
		if p.Train.BatchSize < 1 || !(p.Train.LR > 0) {
			bad("population.train", "needs batch_size ≥ 1 and lr > 0")
		}
	case "reweight":
		if !names[p.Pool] {
			bad("population.pool", "%q is not one of the datasets", p.Pool)
		}
		expert := false
		for _, d := range s.Datasets {
			expert = expert || (d.Name == p.Expert && d.Kind == "expert")
		}
		if !expert {
			bad("population.expert", "%q is not an expert dataset", p.Expert)
		}
		if len(p.Sizes) == 0 || len(p.Bounds) == 0 || p.Seeds < 1 {
			bad("population", "reweight needs sizes, bounds and seeds ≥ 1")
		}
		for _, n := range p.Sizes {
			if n < 1 {
				bad("population.sizes", "holds %d, want sizes ≥ 1", n)
			}
		}
		for _, e := range p.Bounds {
			if !(e > 0) {
				bad("population.bounds", "holds %g, want distances > 0", e)
			}
		}
		if _, err := data.Weight(p.Weighting, 0, 1); err != nil {
			bad("population.weighting", "%v", err)
		}
		if _, err := p.Model.Dynamics(); err != nil {
			bad("population.model", "%v", err)
		}
		if p.Train.BatchSize < 1 || !(p.Train.LR > 0) || p.Train.Epochs < 1 {
			bad("population.train", "needs epochs ≥ 1, batch_size ≥ 1 and lr > 0")
		}
	default:
		bad("population.kind", "is %q, want pets, runs, train, epochs or reweight", p.Kind)
	}
	if s.Kind == LossReward && p.Kind != "epochs" {
		bad("population.kind", "a %s study needs an epochs population", LossReward)
	}
	if (s.Kind == Reweight) != (p.Kind == "reweight") {
		bad("population.kind", "a %s study and a reweight population go together", Reweight)
	}
	e := s.Evaluation
	if e.Episodes < 1 {
		bad("evaluation.episodes", "is %d, want at least 1", e.Episodes)
	}
	if err := checkPlanner(e.Planner); err != nil {
		bad("evaluation.planner", "%v", err)
	}
	if _, err := planning.ParsePropagation(e.Planner.Propagation); err != nil {
		bad("evaluation.planner.propagation", "%v", err)
	}
	if e.Resamples < 0 || !(e.Level > 0 && e.Level < 1) {
		bad("evaluation", "resamples %d and level %g: want resamples ≥ 0 and 0 < level < 1", e.Resamples, e.Level)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid study spec:\n%w", err)
	}
	return nil
}

func checkPlanner(c planning.Config) error {
	if !slices.Contains([]string{"cem", "icem", "mppi", "random"}, c.Optimizer) {
		return fmt.Errorf("optimizer %q, want cem, icem, mppi or random", c.Optimizer)
	}
	if c.Horizon < 1 || c.Population < 1 || c.ReplanEvery < 1 || c.ReplanEvery > c.Horizon {
		return fmt.Errorf("horizon %d, population %d, replan_every %d: want positive values, replan_every ≤ horizon", c.Horizon, c.Population, c.ReplanEvery)
	}
	if (c.Optimizer == "cem" || c.Optimizer == "icem") && (c.Elites < 1 || c.Elites > c.Population || c.Iterations < 1) {
		return fmt.Errorf("elites %d and iterations %d for a population of %d", c.Elites, c.Iterations, c.Population)
	}
	if c.Particles < 1 {
		return fmt.Errorf("particles %d, want at least 1", c.Particles)
	}
	return nil
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// Presets names the built-in studies.
var Presets = []string{"fast", "paper"}

// Preset returns a built-in study of a kind for a task:
//
//   - fast: a few short PETS runs (or one short training), a few MPC
//     episodes per model, lighter planners: finishes on a 2-core machine in
//     well under an hour and still shows the effect;
//   - paper: the paper's sizes (for cartpole: 50 PETS runs of 20 trials,
//     10 episodes per model, the 7⁵ grid), for a cluster.
func Preset(name, kind, task string) (Spec, error) {
	expertPlanner := planning.Config{Optimizer: "cem", Horizon: 25, Population: 400, Elites: 40, Iterations: 5, Alpha: 0.1, MinVariance: 0.001, Particles: 1, Propagation: "ts-inf", ReplanEvery: 1}
	s := Spec{Kind: kind, Task: task, Seed: 1,
		Datasets: []DatasetSpec{
			{Name: "expert", Kind: "expert", Episodes: 10, Threshold: expertThreshold(task), Planner: expertPlanner},
			{Name: "grid", Kind: "grid", Points: 7},
		},
		Evaluation: EvalSpec{Episodes: 10, Resamples: 2000, Level: 0.95},
	}
	petsCfg, err := pets.Preset("paper", task)
	if err != nil {
		return Spec{}, err
	}
	s.Evaluation.Planner = petsCfg.Planner
	switch kind {
	case LikelihoodReward:
		s.Datasets = slices.Insert(s.Datasets, 1, DatasetSpec{Name: "on-policy", Kind: "on-policy"})
		s.Population = PopulationSpec{Kind: "pets", Runs: 50, PETS: petsCfg}
	case Reweight:
		s.Datasets[1] = DatasetSpec{Name: "pool", Kind: "uniform", Samples: 1_000_000}
		s.Population = PopulationSpec{Kind: "reweight", Pool: "pool", Expert: "expert",
			Sizes: []int{10, 30, 100, 300, 1000, 3000, 10000}, Bounds: []float64{0.25, 0.5, 1, 2, 4}, Weighting: "exponential",
			Seeds: 3, Steps: 2000, Model: petsCfg.Model, Train: pets.TrainConfig{Epochs: 5, BatchSize: 32, LR: 1e-3}}
	default:
		s.Population = PopulationSpec{Kind: "epochs", Dataset: "expert", Epochs: 200, Every: 10,
			Model: petsCfg.Model, Train: pets.TrainConfig{BatchSize: 32, LR: 1e-3}}
	}
	switch name {
	case "paper":
	case "fast":
		fastPETS, _ := pets.Preset("fast", task)
		s.Evaluation.Planner = fastPETS.Planner
		s.Evaluation.Episodes = 3
		s.Evaluation.Resamples = 1000
		// The expert keeps PETS's planner: with 200 samples it falls just
		// short of the cartpole's 179 (178.6 measured); with 400 it scores
		// 178.8–180.2. The fast preset keeps episodes above 175, the
		// expert's bar in issue 6, so that a few tries suffice.
		s.Datasets[0].Episodes = 3
		if task == "cartpole-swingup" {
			s.Datasets[0].Threshold = 175
		}
		switch kind {
		case LikelihoodReward:
			fastPETS.Trials = 10
			s.Population.Runs = 3
			s.Population.PETS = fastPETS
		case Reweight:
			s.Datasets[0].Episodes = 1 // one trajectory is all it needs
			s.Datasets[1].Samples = 50_000
			s.Population.Sizes = []int{10, 100, 1000}
			s.Population.Bounds = []float64{0.5, 1, 2}
			s.Population.Seeds = 1
			s.Population.Steps = 600
			s.Population.Model = fastPETS.Model
		default:
			s.Population.Epochs, s.Population.Every = 40, 4
			s.Population.Model = fastPETS.Model
		}
	default:
		return Spec{}, fmt.Errorf("unknown study preset %q (want fast or paper)", name)
	}
	if kind != LikelihoodReward && kind != LossReward && kind != Reweight {
		return Spec{}, fmt.Errorf("unknown study kind %q (want %s, %s or %s)", kind, LikelihoodReward, LossReward, Reweight)
	}
	return s, nil
}

// expertThreshold is the reward an expert episode must pass: the paper's
// 179 for the cartpole swing-up, otherwise none.
func expertThreshold(task string) float64 {
	if task == "cartpole-swingup" {
		return 179
	}
	return -1e300
}
