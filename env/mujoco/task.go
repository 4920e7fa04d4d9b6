package mujoco

import (
	"fmt"
	"sync"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/rng"
)

// spec defines a MuJoCo task. Its functions see simulator records: qpos,
// qvel, then the world positions of the listed bodies and sites, as laid
// out by layout.
type spec struct {
	name      string
	base      string // the task this one varies (env.Variant), if any
	xml       string
	frameSkip int
	steps     int
	obsDim    int
	act       env.Box // must equal the model's control range; a test checks
	bodies    []string
	sites     []string

	// reset draws the initial state: qpos starts at the model's reference
	// positions and qvel at zero.
	reset func(src *rng.Source, qpos, qvel []float64)
	// observe writes the observation after a step from cur, the record
	// after it, and prev, the record before it.
	observe func(dst []float32, cur, prev record, dt float64)
	// stepReward is the reward Step reports, computed from simulator
	// quantities; rewardRow computes it from observations for planning.
	stepReward func(prev, cur record, act []float32, dt float64) float64
	rewardRow  func(obs, act, next []float32) float32
	// rewards, for tasks whose reward vectorises across rows, is used in
	// place of rewardRow: it scores all the rows at once, clipping the
	// actions itself.
	rewards func(dst, obs, act, next []float32)
	// planRow is PETS's planning score of a transition of a rollout that
	// began at start, where it is not rewardRow (see env.PlanRewarder).
	planRow func(start, obs, act, next []float32) float32

	inputDim   int
	preprocess func(dst, obs []float32) // all rows at once

	// reference is the reward of a strong controller and what earns it;
	// zero where none is known.
	reference       float64
	referenceSource string
	absolute        []int
	// fromObs sets the state whose observation is obs, for tasks whose
	// observation determines their state; nil otherwise. prevFromObs, if
	// set, then adjusts the record of the step before it, for
	// observations that difference two steps.
	fromObs     func(qpos, qvel []float64, obs []float32)
	prevFromObs func(prev record, obs []float32, dt float64)
	// coverage bounds the observations episodes visit (for tasks with
	// fromObs).
	coverage env.Box
	names    []string // of the observation's dimensions, if known
}

// record is one step's simulator record.
type record struct {
	v      []float64
	nq, nv int
}

func (r record) qpos() []float64 { return r.v[:r.nq] }
func (r record) qvel() []float64 { return r.v[r.nq : r.nq+r.nv] }

// pos returns the position of the i-th listed body, or of the i-th site
// after the bodies (sites are numbered after bodies).
func (r record) pos(i int) []float64 { return r.v[r.nq+r.nv+3*i : r.nq+r.nv+3*i+3] }

// task implements env.Task for a spec; the model is loaded on first use
// and shared by all the task's environments.
type task struct {
	spec
	once   sync.Once
	model  *Model
	ids    []int32 // body then site ids
	nbody  int
	loadEr error
}

func (t *task) load() (*Model, error) {
	t.once.Do(func() {
		m, err := LoadXML(t.xml)
		if err != nil {
			t.loadEr = fmt.Errorf("task %s: %w", t.name, err)
			return
		}
		for _, b := range t.bodies {
			id, err := m.BodyID(b)
			if err != nil {
				t.loadEr = err
				return
			}
			t.ids = append(t.ids, int32(id))
		}
		t.nbody = len(t.bodies)
		for _, s := range t.sites {
			id, err := m.SiteID(s)
			if err != nil {
				t.loadEr = err
				return
			}
			t.ids = append(t.ids, int32(id))
		}
		t.model = m
	})
	return t.model, t.loadEr
}

func (t *task) Name() string              { return t.name }
func (t *task) Base() string              { return t.base }
func (t *task) ObservationSpace() env.Box { return env.Unbounded(t.obsDim) }
func (t *task) ActionSpace() env.Box      { return t.act }
func (t *task) EpisodeSteps() int         { return t.steps }
func (t *task) InputDim() int             { return t.inputDim }

// ObservationNames names the observation's dimensions.
func (t *task) ObservationNames() []string {
	if t.names != nil {
		return append([]string(nil), t.names...)
	}
	n := make([]string, t.obsDim)
	for i := range n {
		n[i] = fmt.Sprintf("obs[%d]", i)
	}
	return n
}

// CoverageBox bounds the observations the task's episodes visit; it is
// empty for tasks that cannot be put in a chosen state.
func (t *task) CoverageBox() env.Box   { return t.coverage }
func (t *task) AbsoluteTargets() []int { return append([]int(nil), t.absolute...) }

func (t *task) Preprocess(dst, obs []float32) { t.preprocess(dst, obs) }

func (t *task) Reward(dst []float32, obs, act, next []float32) {
	if t.rewards != nil {
		t.rewards(dst, obs, act, next)
		return
	}
	od, ad := t.obsDim, t.act.Dim()
	for i := range dst {
		a := t.act.Clipped(act[i*ad : (i+1)*ad])
		dst[i] = t.rewardRow(obs[i*od:(i+1)*od], a, next[i*od:(i+1)*od])
	}
}

// PlanReward scores rollout transitions as PETS's planner does: see
// env.PlanRewarder. For tasks without a planning cost of their own it is
// Reward.
func (t *task) PlanReward(dst []float32, start, obs, act, next []float32) {
	if t.planRow == nil {
		t.Reward(dst, obs, act, next)
		return
	}
	od, ad := t.obsDim, t.act.Dim()
	for i := range dst {
		a := t.act.Clipped(act[i*ad : (i+1)*ad])
		dst[i] = t.planRow(start, obs[i*od:(i+1)*od], a, next[i*od:(i+1)*od])
	}
}

// Terminated is always false: the PETS tasks only end by truncation.
func (t *task) Terminated(dst []bool, _, _, _ []float32) { clear(dst) }

func (t *task) New() (env.Env, error) {
	s, err := t.newSim()
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (t *task) newSim() (*simEnv, error) {
	m, err := t.load()
	if err != nil {
		return nil, err
	}
	s, err := m.NewSim()
	if err != nil {
		return nil, err
	}
	w := s.RecordWidth(t.nbody, len(t.ids)-t.nbody)
	e := &simEnv{
		t: t, sim: s, done: true,
		cur:  record{v: make([]float64, w), nq: m.NQ, nv: m.NV},
		prev: record{v: make([]float64, w), nq: m.NQ, nv: m.NV},
		ctrl: make([]float64, m.NU),
		dt:   m.Timestep() * float64(t.frameSkip),
	}
	return e, nil
}

// MJCF is the model MuJoCo simulates for the task, as MJCF text.
func (t *task) MJCF() string { return t.xml }

// ReferenceReward is the episode reward a strong controller earns on the
// task, where one is known; see env.Referencer.
func (t *task) ReferenceReward() (float64, string) { return t.reference, t.referenceSource }
