package planning

import (
	"context"
	"fmt"
	"time"

	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/rng"
)

// Agent is a model-predictive controller: every ReplanEvery steps it
// optimises an action sequence from the current observation, warm-started
// from its previous plan shifted by the steps since (new steps filled with
// the action box's middle), and it executes the plan's actions in turn.
type Agent struct {
	opt     Optimizer
	obj     Objective
	prepare func(obs []float32) error
	b       Bounds
	every   int
	plan    []float32
	next    int // index of the next plan step to execute
	mid     []float32

	// PlanTime accumulates the time spent optimising; Plans counts calls.
	PlanTime time.Duration
	Plans    int
}

// NewAgent returns an agent that optimises obj with opt. prepare is called
// with the current observation before each optimisation (to set the
// objective's start); replanEvery is 1 for PETS's replanning at every step.
func NewAgent(opt Optimizer, obj Objective, prepare func(obs []float32) error, b Bounds, replanEvery int) (*Agent, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if obj != nil {
		if err := checkHorizon(obj, opt.Horizon()); err != nil {
			return nil, err
		}
	}
	if replanEvery < 1 || replanEvery > opt.Horizon() {
		return nil, fmt.Errorf("planning: replanning every %d steps with a horizon of %d", replanEvery, opt.Horizon())
	}
	a := &Agent{opt: opt, obj: obj, prepare: prepare, b: b, every: replanEvery,
		plan: make([]float32, opt.Horizon()*b.dim()), mid: b.Mid()}
	a.Reset()
	return a, nil
}

// Reset starts a new episode: the plan returns to the box's middle.
func (a *Agent) Reset() {
	d := a.b.dim()
	for i := range a.plan {
		a.plan[i] = a.mid[i%d]
	}
	a.next = 0
	a.opt.Reset()
}

// Plan returns the current plan (horizon×actDim); it is the agent's own.
func (a *Agent) Plan() []float32 { return a.plan }

// Act writes the action for obs into act; its signature is data.Policy's.
// Cancelling ctx stops the planning with ctx's error.
func (a *Agent) Act(ctx context.Context, act, obs []float32) error {
	d := a.b.dim()
	if len(act) != d {
		return fmt.Errorf("planning: action buffer of %d, want %d", len(act), d)
	}
	if a.next%a.every == 0 {
		// Shift out the executed steps.
		if a.next > 0 {
			copy(a.plan, a.plan[a.next*d:])
			for i := len(a.plan) - a.next*d; i < len(a.plan); i++ {
				a.plan[i] = a.mid[i%d]
			}
			a.next = 0
		}
		if a.prepare != nil {
			if err := a.prepare(obs); err != nil {
				return err
			}
		}
		t := time.Now()
		if err := a.opt.Optimize(ctx, a.plan, a.obj, a.plan); err != nil {
			return err
		}
		a.PlanTime += time.Since(t)
		a.Plans++
	}
	copy(act, a.plan[a.next*d:(a.next+1)*d])
	a.next++
	return nil
}

// ModelAgent is an MPC agent planning through a dynamics model, with its
// objective, which it closes.
type ModelAgent struct {
	*Agent
	Objective *ModelObjective
}

// NewModelAgent returns an agent that plans with the optimiser c names over
// model rollouts of c's horizon, particles and propagation, on threads
// goroutines. Objective and optimiser draw from the seed's own streams.
func NewModelAgent(task env.Task, model *dynamics.Model, c Config, threads int, seed uint64) (*ModelAgent, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("planning: invalid planner config:\n%w", err)
	}
	src := rng.New(seed)
	obj, err := NewModelObjective(task, model, c.Horizon, c.Particles, c.Propagation, c.Precision, threads, src.Child(0).Uint64())
	if err != nil {
		return nil, err
	}
	b := BoundsOf(task.ActionSpace())
	opt, err := NewOptimizer(c, b, src.Child(1).Uint64())
	if err != nil {
		obj.Close()
		return nil, err
	}
	a, err := NewAgent(opt, obj, obj.SetStart, b, c.ReplanEvery)
	if err != nil {
		obj.Close()
		return nil, err
	}
	return &ModelAgent{Agent: a, Objective: obj}, nil
}

// Close stops the objective's goroutines.
func (a *ModelAgent) Close() { a.Objective.Close() }

// NewSimAgent returns an agent that plans with the optimiser c names over
// obj's rollouts of the true simulator, starting each plan from sim's
// current state: the paper's expert. obj may serve many agents in turn.
func NewSimAgent(obj *SimObjective, sim env.Simulator, c Config, seed uint64) (*Agent, error) {
	b := BoundsOf(sim.Task().ActionSpace())
	opt, err := NewOptimizer(c, b, seed)
	if err != nil {
		return nil, err
	}
	return NewAgent(opt, obj, func([]float32) error { obj.SetStart(sim.State()); return nil }, b, c.ReplanEvery)
}
