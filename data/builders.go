package data

import (
	"context"
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/rng"
)

// Policy chooses an action for an observation, writing it into act.
// Cancelling ctx stops it with ctx's error.
type Policy func(ctx context.Context, act, obs []float32) error

// RunEpisode runs one episode of e from Reset(seed) with the policy,
// appending its transitions to buf (if not nil), and returns its return.
// onStep, if not nil, is called after every step with the steps taken and
// the return so far. Cancelling ctx stops it between steps (and the
// policy within one) with ctx's error.
func RunEpisode(ctx context.Context, e env.Env, policy Policy, seed uint64, buf *Buffer, onStep func(step int, ret float64)) (float64, error) {
	obs, err := e.Reset(seed)
	if err != nil {
		return 0, err
	}
	act := make([]float32, e.Task().ActionSpace().Dim())
	var ret float64
	for step := 1; ; step++ {
		if err := ctx.Err(); err != nil {
			return ret, err
		}
		if err := policy(ctx, act, obs); err != nil {
			if ctx.Err() != nil {
				return ret, ctx.Err()
			}
			return ret, fmt.Errorf("policy at step %d: %w", step, err)
		}
		next, r, term, trunc, err := e.Step(act)
		if err != nil {
			return ret, err
		}
		if buf != nil {
			buf.Add(obs, act, next, float32(r), term, trunc)
		}
		ret += r
		if onStep != nil {
			onStep(step, ret)
		}
		if term || trunc {
			return ret, nil
		}
		obs = next
	}
}

// RandomPolicy returns a policy of actions drawn uniformly from box.
func RandomPolicy(box env.Box, seed uint64) Policy {
	src := rng.New(seed)
	return func(_ context.Context, act, _ []float32) error {
		for i := range act {
			act[i] = box.Low[i] + (box.High[i]-box.Low[i])*src.Float32()
		}
		return nil
	}
}

// RandomEpisodes runs episodes of uniformly random actions on the task,
// episode i from seed+i.
func RandomEpisodes(task env.Task, episodes int, seed uint64) (*Buffer, error) {
	return RandomEpisodesContext(context.Background(), task, episodes, seed)
}

// RandomEpisodesContext is RandomEpisodes, stopped by cancelling ctx.
func RandomEpisodesContext(ctx context.Context, task env.Task, episodes int, seed uint64) (*Buffer, error) {
	e, err := task.New()
	if err != nil {
		return nil, err
	}
	defer e.Close()
	buf := NewBuffer(task.ObservationSpace().Dim(), task.ActionSpace().Dim())
	policy := RandomPolicy(task.ActionSpace(), seed)
	for i := 0; i < episodes; i++ {
		if _, err := RunEpisode(ctx, e, policy, seed+uint64(i), buf, nil); err != nil {
			return nil, fmt.Errorf("random episode %d: %w", i, err)
		}
	}
	return buf, nil
}

// sampler steps a simulator once from given observations.
type sampler struct {
	sim env.Simulator
	set env.ObservationSetter
	buf *Buffer
}

func newSampler(task env.Task, box env.Box) (*sampler, error) {
	if box.Dim() != task.ObservationSpace().Dim() {
		return nil, fmt.Errorf("data: box of %d dimensions for %d-dimensional %s observations", box.Dim(), task.ObservationSpace().Dim(), task.Name())
	}
	for i := range box.Low {
		if math.IsInf(float64(box.Low[i]), 0) || math.IsInf(float64(box.High[i]), 0) {
			return nil, fmt.Errorf("data: box dimension %d is unbounded", i)
		}
	}
	e, err := task.New()
	if err != nil {
		return nil, err
	}
	sim, ok := e.(env.Simulator)
	set, ok2 := e.(env.ObservationSetter)
	if !ok || !ok2 {
		e.Close()
		return nil, fmt.Errorf("data: %s cannot be put in a chosen state: its observation does not determine it", task.Name())
	}
	return &sampler{sim: sim, set: set, buf: NewBuffer(task.ObservationSpace().Dim(), task.ActionSpace().Dim())}, nil
}

// add steps from obs with act and records the transition as a one-step
// episode (truncated), so that no two samples are taken as consecutive.
func (s *sampler) add(obs, act []float32) error {
	if err := s.set.SetObservation(obs); err != nil {
		return err
	}
	// Record the observation of the state actually set, which may differ
	// from the one asked for (a pendulum's (cos, sin) off the circle).
	start := s.sim.Observation()
	next, r, term, _, err := s.sim.Step(act)
	if err != nil {
		return fmt.Errorf("data: stepping from %v with %v: %w", obs, act, err)
	}
	s.buf.Add(start, act, next, float32(r), term, true)
	return nil
}

// Progress, when not nil, is told how many of a dataset's total
// transitions a builder has made, every progressEvery of them.
type Progress func(done, total int)

const progressEvery = 1 << 14

// Uniform samples n transitions with observations drawn uniformly from box
// and actions uniformly from the task's action space, each stepped once on
// the simulator. The task's observation must determine its state.
// Cancelling ctx stops it with ctx's error.
func Uniform(ctx context.Context, task env.Task, box env.Box, n int, seed uint64, progress Progress) (*Buffer, error) {
	s, err := newSampler(task, box)
	if err != nil {
		return nil, err
	}
	defer s.sim.Close()
	src := rng.New(seed)
	ab := task.ActionSpace()
	obs := make([]float32, box.Dim())
	act := make([]float32, ab.Dim())
	for i := 0; i < n; i++ {
		if err := tick(ctx, i, n, progress); err != nil {
			return nil, err
		}
		src.FillUniform(obs, 0, 1)
		for j := range obs {
			obs[j] = box.Low[j] + (box.High[j]-box.Low[j])*obs[j]
		}
		for j := range act {
			act[j] = ab.Low[j] + (ab.High[j]-ab.Low[j])*src.Float32()
		}
		if err := s.add(obs, act); err != nil {
			return nil, err
		}
	}
	return s.buf, nil
}

// Grid steps the simulator once from every point of a grid of k values per
// dimension over box and the action space (evenly spaced, ends included;
// k = 1 takes the middle): k^(obs dim + action dim) transitions, in
// row-major order of the grid. Cancelling ctx stops it with ctx's error.
func Grid(ctx context.Context, task env.Task, box env.Box, k int, progress Progress) (*Buffer, error) {
	if k < 1 {
		return nil, fmt.Errorf("data: grid of %d points per dimension", k)
	}
	s, err := newSampler(task, box)
	if err != nil {
		return nil, err
	}
	defer s.sim.Close()
	ab := task.ActionSpace()
	lo := append(append([]float32(nil), box.Low...), ab.Low...)
	hi := append(append([]float32(nil), box.High...), ab.High...)
	dims := len(lo)
	total := 1
	for range dims {
		if total > 50_000_000/k {
			return nil, fmt.Errorf("data: a grid of %d^%d points is too large", k, dims)
		}
		total *= k
	}
	point := make([]float32, dims)
	idx := make([]int, dims)
	for n := 0; n < total; n++ {
		if err := tick(ctx, n, total, progress); err != nil {
			return nil, err
		}
		for j := range point {
			if k == 1 {
				point[j] = (lo[j] + hi[j]) / 2
			} else {
				point[j] = lo[j] + (hi[j]-lo[j])*float32(idx[j])/float32(k-1)
			}
		}
		if err := s.add(point[:box.Dim()], point[box.Dim():]); err != nil {
			return nil, err
		}
		for j := dims - 1; j >= 0; j-- {
			idx[j]++
			if idx[j] < k {
				break
			}
			idx[j] = 0
		}
	}
	return s.buf, nil
}

// tick reports progress and checks for cancellation every progressEvery
// transitions.
func tick(ctx context.Context, i, n int, progress Progress) error {
	if i%progressEvery != 0 {
		return nil
	}
	if progress != nil && i > 0 {
		progress(i, n)
	}
	return ctx.Err()
}
