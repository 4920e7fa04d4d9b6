package metrics

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/rng"
)

// decision measures a model by the decisions it leads to: from states
// along the expert's episodes, the planner plans once with the model and
// once with the true simulator (same optimiser, same seed), and both
// plans are rolled out on the simulator. Regret is how much less true
// return the model's plan earns; the first actions' distance is how far
// the action the MPC agent would take is from the simulator-planned one.
// Tasks whose simulator cannot be put in an observed state (half-cheetah,
// the arms) have no decision columns.
type decision struct{}

func init() { Register(decision{}) }

func (decision) Name() string { return "decision" }
func (decision) Doc() string {
	return "regret of the model's plan against the true-dynamics plan, and the distance of their first actions, from states along the expert's episodes"
}

func (decision) Score(ctx context.Context, m *dynamics.Model, d *Data) (map[string]float64, error) {
	c := d.Planner
	return decisionScore(ctx, d, func(start []float32, seed uint64) (planning.Objective, func(), error) {
		obj, err := planning.NewModelObjective(d.Task, m, c.Horizon, c.Particles, c.Propagation, nn.FP32, d.Threads, seed)
		if err != nil {
			return nil, nil, err
		}
		if err := obj.SetStart(start); err != nil {
			obj.Close()
			return nil, nil, err
		}
		return obj, obj.Close, nil
	})
}

// truthPlan is the simulator's plan from one state and its true return.
type truthPlan struct {
	obs    []float32
	state  env.State
	plan   []float32
	reward float64
}

// decisionStates is how many expert states are planned from by default.
const decisionStates = 8

// truth plans with the simulator from the sampled expert states, once per
// Data (every model is compared with the same plans).
func (d *Data) truth(ctx context.Context) ([]truthPlan, env.Simulator, error) {
	d.truthOnce.Do(func() {
		d.truthPlans, d.truthSim, d.truthErr = d.planTruth(ctx)
	})
	return d.truthPlans, d.truthSim, d.truthErr
}

func (d *Data) planTruth(ctx context.Context) ([]truthPlan, env.Simulator, error) {
	if d.Expert == nil || d.Expert.Len() == 0 || d.Planner.Horizon < 1 {
		return nil, nil, nil
	}
	e, err := d.Task.New()
	if err != nil {
		return nil, nil, err
	}
	sim, ok1 := e.(env.Simulator)
	set, ok2 := e.(env.ObservationSetter)
	if !ok1 || !ok2 {
		e.Close()
		return nil, nil, nil
	}
	n := d.States
	if n < 1 {
		n = decisionStates
	}
	n = min(n, d.Expert.Len())
	od := d.Expert.ObsDim
	obj, err := planning.NewSimObjective(sim, d.Planner.Horizon, d.Threads)
	if err != nil {
		return nil, nil, err
	}
	defer obj.Close()
	var plans []truthPlan
	for k := 0; k < n; k++ {
		i := k * d.Expert.Len() / n
		obs := append([]float32(nil), d.Expert.Obs[i*od:(i+1)*od]...)
		if err := set.SetObservation(obs); err != nil {
			return nil, nil, fmt.Errorf("metrics: expert state %d: %w", i, err)
		}
		st := sim.State()
		obj.SetStart(st)
		plan, err := optimize(ctx, d, obj, stateSeed(d, k))
		if err != nil {
			return nil, nil, err
		}
		r, err := trueReturn(ctx, obj, plan)
		if err != nil {
			return nil, nil, err
		}
		plans = append(plans, truthPlan{obs: obs, state: st, plan: plan, reward: r})
	}
	return plans, sim, nil
}

func stateSeed(d *Data, k int) uint64 {
	return rng.New(d.Seed).Named("decision").Child(uint64(k)).Uint64()
}

// optimize runs the planner's optimiser on obj from the middle of the
// action box, with seed.
func optimize(ctx context.Context, d *Data, obj planning.Objective, seed uint64) ([]float32, error) {
	b := planning.BoundsOf(d.Task.ActionSpace())
	opt, err := planning.NewOptimizer(d.Planner, b, seed)
	if err != nil {
		return nil, err
	}
	ad := len(b.Low)
	init := make([]float32, d.Planner.Horizon*ad)
	for t := 0; t < d.Planner.Horizon; t++ {
		for j := 0; j < ad; j++ {
			init[t*ad+j] = (b.Low[j] + b.High[j]) / 2
		}
	}
	plan := make([]float32, len(init))
	if err := opt.Optimize(ctx, plan, obj, init); err != nil {
		return nil, err
	}
	return plan, nil
}

func trueReturn(ctx context.Context, obj *planning.SimObjective, plan []float32) (float64, error) {
	r := make([]float64, 1)
	if err := obj.Evaluate(ctx, r, plan, 1); err != nil {
		return 0, err
	}
	return r[0], nil
}

// decisionScore compares the plans of the objectives newObjective makes
// (one per state, from its start observation) with the simulator's.
func decisionScore(ctx context.Context, d *Data, newObjective func(start []float32, seed uint64) (planning.Objective, func(), error)) (map[string]float64, error) {
	out := map[string]float64{}
	truth, sim, err := d.truth(ctx)
	if err != nil || len(truth) == 0 {
		return out, err
	}
	d.simMu.Lock() // one model at a time on the shared simulator
	defer d.simMu.Unlock()
	obj, err := planning.NewSimObjective(sim, d.Planner.Horizon, d.Threads)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	b := d.Task.ActionSpace()
	var regret, dist float64
	for k, tp := range truth {
		mobj, closeObj, err := newObjective(tp.obs, rng.New(stateSeed(d, k)).Named("objective").Uint64())
		if err != nil {
			return nil, err
		}
		plan, err := optimize(ctx, d, mobj, stateSeed(d, k))
		closeObj()
		if err != nil {
			return nil, err
		}
		obj.SetStart(tp.state)
		r, err := trueReturn(ctx, obj, plan)
		if err != nil {
			return nil, err
		}
		regret += (tp.reward - r) / float64(len(truth))
		var s, w float64
		for j := range b.Low {
			dj := float64(plan[j] - tp.plan[j])
			s += dj * dj
			span := float64(b.High[j] - b.Low[j])
			w += span * span
		}
		dist += math.Sqrt(s/w) / float64(len(truth))
	}
	name := func(c string) string {
		if d.ExpertName == "" {
			return c
		}
		return Column(c, d.ExpertName)
	}
	out[name("decision-regret")] = regret
	out[name("decision-first-action-distance")] = dist
	return out, nil
}

// decisionCache is the part of Data the decision metric fills.
type decisionCache struct {
	truthOnce  sync.Once
	truthPlans []truthPlan
	truthSim   env.Simulator
	truthErr   error
	simMu      sync.Mutex
}
