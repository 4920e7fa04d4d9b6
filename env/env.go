// Package env defines the environments of the library: the Gymnasium-style
// contract of an environment instance (Reset, Step), the Task that describes
// a problem for model-based RL (spaces, episode length, the known reward and
// termination functions in batched form, and the observation processing a
// dynamics model needs), and a registry of tasks by name.
//
// The tasks themselves live in sub-packages: env/classic holds pure-Go tasks
// (no cgo) and env/mujoco the MuJoCo tasks of the PETS suite. Importing a
// sub-package registers its tasks.
package env

import (
	"errors"
	"fmt"
	"math"
)

// Task describes a problem: what an agent observes and does, how long an
// episode lasts, and the functions model-based RL needs to plan and to
// train dynamics models. Its methods are safe for concurrent use.
//
// Batched functions take n transitions as row-major arrays: obs and next
// are n×ObsDim, act is n×ActDim, and n is len(dst). They do not allocate.
type Task interface {
	Name() string
	ObservationSpace() Box
	ActionSpace() Box
	// EpisodeSteps is the number of steps after which an episode is
	// truncated.
	EpisodeSteps() int

	// New returns a fresh environment instance for the task.
	New() (Env, error)

	// Reward sets dst[i] to the reward of transition i: the reward Step
	// returns for taking act[i] in obs[i] and arriving in next[i]. Actions
	// are clipped to the action space first, as Step clips them.
	Reward(dst []float32, obs, act, next []float32)
	// Terminated sets dst[i] to whether transition i ends the episode.
	Terminated(dst []bool, obs, act, next []float32)

	// InputDim is the width of the preprocessed observation a dynamics
	// model takes (the action is appended after it).
	InputDim() int
	// Preprocess writes the model features of each observation (n×ObsDim)
	// into dst (n×InputDim), for example an angle as its sine and cosine.
	Preprocess(dst, obs []float32)
	// AbsoluteTargets lists the observation dimensions a dynamics model
	// predicts as values rather than as changes from the current
	// observation. It is nil for most tasks.
	AbsoluteTargets() []int
}

// Env is one environment instance, with Gymnasium's contract. An Env is
// not safe for concurrent use.
type Env interface {
	Task() Task
	// Reset starts an episode from the task's initial-state distribution,
	// drawn with seed, and returns the first observation.
	Reset(seed uint64) ([]float32, error)
	// Step applies action for one step and returns the next observation,
	// the reward, whether the episode terminated (the task's end
	// condition) and whether it was truncated (the step limit). Actions
	// outside the action space are clipped to it; an action of the wrong
	// length, or holding NaN or ±Inf, is an error and leaves the state
	// unchanged. Stepping after the end of an episode is an error.
	Step(action []float32) (obs []float32, reward float64, terminated, truncated bool, err error)
	// Close releases the instance's resources; later calls return errors.
	Close() error
}

// State is a complete snapshot of a simulator: setting it back reproduces
// the simulation exactly. Its layout is the simulator's own.
type State []float64

// Simulator is an environment whose full state can be read, written and
// copied, so planners can roll out from the current state.
type Simulator interface {
	Env
	// State returns a snapshot of the current state, including the
	// episode's step count.
	State() State
	// Observation returns the observation of the current state.
	Observation() []float32
	// SetState restores a snapshot taken from the same task.
	SetState(State) error
	// Clone returns an independent simulator in the same state.
	Clone() (Simulator, error)
	// Rollout simulates actions (horizon×ActDim) from the current state,
	// writing each step's observation (horizon×ObsDim) and reward, and
	// leaves the simulator at the end of the rollout. It ignores the
	// episode's step limit. It stops early with an error at a failed step.
	Rollout(actions []float32, horizon int, obs []float32, reward []float64) error
}

// ObservationSetter is implemented by simulators whose observation
// determines their state completely (a cartpole's, but not a
// half-cheetah's, whose observation lacks its position).
type ObservationSetter interface {
	// SetObservation puts the simulator in the state whose observation
	// is obs.
	SetObservation(obs []float32) error
}

// PlanRewarder is implemented by tasks whose planner scores a model's
// rollouts otherwise than their reward scores a step. PETS plans the
// pusher with the predicted next state (its environment rewards the state
// before the step), and the reacher against the episode's goal as it was
// observed when planning began (not as the model predicts it).
type PlanRewarder interface {
	// PlanReward sets dst[i] to the planner's score of transition i of a
	// rollout that began at observation start.
	PlanReward(dst []float32, start, obs, act, next []float32)
}

// Coverer is implemented by tasks that know a box of observations covering
// the states their episodes visit: the default range of grid and uniform
// datasets.
type Coverer interface {
	CoverageBox() Box
}

// Variant is implemented by tasks that pose another task's problem — the
// same observation, actions, reward and episode — with other numerics (a
// finer timestep, say). Settings made for that task, such as presets and
// the paper's figures, are meant for its variants too (see Base).
type Variant interface {
	// Base names the task this one varies, or is "" if it varies none.
	Base() string
}

// Referencer is implemented by tasks with a known reference reward: the
// episode reward a strong controller earns, drawn beside learning curves.
type Referencer interface {
	// ReferenceReward is the reward and what earns it.
	ReferenceReward() (reward float64, source string)
}

// ObservationNamer is implemented by tasks that name their observation's
// dimensions, for tables and figures.
type ObservationNamer interface {
	ObservationNames() []string
}

// ObservationNames returns the task's names for its observation's
// dimensions, or obs[0], obs[1], … when it has none.
func ObservationNames(t Task) []string {
	if n, ok := t.(ObservationNamer); ok {
		return n.ObservationNames()
	}
	names := make([]string, t.ObservationSpace().Dim())
	for i := range names {
		names[i] = fmt.Sprintf("obs[%d]", i)
	}
	return names
}

// ErrClosed is returned by environments used after Close.
var ErrClosed = errors.New("env: environment is closed")

// ErrEpisodeOver is returned by Step after an episode has terminated or
// been truncated, until the next Reset.
var ErrEpisodeOver = errors.New("env: episode is over; call Reset")

// CheckAction validates an action for the space: its length and that every
// element is finite. It names the offending element.
func CheckAction(space Box, action []float32) error {
	if len(action) != space.Dim() {
		return fmt.Errorf("env: action has %d elements, want %d", len(action), space.Dim())
	}
	for i, a := range action {
		if math.IsNaN(float64(a)) || math.IsInf(float64(a), 0) {
			return fmt.Errorf("env: action element %d is %g", i, a)
		}
	}
	return nil
}
