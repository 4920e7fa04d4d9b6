package mujoco

import (
	"fmt"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/rng"
)

// simEnv is an environment of a MuJoCo task; it implements env.Simulator.
type simEnv struct {
	t         *task
	sim       *Sim
	cur, prev record
	steps     int
	done      bool
	ctrl      []float64
	act       []float32
	dt        float64 // seconds per environment step
	// Rollout scratch.
	rollCtrl, rollRec []float64
}

func (e *simEnv) Task() env.Task { return e.t }

func (e *simEnv) live() error {
	if e.sim == nil {
		return env.ErrClosed
	}
	return nil
}

// capture fills r from the simulation's current state; positions must be
// up to date (after Forward, or a step with kinematics).
func (e *simEnv) capture(r record) {
	copy(r.qpos(), e.sim.QPos())
	copy(r.qvel(), e.sim.QVel())
	for i, id := range e.t.ids {
		var p [3]float64
		if i < e.t.nbody {
			p = e.sim.BodyPos(int(id))
		} else {
			p = e.sim.SitePos(int(id))
		}
		copy(r.pos(i), p[:])
	}
}

// Observation returns the observation of the current state.
func (e *simEnv) Observation() []float32 { return e.observation() }

func (e *simEnv) observation() []float32 {
	o := make([]float32, e.t.obsDim)
	e.t.observe(o, e.cur, e.prev, e.dt)
	return o
}

func (e *simEnv) Reset(seed uint64) ([]float32, error) {
	if err := e.live(); err != nil {
		return nil, err
	}
	if err := e.sim.Reset(); err != nil {
		return nil, err
	}
	e.t.reset(rng.New(seed), e.sim.QPos(), e.sim.QVel())
	if err := e.sim.Forward(); err != nil {
		return nil, err
	}
	e.capture(e.cur)
	copy(e.prev.v, e.cur.v)
	e.steps, e.done = 0, false
	return e.observation(), nil
}

func (e *simEnv) Step(action []float32) ([]float32, float64, bool, bool, error) {
	if err := e.live(); err != nil {
		return nil, 0, false, false, err
	}
	if e.done {
		return nil, 0, false, false, env.ErrEpisodeOver
	}
	if err := env.CheckAction(e.t.act, action); err != nil {
		return nil, 0, false, false, err
	}
	e.act = append(e.act[:0], action...)
	e.t.act.Clip(e.act)
	for i, a := range e.act {
		e.ctrl[i] = float64(a)
	}
	e.prev, e.cur = e.cur, e.prev
	if err := e.sim.Step(e.ctrl, e.t.frameSkip, len(e.t.ids) > 0); err != nil {
		// The simulation has been reset; this episode cannot go on.
		e.done = true
		return nil, 0, false, false, fmt.Errorf("%s step %d: %w", e.t.name, e.steps, err)
	}
	e.capture(e.cur)
	r := e.t.stepReward(e.prev, e.cur, e.act, e.dt)
	e.steps++
	trunc := e.steps >= e.t.steps
	e.done = trunc
	return e.observation(), r, false, trunc, nil
}

func (e *simEnv) Close() error {
	if e.sim == nil {
		return nil
	}
	err := e.sim.Close()
	e.sim = nil
	return err
}

// State is the simulation's state, the step count and the previous record
// (the half-cheetah's observation depends on the previous position).
func (e *simEnv) State() env.State {
	if e.sim == nil {
		return nil
	}
	st := e.sim.State(make(env.State, 0, e.sim.StateSize()+1+len(e.prev.v)))
	st = append(st, float64(e.steps))
	return append(st, e.prev.v...)
}

func (e *simEnv) SetState(st env.State) error {
	if err := e.live(); err != nil {
		return err
	}
	n := e.sim.StateSize()
	if len(st) != n+1+len(e.prev.v) {
		return fmt.Errorf("env: %s state has %d values, want %d", e.t.name, len(st), n+1+len(e.prev.v))
	}
	if err := e.sim.SetState(st[:n]); err != nil {
		return err
	}
	e.capture(e.cur)
	e.steps = int(st[n])
	copy(e.prev.v, st[n+1:])
	e.done = e.steps >= e.t.steps
	return nil
}

func (e *simEnv) SetObservation(obs []float32) error {
	if err := e.live(); err != nil {
		return err
	}
	if e.t.fromObs == nil {
		return fmt.Errorf("env: the %s observation does not determine its state", e.t.name)
	}
	if len(obs) != e.t.obsDim {
		return fmt.Errorf("env: %s observation has %d values, want %d", e.t.name, len(obs), e.t.obsDim)
	}
	if err := e.sim.Reset(); err != nil {
		return err
	}
	e.t.fromObs(e.sim.QPos(), e.sim.QVel(), obs)
	if err := e.sim.Forward(); err != nil {
		return err
	}
	e.capture(e.cur)
	copy(e.prev.v, e.cur.v)
	if e.t.prevFromObs != nil {
		e.t.prevFromObs(e.prev, obs, e.dt)
	}
	e.steps, e.done = 0, false
	return nil
}

func (e *simEnv) Clone() (env.Simulator, error) {
	if err := e.live(); err != nil {
		return nil, err
	}
	c, err := e.t.newSim()
	if err != nil {
		return nil, err
	}
	c.sim.CopyState(e.sim)
	if err := c.sim.Forward(); err != nil {
		c.Close()
		return nil, err
	}
	copy(c.cur.v, e.cur.v)
	copy(c.prev.v, e.prev.v)
	c.steps, c.done = e.steps, e.done
	return c, nil
}

// Rollout simulates the whole action sequence in one call into C.
func (e *simEnv) Rollout(actions []float32, horizon int, obs []float32, reward []float64) error {
	if err := e.live(); err != nil {
		return err
	}
	ad, od := e.t.act.Dim(), e.t.obsDim
	if horizon < 1 || len(actions) < horizon*ad || len(obs) < horizon*od || len(reward) < horizon {
		return fmt.Errorf("env: rollout of %d steps needs %d actions, %d observations and %d rewards", horizon, horizon*ad, horizon*od, horizon)
	}
	if err := env.CheckAction(env.Unbounded(horizon*ad), actions[:horizon*ad]); err != nil {
		return err
	}
	w := len(e.cur.v)
	if cap(e.rollCtrl) < horizon*ad {
		e.rollCtrl = make([]float64, horizon*ad)
	}
	if cap(e.rollRec) < horizon*w {
		e.rollRec = make([]float64, horizon*w)
	}
	ctrl, rec := e.rollCtrl[:horizon*ad], e.rollRec[:horizon*w]
	lo, hi := e.t.act.Low, e.t.act.High
	for i, a := range actions[:horizon*ad] {
		j := i % ad
		ctrl[i] = float64(min(max(a, lo[j]), hi[j]))
	}
	if err := e.sim.Rollout(ctrl, horizon, e.t.frameSkip, e.t.ids[:e.t.nbody], e.t.ids[e.t.nbody:], rec); err != nil {
		e.done = true
		return fmt.Errorf("%s rollout: %w", e.t.name, err)
	}
	act := append(e.act[:0], make([]float32, ad)...)
	prev := record{v: e.cur.v, nq: e.cur.nq, nv: e.cur.nv}
	for h := 0; h < horizon; h++ {
		cur := record{v: rec[h*w : (h+1)*w], nq: prev.nq, nv: prev.nv}
		for j := range act {
			act[j] = float32(ctrl[h*ad+j])
		}
		reward[h] = e.t.stepReward(prev, cur, act, e.dt)
		e.t.observe(obs[h*od:(h+1)*od], cur, prev, e.dt)
		prev = cur
	}
	if horizon >= 2 {
		copy(e.prev.v, rec[(horizon-2)*w:(horizon-1)*w])
	} else {
		copy(e.prev.v, e.cur.v)
	}
	copy(e.cur.v, rec[(horizon-1)*w:])
	e.steps += horizon
	return nil
}
