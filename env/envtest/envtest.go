// Package envtest checks that a task and its environments keep the
// contracts of package env, for the tests of task packages.
package envtest

import (
	"errors"
	"math"
	"testing"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/rng"
)

// Options tune Check.
type Options struct {
	// Steps bounds the steps of each checked episode (0: the task's
	// episode length).
	Steps int
	// RewardTol is the tolerance, relative to 1+|r|, between the reward
	// Step returns and the batched reward of the same transition
	// (0: 1e-5).
	RewardTol float64
}

// Check runs every contract check on task. The task's environments must
// implement env.Simulator.
func Check(t *testing.T, task env.Task, o Options) {
	t.Helper()
	if o.Steps == 0 || o.Steps > task.EpisodeSteps() {
		o.Steps = task.EpisodeSteps()
	}
	if o.RewardTol == 0 {
		o.RewardTol = 1e-5
	}
	t.Run("reward", func(t *testing.T) { checkReward(t, task, o) })
	t.Run("reproducible", func(t *testing.T) { checkReproducible(t, task, o) })
	t.Run("state", func(t *testing.T) { checkState(t, task, o) })
	t.Run("clone", func(t *testing.T) { checkClone(t, task, o) })
	t.Run("rollout", func(t *testing.T) { checkRollout(t, task, o) })
	t.Run("badinput", func(t *testing.T) { checkBadInput(t, task) })
	t.Run("truncation", func(t *testing.T) { checkTruncation(t, task) })
}

func newSim(t *testing.T, task env.Task) env.Simulator {
	t.Helper()
	e, err := task.New()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := e.(env.Simulator)
	if !ok {
		t.Fatalf("%s environments do not implement env.Simulator", task.Name())
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// actions draws a sequence of n actions, uniform over a box 20% wider than
// the action space, so that clipping is exercised.
func actions(task env.Task, n int, seed uint64) []float32 {
	b := task.ActionSpace()
	src := rng.New(seed)
	a := make([]float32, n*b.Dim())
	for i := range a {
		lo, hi := float64(b.Low[i%b.Dim()]), float64(b.High[i%b.Dim()])
		w := hi - lo
		a[i] = float32(src.Uniform(lo-0.1*w, hi+0.1*w))
	}
	return a
}

type step struct {
	obs             []float32
	reward          float64
	term, truncated bool
}

// run steps e through acts, stopping at the end of an episode.
func run(t *testing.T, e env.Env, acts []float32) []step {
	t.Helper()
	ad := e.Task().ActionSpace().Dim()
	var out []step
	for i := 0; i+ad <= len(acts); i += ad {
		o, r, term, trunc, err := e.Step(acts[i : i+ad])
		if err != nil {
			t.Fatalf("step %d: %v", i/ad, err)
		}
		out = append(out, step{o, r, term, trunc})
		if term || trunc {
			break
		}
	}
	return out
}

func same(t *testing.T, what string, a, b []step) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d steps vs %d", what, len(a), len(b))
	}
	for i := range a {
		if a[i].reward != b[i].reward || a[i].term != b[i].term || a[i].truncated != b[i].truncated {
			t.Fatalf("%s: step %d reward/flags differ: %+v vs %+v", what, i, a[i], b[i])
		}
		for j := range a[i].obs {
			if a[i].obs[j] != b[i].obs[j] {
				t.Fatalf("%s: step %d observation %d differs: %v vs %v", what, i, j, a[i].obs[j], b[i].obs[j])
			}
		}
	}
}

func checkReward(t *testing.T, task env.Task, o Options) {
	s := newSim(t, task)
	od, ad := task.ObservationSpace().Dim(), task.ActionSpace().Dim()
	for ep := uint64(0); ep < 3; ep++ {
		obs, err := s.Reset(100 + ep)
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) != od {
			t.Fatalf("Reset returned %d values, observation space has %d", len(obs), od)
		}
		acts := actions(task, o.Steps, 200+ep)
		in := make([]float32, task.InputDim())
		for i := 0; i < o.Steps; i++ {
			a := acts[i*ad : (i+1)*ad]
			next, r, term, trunc, err := s.Step(a)
			if err != nil {
				t.Fatalf("episode %d step %d: %v", ep, i, err)
			}
			got := make([]float32, 1)
			task.Reward(got, obs, a, next)
			if d := math.Abs(float64(got[0]) - r); d > o.RewardTol*(1+math.Abs(r)) || math.IsNaN(float64(got[0])) {
				t.Fatalf("episode %d step %d: Step reward %.9g, batched reward %.9g", ep, i, r, got[0])
			}
			tb := make([]bool, 1)
			task.Terminated(tb, obs, a, next)
			if tb[0] != term {
				t.Fatalf("episode %d step %d: Step terminated=%v, batched %v", ep, i, term, tb[0])
			}
			task.Preprocess(in, next)
			for j, v := range in {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("preprocessed feature %d is %v", j, v)
				}
			}
			obs = next
			if term || trunc {
				break
			}
		}
	}
	// Batched over many rows at once (more than a block of the batched
	// kernels), equal to row by row, rewards and features both.
	const n = 70
	obs := make([]float32, n*od)
	next := make([]float32, n*od)
	src := rng.New(5)
	src.FillNormal(obs, 0, 1)
	src.FillNormal(next, 0, 1)
	acts := actions(task, n, 6)
	all := make([]float32, n)
	task.Reward(all, obs, acts, next)
	for i := 0; i < n; i++ {
		one := make([]float32, 1)
		task.Reward(one, obs[i*od:(i+1)*od], acts[i*ad:(i+1)*ad], next[i*od:(i+1)*od])
		if one[0] != all[i] {
			t.Fatalf("batched reward row %d = %v, alone %v", i, all[i], one[0])
		}
	}
	w := task.InputDim()
	feats := make([]float32, n*w)
	task.Preprocess(feats, next)
	for i := 0; i < n; i++ {
		one := make([]float32, w)
		task.Preprocess(one, next[i*od:(i+1)*od])
		for j := range one {
			if one[j] != feats[i*w+j] {
				t.Fatalf("batched features of row %d = %v, alone %v", i, feats[i*w:(i+1)*w], one)
			}
		}
	}
}

func checkReproducible(t *testing.T, task env.Task, o Options) {
	a, b := newSim(t, task), newSim(t, task)
	acts := actions(task, o.Steps, 9)
	oa, _ := a.Reset(42)
	ob, _ := b.Reset(42)
	same(t, "reset", []step{{obs: oa}}, []step{{obs: ob}})
	same(t, "episodes from one seed", run(t, a, acts), run(t, b, acts))
	oc, _ := b.Reset(43)
	differ := false
	for i := range oa {
		differ = differ || oa[i] != oc[i]
	}
	if !differ {
		t.Fatal("seeds 42 and 43 give the same initial observation")
	}
}

func checkState(t *testing.T, task env.Task, o Options) {
	s := newSim(t, task)
	ad := task.ActionSpace().Dim()
	k := min(10, o.Steps/2)
	acts := actions(task, o.Steps, 11)
	s.Reset(7)
	run(t, s, acts[:k*ad])
	st := s.State()
	obs := s.Observation()
	ref := run(t, s, acts[k*ad:])
	if err := s.SetState(st); err != nil {
		t.Fatal(err)
	}
	same(t, "observation after SetState", []step{{obs: obs}}, []step{{obs: s.Observation()}})
	same(t, "replay after SetState", ref, run(t, s, acts[k*ad:]))
	if err := s.SetState(st[:len(st)-1]); err == nil {
		t.Fatal("SetState accepted a state one value short")
	}
}

func checkClone(t *testing.T, task env.Task, o Options) {
	s := newSim(t, task)
	ad := task.ActionSpace().Dim()
	k := min(10, o.Steps/2)
	acts := actions(task, o.Steps, 13)
	other := actions(task, o.Steps, 14)
	s.Reset(8)
	run(t, s, acts[:k*ad])
	st := s.State()
	c, err := s.Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The clone, driven elsewhere, must not disturb the original.
	run(t, c, other[k*ad:])
	ref := run(t, s, acts[k*ad:])
	c2, err := c.Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.SetState(st); err != nil {
		t.Fatal(err)
	}
	same(t, "clone replay", ref, run(t, c2, acts[k*ad:]))
}

func checkRollout(t *testing.T, task env.Task, o Options) {
	s := newSim(t, task)
	od, ad := task.ObservationSpace().Dim(), task.ActionSpace().Dim()
	h := min(25, o.Steps-1)
	acts := actions(task, h, 15)
	s.Reset(9)
	run(t, s, actions(task, 3, 16))
	st := s.State()
	ref := run(t, s, acts)
	if err := s.SetState(st); err != nil {
		t.Fatal(err)
	}
	obs := make([]float32, h*od)
	rew := make([]float64, h)
	if err := s.Rollout(acts, len(ref), obs, rew); err != nil {
		t.Fatal(err)
	}
	got := make([]step, len(ref))
	for i := range got {
		got[i] = step{obs: obs[i*od : (i+1)*od], reward: rew[i], term: ref[i].term, truncated: ref[i].truncated}
	}
	same(t, "Rollout against Step", ref, got)
	if err := s.Rollout(acts[:ad], 2, obs, rew); err == nil {
		t.Fatal("Rollout accepted too few actions")
	}
}

func checkBadInput(t *testing.T, task env.Task) {
	s := newSim(t, task)
	ad := task.ActionSpace().Dim()
	if _, _, _, _, err := s.Step(make([]float32, ad)); !errors.Is(err, env.ErrEpisodeOver) {
		t.Fatalf("Step before Reset: %v, want ErrEpisodeOver", err)
	}
	s.Reset(1)
	acts := actions(task, 2, 17)
	st := s.State()
	ref := run(t, s, acts[:ad])
	s.SetState(st)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		a := append([]float32(nil), acts[:ad]...)
		a[ad-1] = bad
		if _, _, _, _, err := s.Step(a); err == nil {
			t.Fatalf("action holding %v accepted", bad)
		}
	}
	if _, _, _, _, err := s.Step(make([]float32, ad+1)); err == nil {
		t.Fatal("action of the wrong length accepted")
	}
	// Rejected actions leave the state as it was.
	same(t, "step after rejected actions", ref, run(t, s, acts[:ad]))
	// Out-of-range actions act as their clipped values.
	b := task.ActionSpace()
	big, clipped := make([]float32, ad), make([]float32, ad)
	for i := range big {
		big[i] = b.High[i] + 100
		clipped[i] = b.High[i]
	}
	s.SetState(st)
	r1 := run(t, s, big)
	s.SetState(st)
	r2 := run(t, s, clipped)
	same(t, "clipping", r1, r2)
	s.Close()
	if _, _, _, _, err := s.Step(acts[:ad]); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("Step after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Reset(1); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("Reset after Close: %v, want ErrClosed", err)
	}
}

func checkTruncation(t *testing.T, task env.Task) {
	s := newSim(t, task)
	ad := task.ActionSpace().Dim()
	s.Reset(3)
	st := s.State()
	// Jump to the step before the limit by stepping a clone-free path:
	// the episode must be truncated exactly at EpisodeSteps.
	zero := make([]float32, ad)
	n := 0
	for {
		_, _, term, trunc, err := s.Step(zero)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if term {
			// Terminating tasks are checked for truncation only when
			// the zero action keeps them alive.
			return
		}
		if trunc {
			break
		}
	}
	if n != task.EpisodeSteps() {
		t.Fatalf("truncated after %d steps, want %d", n, task.EpisodeSteps())
	}
	if _, _, _, _, err := s.Step(zero); !errors.Is(err, env.ErrEpisodeOver) {
		t.Fatalf("Step after truncation: %v, want ErrEpisodeOver", err)
	}
	if err := s.SetState(st); err != nil {
		t.Fatal(err)
	}
}
