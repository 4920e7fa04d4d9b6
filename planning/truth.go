package planning

import (
	"context"
	"fmt"
	"math"
	"runtime"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/parallel"
)

// SimObjective scores action sequences by rolling them out on copies of
// the true simulator from a start state, in parallel: the "expert" planner
// of the objective-mismatch paper. Rewards after a terminal state count
// for nothing; a rollout the simulator cannot complete scores −Inf.
type SimObjective struct {
	task    env.Task
	horizon int
	clones  []env.Simulator
	pool    *parallel.Pool
	start   env.State
	obs     [][]float32
	rew     [][]float64
	term    [][]bool
	prev    [][]float32

	// The current call, read by the tasks.
	returns []float64
	seqs    []float32
	cancel  <-chan struct{}
	run     func(worker, task int)
}

// NewSimObjective returns an objective over clones of sim with the given
// horizon, on threads goroutines (< 1: GOMAXPROCS).
func NewSimObjective(sim env.Simulator, horizon, threads int) (*SimObjective, error) {
	if horizon < 1 {
		return nil, fmt.Errorf("planning: simulator rollouts of horizon %d", horizon)
	}
	task := sim.Task()
	o := &SimObjective{task: task, horizon: horizon, pool: parallel.New(threads), start: sim.State()}
	od, W := task.ObservationSpace().Dim(), o.pool.Workers()
	for w := 0; w < W; w++ {
		c, err := sim.Clone()
		if err != nil {
			o.Close()
			return nil, err
		}
		o.clones = append(o.clones, c)
		o.obs = append(o.obs, make([]float32, horizon*od))
		o.rew = append(o.rew, make([]float64, horizon))
		o.term = append(o.term, make([]bool, horizon))
		o.prev = append(o.prev, make([]float32, (horizon+1)*od))
	}
	o.run = o.rollout
	return o, nil
}

// Close frees the clones and stops the goroutines.
func (o *SimObjective) Close() {
	for _, c := range o.clones {
		c.Close()
	}
	o.pool.Close()
}

// Horizon is the length of the sequences it scores.
func (o *SimObjective) Horizon() int { return o.horizon }

// SetStart sets the state rollouts start from.
func (o *SimObjective) SetStart(st env.State) { o.start = append(o.start[:0], st...) }

// Evaluate is the objective.
func (o *SimObjective) Evaluate(ctx context.Context, returns []float64, seqs []float32, n int) error {
	ad := o.task.ActionSpace().Dim()
	if len(returns) < n || len(seqs) < n*o.horizon*ad {
		return fmt.Errorf("planning: %d returns and %d actions for %d sequences", len(returns), len(seqs), n)
	}
	o.returns, o.seqs, o.cancel = returns, seqs, ctx.Done()
	o.pool.Run(n, o.run)
	o.returns, o.seqs, o.cancel = nil, nil, nil
	return ctx.Err()
}

func (o *SimObjective) rollout(w, s int) {
	ad, od, H := o.task.ActionSpace().Dim(), o.task.ObservationSpace().Dim(), o.horizon
	select {
	case <-o.cancel:
		o.returns[s] = math.Inf(-1)
		return
	default:
	}
	// A scheduling point each rollout, for the runtime's monitor (see
	// parallel.Yielder). Not a Yielder's one every 2 ms: with both
	// workers in MuJoCo's short cgo calls that made bench/expert's
	// planning step slower (cartpole-swingup, population 100, seven
	// runs by turns on a Zen 5: medians 69 → 73 ms).
	runtime.Gosched()
	c := o.clones[w]
	acts := o.seqs[s*H*ad : (s+1)*H*ad]
	if err := c.SetState(o.start); err != nil {
		o.returns[s] = math.Inf(-1)
		return
	}
	// Observations before and after each step, for termination checks.
	prev := o.prev[w]
	copy(prev[:od], c.Observation())
	if err := c.Rollout(acts, H, o.obs[w], o.rew[w]); err != nil {
		o.returns[s] = math.Inf(-1)
		return
	}
	copy(prev[od:], o.obs[w])
	o.task.Terminated(o.term[w], prev[:H*od], acts, prev[od:])
	var sum float64
	for h := 0; h < H; h++ {
		sum += o.rew[w][h]
		if o.term[w][h] {
			break
		}
	}
	o.returns[s] = sum
}
