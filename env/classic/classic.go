// Package classic holds pure-Go tasks: no cgo, fast enough for unit tests,
// and usable without MuJoCo. Importing it registers them:
//
//   - cartpole: continuous cart-pole balancing (the classic equations of
//     motion); the action scales a 10 N force, the reward is 1 per step
//     while the pole is up and the cart on the track.
//   - pendulum: torque-limited pendulum swing-up.
//   - pointmass: a 1-D point mass pushed towards x = 1.
package classic

import (
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/rng"
)

func init() {
	env.Register(CartPole)
	env.Register(Pendulum)
	env.Register(PointMass)
}

// system is the physics of a task in float64: its state, how it starts and
// moves, what is observed of it and the reward Step reports, computed from
// the state (the task's batched Reward computes the same from observations,
// independently, so tests can hold one against the other).
type system struct {
	stateDim int
	reset    func(src *rng.Source, s []float64)
	step     func(s []float64, a []float32)
	observe  func(dst []float32, s []float64)
	fromObs  func(s []float64, obs []float32)
	// reward of moving from state s by a to state next.
	reward   func(s []float64, a []float32, next []float64) float64
	terminal func(s []float64) bool
}

// task implements env.Task for a system.
type task struct {
	names    []string
	name     string
	obs, act env.Box
	coverage env.Box
	steps    int
	sys      system
	// rewardRow and terminalRow are the batched functions' rows, from
	// float32 observations.
	rewardRow   func(obs, act, next []float32) float32
	terminalRow func(obs, act, next []float32) bool
}

func (t *task) Name() string              { return t.name }
func (t *task) ObservationSpace() env.Box { return t.obs }
func (t *task) ActionSpace() env.Box      { return t.act }
func (t *task) EpisodeSteps() int         { return t.steps }
func (t *task) InputDim() int             { return t.obs.Dim() }
func (t *task) AbsoluteTargets() []int    { return nil }

// ObservationNames names the observation's dimensions.
func (t *task) ObservationNames() []string { return append([]string(nil), t.names...) }

// CoverageBox bounds the observations the task's episodes visit.
func (t *task) CoverageBox() env.Box { return t.coverage }

// Preprocess copies: the classic tasks' observations are model features
// already (the pendulum's angle is observed as its cosine and sine).
func (t *task) Preprocess(dst, obs []float32) { copy(dst, obs) }

func (t *task) Reward(dst []float32, obs, act, next []float32) {
	od, ad := t.obs.Dim(), t.act.Dim()
	for i := range dst {
		a := t.act.Clipped(act[i*ad : (i+1)*ad])
		dst[i] = t.rewardRow(obs[i*od:(i+1)*od], a, next[i*od:(i+1)*od])
	}
}

func (t *task) Terminated(dst []bool, obs, act, next []float32) {
	od, ad := t.obs.Dim(), t.act.Dim()
	for i := range dst {
		dst[i] = t.terminalRow != nil && t.terminalRow(obs[i*od:(i+1)*od], act[i*ad:(i+1)*ad], next[i*od:(i+1)*od])
	}
}

func (t *task) New() (env.Env, error) { return t.newSim(), nil }

func (t *task) newSim() *sim {
	return &sim{t: t, s: make([]float64, t.sys.stateDim), next: make([]float64, t.sys.stateDim), done: true}
}

// sim is an instance of a classic task.
type sim struct {
	t       *task
	s, next []float64
	steps   int
	done    bool
	closed  bool
	act     []float32
}

func (e *sim) Task() env.Task { return e.t }

func (e *sim) Reset(seed uint64) ([]float32, error) {
	if e.closed {
		return nil, env.ErrClosed
	}
	e.t.sys.reset(rng.New(seed), e.s)
	e.steps, e.done = 0, false
	return e.observation(), nil
}

// Observation returns the observation of the current state.
func (e *sim) Observation() []float32 { return e.observation() }

func (e *sim) observation() []float32 {
	o := make([]float32, e.t.obs.Dim())
	e.t.sys.observe(o, e.s)
	return o
}

func (e *sim) Step(action []float32) ([]float32, float64, bool, bool, error) {
	if e.closed {
		return nil, 0, false, false, env.ErrClosed
	}
	if e.done {
		return nil, 0, false, false, env.ErrEpisodeOver
	}
	r, err := e.advance(action)
	if err != nil {
		return nil, 0, false, false, err
	}
	e.steps++
	term := e.t.sys.terminal != nil && e.t.sys.terminal(e.s)
	trunc := e.steps >= e.t.steps
	e.done = term || trunc
	return e.observation(), r, term, trunc, nil
}

// advance moves the state by one step and returns the reward.
func (e *sim) advance(action []float32) (float64, error) {
	if err := env.CheckAction(e.t.act, action); err != nil {
		return 0, err
	}
	e.act = append(e.act[:0], action...)
	e.t.act.Clip(e.act)
	copy(e.next, e.s)
	e.t.sys.step(e.next, e.act)
	r := e.t.sys.reward(e.s, e.act, e.next)
	e.s, e.next = e.next, e.s
	return r, nil
}

func (e *sim) Close() error {
	e.closed = true
	return nil
}

// State is the physical state followed by the step count.
func (e *sim) State() env.State {
	st := make(env.State, len(e.s)+1)
	copy(st, e.s)
	st[len(e.s)] = float64(e.steps)
	return st
}

func (e *sim) SetState(st env.State) error {
	if e.closed {
		return env.ErrClosed
	}
	if len(st) != len(e.s)+1 {
		return fmt.Errorf("env: %s state has %d values, want %d", e.t.name, len(st), len(e.s)+1)
	}
	copy(e.s, st)
	e.steps = int(st[len(e.s)])
	e.done = e.steps >= e.t.steps || (e.t.sys.terminal != nil && e.t.sys.terminal(e.s))
	return nil
}

func (e *sim) SetObservation(obs []float32) error {
	if e.closed {
		return env.ErrClosed
	}
	if len(obs) != e.t.obs.Dim() {
		return fmt.Errorf("env: %s observation has %d values, want %d", e.t.name, len(obs), e.t.obs.Dim())
	}
	e.t.sys.fromObs(e.s, obs)
	e.steps, e.done = 0, false
	return nil
}

func (e *sim) Clone() (env.Simulator, error) {
	if e.closed {
		return nil, env.ErrClosed
	}
	c := e.t.newSim()
	copy(c.s, e.s)
	c.steps, c.done = e.steps, e.done
	return c, nil
}

func (e *sim) Rollout(actions []float32, horizon int, obs []float32, reward []float64) error {
	if e.closed {
		return env.ErrClosed
	}
	od, ad := e.t.obs.Dim(), e.t.act.Dim()
	if len(actions) < horizon*ad || len(obs) < horizon*od || len(reward) < horizon {
		return fmt.Errorf("env: rollout of %d steps needs %d actions, %d observations and %d rewards", horizon, horizon*ad, horizon*od, horizon)
	}
	for h := 0; h < horizon; h++ {
		r, err := e.advance(actions[h*ad : (h+1)*ad])
		if err != nil {
			return fmt.Errorf("rollout step %d: %w", h, err)
		}
		reward[h] = r
		e.t.sys.observe(obs[h*od:(h+1)*od], e.s)
	}
	return nil
}

// CartPole is continuous cart-pole balancing: observation
// [x, ẋ, θ, θ̇], action in [−1, 1] scaling a 10 N force on the cart, reward 1
// per step that ends with |x| ≤ 2.4 and |θ| ≤ 12°, else 0 and the episode
// terminates; 200 steps.
var CartPole env.Task = &task{
	names: []string{"x", "ẋ", "θ", "θ̇"},
	name:  "cartpole", obs: env.Unbounded(4), act: env.Uniform(1, -1, 1), steps: 200,
	coverage: env.Box{Low: []float32{-2.4, -2, -0.21, -3}, High: []float32{2.4, 2, 0.21, 3}},
	sys: system{
		stateDim: 4,
		reset: func(src *rng.Source, s []float64) {
			for i := range s {
				s[i] = src.Uniform(-0.05, 0.05)
			}
		},
		step:     cartPoleStep,
		observe:  func(dst []float32, s []float64) { toFloat32(dst, s) },
		fromObs:  func(s []float64, obs []float32) { toFloat64(s, obs) },
		terminal: func(s []float64) bool { return cartPoleDown(s[0], s[2]) },
		reward: func(_ []float64, _ []float32, next []float64) float64 {
			if cartPoleDown(next[0], next[2]) {
				return 0
			}
			return 1
		},
	},
	rewardRow: func(_, _, next []float32) float32 {
		if cartPoleDown(float64(next[0]), float64(next[2])) {
			return 0
		}
		return 1
	},
	terminalRow: func(_, _, next []float32) bool { return cartPoleDown(float64(next[0]), float64(next[2])) },
}

const (
	cpGravity   = 9.8
	cpMassCart  = 1.0
	cpMassPole  = 0.1
	cpHalfLen   = 0.5
	cpForce     = 10.0
	cpTau       = 0.02
	cpXLimit    = 2.4
	cpThetaLim  = 12 * math.Pi / 180
	cpTotalMass = cpMassCart + cpMassPole
	cpPoleML    = cpMassPole * cpHalfLen
)

func cartPoleDown(x, theta float64) bool {
	return x < -cpXLimit || x > cpXLimit || theta < -cpThetaLim || theta > cpThetaLim
}

// cartPoleStep integrates the classic cart-pole equations (Barto, Sutton and
// Anderson, 1983) with explicit Euler.
func cartPoleStep(s []float64, a []float32) {
	x, xd, th, thd := s[0], s[1], s[2], s[3]
	f := cpForce * float64(a[0])
	sin, cos := math.Sincos(th)
	tmp := (f + cpPoleML*thd*thd*sin) / cpTotalMass
	thacc := (cpGravity*sin - cos*tmp) / (cpHalfLen * (4.0/3.0 - cpMassPole*cos*cos/cpTotalMass))
	xacc := tmp - cpPoleML*thacc*cos/cpTotalMass
	s[0] = x + cpTau*xd
	s[1] = xd + cpTau*xacc
	s[2] = th + cpTau*thd
	s[3] = thd + cpTau*thacc
}

// Pendulum is torque-limited swing-up: state angle θ (0 upright) and
// velocity, observation [cos θ, sin θ, θ̇], torque in [−2, 2], reward
// −(θ² + 0.1·θ̇² + 0.001·u²) of the state before the step (θ wrapped to
// [−π, π)), velocity limited to ±8; 200 steps of 0.05 s.
var Pendulum env.Task = &task{
	names: []string{"cos θ", "sin θ", "θ̇"},
	name:  "pendulum", obs: env.Unbounded(3), act: env.Uniform(1, -2, 2), steps: 200,
	coverage: env.Box{Low: []float32{-1, -1, -8}, High: []float32{1, 1, 8}},
	sys: system{
		stateDim: 2,
		reset: func(src *rng.Source, s []float64) {
			s[0] = src.Uniform(-math.Pi, math.Pi)
			s[1] = src.Uniform(-1, 1)
		},
		step: func(s []float64, a []float32) {
			const g, m, l, dt = 10.0, 1.0, 1.0, 0.05
			thd := s[1] + (3*g/(2*l)*math.Sin(s[0])+3/(m*l*l)*float64(a[0]))*dt
			thd = math.Max(-8, math.Min(8, thd))
			s[0] += thd * dt
			s[1] = thd
		},
		observe: func(dst []float32, s []float64) {
			dst[0], dst[1], dst[2] = float32(math.Cos(s[0])), float32(math.Sin(s[0])), float32(s[1])
		},
		fromObs: func(s []float64, obs []float32) {
			s[0] = math.Atan2(float64(obs[1]), float64(obs[0]))
			s[1] = float64(obs[2])
		},
		reward: func(s []float64, a []float32, _ []float64) float64 {
			th := math.Remainder(s[0], 2*math.Pi)
			u := float64(a[0])
			return -(th*th + 0.1*s[1]*s[1] + 0.001*u*u)
		},
	},
	rewardRow: func(obs, act, _ []float32) float32 {
		th := math.Atan2(float64(obs[1]), float64(obs[0]))
		thd, u := float64(obs[2]), float64(act[0])
		return float32(-(th*th + 0.1*thd*thd + 0.001*u*u))
	},
}

// PointMass is a 1-D point mass: state [x, v], a force in [−1, 1] changes
// the velocity by a·0.1 per 0.1 s step (semi-implicit Euler); reward
// −(x′−1)² − 0.01·a² after each step; 50 steps from x ≈ 0 at rest. Random
// actions score about −80 per episode (the mass wanders about its start, a
// unit from the goal); driving to the goal and holding there scores about
// −8.
var PointMass env.Task = &task{
	names: []string{"x", "v"},
	name:  "pointmass", obs: env.Unbounded(2), act: env.Uniform(1, -1, 1), steps: 50,
	coverage: env.Box{Low: []float32{-0.5, -1.5}, High: []float32{1.5, 1.5}},
	sys: system{
		stateDim: 2,
		reset: func(src *rng.Source, s []float64) {
			s[0] = 0.05 * src.Normal()
			s[1] = 0
		},
		step: func(s []float64, a []float32) {
			const dt = 0.1
			s[1] += float64(a[0]) * dt
			s[0] += s[1] * dt
		},
		observe: func(dst []float32, s []float64) { toFloat32(dst, s) },
		fromObs: func(s []float64, obs []float32) { toFloat64(s, obs) },
		reward: func(_ []float64, a []float32, next []float64) float64 {
			d, u := next[0]-pointMassGoal, float64(a[0])
			return -(d*d + 0.01*u*u)
		},
	},
	rewardRow: func(_, act, next []float32) float32 {
		d, u := next[0]-pointMassGoal, act[0]
		return -(d*d + 0.01*u*u)
	},
}

const pointMassGoal = 1

func toFloat32(dst []float32, s []float64) {
	for i, v := range s {
		dst[i] = float32(v)
	}
}

func toFloat64(dst []float64, s []float32) {
	for i, v := range s {
		dst[i] = float64(v)
	}
}
