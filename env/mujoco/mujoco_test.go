package mujoco

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/envtest"
	"github.com/mismatch-rl/mismatch/rng"
)

var allTasks = []env.Task{CartpoleSwingup, HalfCheetah, HalfCheetahFine, Reacher, Pusher}

// TestMain runs the tests in a scratch directory and fails if MuJoCo wrote
// a log file there.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mujoco-test")
	if err != nil {
		panic(err)
	}
	wd, _ := os.Getwd()
	os.Chdir(dir)
	code := m.Run()
	if _, err := os.Stat(filepath.Join(dir, "MUJOCO_LOG.TXT")); err == nil {
		println("MuJoCo wrote MUJOCO_LOG.TXT")
		code = 1
	}
	os.Chdir(wd)
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestContracts(t *testing.T) {
	for _, task := range allTasks {
		t.Run(task.Name(), func(t *testing.T) {
			envtest.Check(t, task, envtest.Options{Steps: 120})
		})
	}
}

func TestVersion(t *testing.T) {
	if v := Version(); v < 220 || v >= 300 {
		t.Fatalf("MuJoCo version %d, want 2.2 or later 2.x", v)
	}
}

func taskModel(t testing.TB, tk env.Task) *Model {
	t.Helper()
	m, err := tk.(*task).load()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModelsMatchPublishedParameters(t *testing.T) {
	// Total masses of PETS's assets (dmbrl/env/assets, as MuJoCo 2.2
	// compiles them), to their two decimals.
	for _, c := range []struct {
		task env.Task
		kg   float64
	}{{CartpoleSwingup, 15.49}, {HalfCheetah, 14.0}, {Reacher, 46.37}, {Pusher, 13.67}} {
		if m := taskModel(t, c.task).TotalMass(); math.Abs(m-c.kg) > 0.005 {
			t.Errorf("%s: total mass %.4f kg, PETS's is %.2f", c.task.Name(), m, c.kg)
		}
	}
	cp := taskModel(t, CartpoleSwingup)
	if cp.Timestep() != 0.02 {
		t.Errorf("cartpole timestep %g, want 0.02", cp.Timestep())
	}
	hc := taskModel(t, HalfCheetah)
	if hc.NQ != 9 || hc.NV != 9 || hc.NU != 6 {
		t.Errorf("half-cheetah has nq=%d nv=%d nu=%d, want 9 9 6", hc.NQ, hc.NV, hc.NU)
	}
	for _, task := range allTasks {
		m := taskModel(t, task)
		lo, hi := m.CtrlRange()
		b := task.ActionSpace()
		for i := range lo {
			if float32(lo[i]) != b.Low[i] || float32(hi[i]) != b.High[i] {
				t.Errorf("%s actuator %d range [%g, %g], action space [%g, %g]", task.Name(), i, lo[i], hi[i], b.Low[i], b.High[i])
			}
		}
	}
}

func newEnv(t testing.TB, tk env.Task) *simEnv {
	t.Helper()
	s, err := tk.(*task).newSim()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCartpoleHangingStaysAtRest(t *testing.T) {
	e := newEnv(t, CartpoleSwingup)
	e.Reset(0)
	if err := e.SetObservation([]float32{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		obs, r, _, _, err := e.Step([]float32{0})
		if err != nil {
			t.Fatal(err)
		}
		// The pole's capsule ends 1 mm off its axis (as in PETS's model),
		// so its rest angle is 1.7 mrad off vertical: released at 0 it swings
		// about that angle with at most twice the offset, at a few mrad/s.
		bound := []float64{2e-3, 4e-3, 1e-2, 2e-2}
		for j, v := range obs {
			if math.Abs(float64(v)) > bound[j] {
				t.Fatalf("step %d: observation %d moved to %g (bound %g)", i, j, v, bound[j])
			}
		}
		// The tip hangs 1.2 below the target: exp(−1.2²/0.6²) = exp(−4).
		if math.Abs(r-math.Exp(-4)) > 1e-5 {
			t.Fatalf("reward at rest %g, want exp(−4)", r)
		}
	}
}

func TestCartRespectsRail(t *testing.T) {
	for _, push := range []float32{3, -3} {
		e := newEnv(t, CartpoleSwingup)
		e.Reset(1)
		maxX := 0.0
		for i := 0; i < 200; i++ {
			obs, _, _, _, err := e.Step([]float32{push})
			if err != nil {
				t.Fatal(err)
			}
			maxX = math.Max(maxX, math.Abs(float64(obs[0])))
		}
		// The limit is a soft constraint (MuJoCo's default stiffness, as in
		// PETS's model): full force presses the cart 0.13 past it.
		if maxX > 2.65 || maxX < 2.4 {
			t.Fatalf("pushing %g: cart reached |x| = %.3f, want the rail's end at 2.5", push, maxX)
		}
	}
}

func TestHalfCheetahStaysOnFloor(t *testing.T) {
	e := newEnv(t, HalfCheetah)
	e.Reset(2)
	torso, err := e.sim.Model.BodyID("torso")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		if _, _, _, _, err := e.Step(make([]float32, 6)); err != nil {
			t.Fatal(err)
		}
		z := e.sim.BodyPos(torso)[2]
		if z < 0.05 || z > 1 {
			t.Fatalf("step %d: undriven torso at height %.3f", i, z)
		}
	}
	// At rest, it has settled: no forward velocity to speak of.
	if v := e.sim.QVel()[0]; math.Abs(v) > 0.05 {
		t.Fatalf("undriven cheetah drifts at %.3f m/s", v)
	}
}

// TestHalfCheetahFine: the fine variant is the half-cheetah at half the
// timestep and twice the substeps — the same model otherwise, the same
// 0.05 s a step — and it follows the dynamics more closely: from five
// starts under the same random controls, its first 10 steps stay nearer
// to a run at 1/8 of the timestep than the half-cheetah's do (measured:
// about half as far; wanted: under three quarters).
func TestHalfCheetahFine(t *testing.T) {
	hc, fine := taskModel(t, HalfCheetah), taskModel(t, HalfCheetahFine)
	if hc.Timestep() != 0.01 || fine.Timestep() != 0.005 {
		t.Fatalf("timesteps %g and %g, want 0.01 and 0.005", hc.Timestep(), fine.Timestep())
	}
	if fine.NQ != hc.NQ || fine.NV != hc.NV || fine.NU != hc.NU {
		t.Fatalf("fine variant has nq=%d nv=%d nu=%d", fine.NQ, fine.NV, fine.NU)
	}
	if g, err := env.Lookup("halfcheetah-fine"); err != nil || g != HalfCheetahFine {
		t.Fatalf("halfcheetah-fine looks up as %v, %v", g, err)
	}
	// A variant of the half-cheetah, so it takes its settings; the other
	// tasks, and names not registered, are their own base.
	for name, want := range map[string]string{"halfcheetah-fine": "halfcheetah", "halfcheetah": "halfcheetah", "pusher": "pusher", "no-such-task": "no-such-task"} {
		if got := env.Base(name); got != want {
			t.Errorf("env.Base(%q) = %q, want %q", name, got, want)
		}
	}
	finest := &task{spec: refined(halfcheetahSpec, "halfcheetah-finest", 8)}
	if m := taskModel(t, finest); m.Timestep() != 0.00125 || finest.frameSkip != 40 {
		t.Fatalf("the 1/8-timestep run: timestep %g, %d substeps", m.Timestep(), finest.frameSkip)
	}
	ref := newEnv(t, finest)
	var errStd, errFine float64
	for seed := uint64(1); seed <= 5; seed++ {
		a, b := newEnv(t, HalfCheetah), newEnv(t, HalfCheetahFine)
		for _, e := range []*simEnv{a, b, ref} {
			e.Reset(seed)
		}
		src := rng.New(seed)
		act := make([]float32, 6)
		for i := 0; i < 10; i++ {
			for j := range act {
				act[j] = float32(src.Uniform(-1, 1))
			}
			var obs [3][]float32
			for k, e := range []*simEnv{a, b, ref} {
				o, _, _, _, err := e.Step(act)
				if err != nil {
					t.Fatal(err)
				}
				obs[k] = o
			}
			for j := range obs[2] {
				errStd += math.Pow(float64(obs[0][j]-obs[2][j]), 2)
				errFine += math.Pow(float64(obs[1][j]-obs[2][j]), 2)
			}
		}
	}
	errStd, errFine = math.Sqrt(errStd), math.Sqrt(errFine)
	t.Logf("distance from the 1/8-timestep run: half-cheetah %.3f, fine %.3f", errStd, errFine)
	if errFine == 0 || errFine > 0.75*errStd {
		t.Fatalf("the fine variant's steps are %.3f from the 1/8-timestep run's, the half-cheetah's %.3f", errFine, errStd)
	}
}

func TestActionBounds(t *testing.T) {
	for _, task := range allTasks {
		e := newEnv(t, task)
		e.Reset(3)
		b := task.ActionSpace()
		big := make([]float32, b.Dim())
		for i := range big {
			big[i] = 1e6
		}
		if _, _, _, _, err := e.Step(big); err != nil {
			t.Fatal(err)
		}
		for i, c := range e.ctrl {
			if float32(c) != b.High[i] {
				t.Fatalf("%s: control %d is %g after clipping, want %g", task.Name(), i, c, b.High[i])
			}
		}
	}
}

func TestMalformedModel(t *testing.T) {
	for _, xml := range []string{
		"<mujoco><worldbody><bogus/></worldbody></mujoco>",
		"<mujoco><worldbody><body><joint type='hinge'/></body>",
		"",
	} {
		_, err := LoadXML(xml)
		var me *Error
		if !errors.As(err, &me) || me.Msg == "" {
			t.Fatalf("LoadXML(%q): %v, want a MuJoCo error with its message", xml, err)
		}
		t.Logf("%q: %v", xml, err)
	}
	_, err := LoadXML("<mujoco><worldbody><bogus/></worldbody></mujoco>")
	if !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("error %q does not name the bad element", err)
	}
	if _, err := LoadFile("/nonexistent/model.xml"); err == nil {
		t.Fatal("loading a missing file succeeded")
	}
}

// A stack that suffices to compile the half-cheetah but not for its
// contacts makes MuJoCo raise an error mid-step, once the cheetah lands: it
// must come back as a Go error, and the simulation stay usable.
func TestMuJoCoErrorDuringStep(t *testing.T) {
	xml := strings.Replace(halfcheetahXML, `nstack="20000"`, `nstack="200"`, 1)
	m, err := LoadXML(xml)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSim()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 100 && err == nil; i++ {
		err = s.Step(make([]float64, 6), 5, false)
	}
	var me *Error
	if !errors.As(err, &me) || !strings.Contains(me.Msg, "Stack") {
		t.Fatalf("stepping with a tiny stack: %v, want MuJoCo's stack error", err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(make([]float64, 6), 5, false); err != nil {
		t.Fatalf("a step after the error and a reset: %v", err)
	}
}

func TestUnstableStepIsAnError(t *testing.T) {
	e := newEnv(t, CartpoleSwingup)
	e.Reset(0)
	e.sim.QVel()[1] = math.NaN()
	_, _, _, _, err := e.Step([]float32{0})
	var ue *UnstableError
	if !errors.As(err, &ue) {
		t.Fatalf("step from a NaN velocity: %v, want an UnstableError", err)
	}
	if _, _, _, _, err := e.Step([]float32{0}); !errors.Is(err, env.ErrEpisodeOver) {
		t.Fatalf("step after an unstable step: %v, want ErrEpisodeOver", err)
	}
	if _, err := e.Reset(1); err != nil {
		t.Fatalf("Reset after an unstable step: %v", err)
	}
}

func TestDroppedSimsAreFreed(t *testing.T) {
	m := taskModel(t, HalfCheetah)
	before := m.h.sims
	for i := 0; i < 50; i++ {
		if _, err := m.NewSim(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		m.h.mu.Lock()
		n := m.h.sims
		m.h.mu.Unlock()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 50 dropped simulations still hold their data", n-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Close is deterministic, idempotent, and blocks closing the model.
	own, _ := LoadXML(cartpoleXML)
	s, _ := own.NewSim()
	if err := own.Close(); err == nil {
		t.Fatal("closed a model with an open simulation")
	}
	s.Close()
	s.Close()
	if err := s.Step([]float64{0}, 1, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("Step after Close: %v", err)
	}
	if err := own.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := own.NewSim(); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewSim on a closed model: %v", err)
	}
}

func TestSetObservationOnlyWhereDefined(t *testing.T) {
	p := newEnv(t, Pusher)
	if err := p.SetObservation(make([]float32, 20)); err == nil {
		t.Fatal("the pusher accepted an observation as a state (it lacks the object's velocity)")
	}
	// Half-cheetah: an observation taken mid-episode, set in a fresh
	// simulator, is observed again and the same actions lead to the same
	// observations and rewards (the forward position does not matter).
	a, b := newEnv(t, HalfCheetah), newEnv(t, HalfCheetah)
	a.Reset(3)
	src := rng.New(8)
	act := make([]float32, 6)
	step := func() {
		for i := range act {
			act[i] = float32(src.Uniform(-1, 1))
		}
	}
	for i := 0; i < 30; i++ {
		step()
		if _, _, _, _, err := a.Step(act); err != nil {
			t.Fatal(err)
		}
	}
	mid := append([]float32(nil), a.observation()...)
	if err := b.SetObservation(mid); err != nil {
		t.Fatal(err)
	}
	if got := b.observation(); !slices.Equal(got, mid) {
		t.Fatalf("half-cheetah observed %v after SetObservation(%v)", got, mid)
	}
	for i := 0; i < 20; i++ {
		step()
		oa, ra, _, _, _ := a.Step(act)
		ob, rb, _, _, _ := b.Step(act)
		for k := range oa {
			if math.Abs(float64(oa[k]-ob[k])) > 1e-4*(1+math.Abs(float64(oa[k]))) {
				t.Fatalf("step %d: observation %d %g from the episode, %g from the set state", i, k, oa[k], ob[k])
			}
		}
		if math.Abs(ra-rb) > 1e-4*(1+math.Abs(ra)) {
			t.Fatalf("step %d: reward %g from the episode, %g from the set state", i, ra, rb)
		}
	}
	r := newEnv(t, Reacher)
	obs := make([]float32, 17)
	for i := range obs {
		obs[i] = 0.1 * float32(i%5)
	}
	obs[3] = -0.3 // elbow within its range
	if err := r.SetObservation(obs); err != nil {
		t.Fatal(err)
	}
	got := r.observation()
	for i := range obs {
		if got[i] != obs[i] {
			t.Fatalf("observation %d is %g after SetObservation(%g)", i, got[i], obs[i])
		}
	}
}

// TestPusherObservesCentresOfMass: the pusher's tip and object are the
// centres of mass of their bodies' subtrees (PETS's get_body_com), and
// the goal stays where pusherGoal says, through an episode of random
// torques.
func TestPusherObservesCentresOfMass(t *testing.T) {
	e := newEnv(t, Pusher)
	m := e.sim.Model
	tipBody, err := m.BodyID("tips_arm")
	if err != nil {
		t.Fatal(err)
	}
	objBody, _ := m.BodyID("object")
	goalBody, _ := m.BodyID("goal")
	if _, err := e.Reset(3); err != nil {
		t.Fatal(err)
	}
	src := rng.New(5)
	act := make([]float32, 7)
	for step := 0; step < 150; step++ {
		for i := range act {
			act[i] = float32(src.Uniform(-2, 2))
		}
		obs, _, _, _, err := e.Step(act)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.Forward(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			body int
			got  []float32
		}{{"tip", tipBody, obs[14:17]}, {"object", objBody, obs[17:20]}} {
			com, _ := e.sim.SubtreeCOM(c.body)
			for k := range 3 {
				if math.Abs(float64(c.got[k])-com[k]) > 1e-6 {
					t.Fatalf("step %d: %s %v, its subtree's centre of mass %v", step, c.name, c.got, com)
				}
			}
		}
		goal, _ := e.sim.SubtreeCOM(goalBody)
		for k := range 3 {
			if math.Abs(goal[k]-pusherGoal[k]) > 1e-9 {
				t.Fatalf("step %d: goal at %v, want %v", step, goal, pusherGoal)
			}
		}
	}
}

// TestPlanRewardIsPETSsCost: the planner scores the pusher's transitions
// by the state they arrive in (the reward the environment then gives for
// the next step, taken with the same torques) and the reacher's against
// the goal observed at the start of the rollout.
func TestPlanRewardIsPETSsCost(t *testing.T) {
	src := rng.New(11)
	for _, tk := range []env.Task{Pusher, Reacher} {
		e := newEnv(t, tk)
		obs, err := e.Reset(4)
		if err != nil {
			t.Fatal(err)
		}
		start := append([]float32(nil), obs...)
		ad := tk.ActionSpace().Dim()
		act := make([]float32, ad)
		for step := 0; step < 40; step++ {
			lo, hi := tk.ActionSpace().Low, tk.ActionSpace().High
			for i := range act {
				act[i] = float32(src.Uniform(float64(lo[i]), float64(hi[i])))
			}
			next, _, _, _, err := e.Step(act)
			if err != nil {
				t.Fatal(err)
			}
			next = append([]float32(nil), next...)
			plan := make([]float32, 1)
			tk.(env.PlanRewarder).PlanReward(plan, start, obs, act, next)
			var want float64
			switch tk {
			case Pusher:
				// The environment's reward of the next step with the
				// same torques scores the state this step arrived in.
				c, err := e.Clone()
				if err != nil {
					t.Fatal(err)
				}
				_, r, _, _, err := c.(*simEnv).Step(act)
				c.(*simEnv).Close()
				if err != nil {
					t.Fatal(err)
				}
				want = r
			case Reacher:
				// With the goal moved in the predicted state, the planner
				// still measures against the observed one.
				moved := append([]float32(nil), next...)
				moved[7] += 0.5
				tk.(env.PlanRewarder).PlanReward(plan, start, obs, act, moved)
				got := make([]float32, 1)
				tk.Reward(got, obs, act, next)
				want = float64(got[0])
			}
			if d := math.Abs(float64(plan[0]) - want); d > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("%s step %d: planning score %g, want %g", tk.Name(), step, plan[0], want)
			}
			obs = next
		}
	}
}

// TestFeaturesArePETSs: the model inputs are PETS's (its obs_preproc), in
// its order — checkpoints trained on them depend on it.
func TestFeaturesArePETSs(t *testing.T) {
	seq := func(n int) []float32 {
		o := make([]float32, n)
		for i := range o {
			o[i] = 0.3*float32(i) - 1.7
		}
		return o
	}
	sc := func(x float32) (float32, float32) {
		s, c := math.Sincos(float64(x))
		return float32(s), float32(c)
	}
	cp := seq(4)
	s, c := sc(cp[1])
	hc := seq(18)
	hs, hcos := sc(hc[2])
	for _, tc := range []struct {
		task      env.Task
		obs, want []float32
	}{
		{CartpoleSwingup, cp, []float32{s, c, cp[0], cp[2], cp[3]}},
		{HalfCheetah, hc, append([]float32{hc[1], hs, hcos}, hc[3:]...)},
		{Reacher, seq(17), seq(17)},
		{Pusher, seq(20), seq(20)},
	} {
		got := make([]float32, tc.task.InputDim())
		tc.task.Preprocess(got, tc.obs)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: features %v, want %v", tc.task.Name(), got, tc.want)
		}
	}
}
