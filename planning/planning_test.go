package planning

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/rng"
)

// quadratic is a concave return with its maximum, 0, at target, over
// sequences of d-wide actions.
func quadratic(target []float32, d int) ObjectiveFunc {
	n := len(target)
	return ObjectiveFunc{H: n / d, F: func(_ context.Context, returns []float64, seqs []float32, k int) error {
		for s := 0; s < k; s++ {
			var r float64
			for i, v := range seqs[s*n : (s+1)*n] {
				d := float64(v - target[i])
				r -= d * d
			}
			returns[s] = r
		}
		return nil
	}}
}

func target(h, d int) ([]float32, Bounds) {
	b := Bounds{Low: make([]float32, d), High: make([]float32, d)}
	for j := range d {
		b.Low[j], b.High[j] = -2, 2
	}
	t := make([]float32, h*d)
	for i := range t {
		t[i] = float32(1.5 * math.Sin(float64(i)))
	}
	return t, b
}

func score(obj Objective, seq []float32) float64 {
	r := make([]float64, 1)
	obj.Evaluate(context.Background(), r, seq, 1)
	return r[0]
}

func TestOptimizersFindKnownOptimum(t *testing.T) {
	const h, d = 10, 2
	tgt, b := target(h, d)
	obj := quadratic(tgt, d)
	cem, err := NewCEM(CEMConfig{Horizon: h, Population: 400, Elites: 40, Iterations: 50, Alpha: 0.1, MinVariance: 1e-7}, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	icem, err := NewICEM(ICEMConfig{Horizon: h, Population: 400, Elites: 40, Iterations: 30, Alpha: 0.1, NoiseBeta: 0.5, PopDecay: 1.05, KeepElites: 0.3}, b, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]Optimizer{"cem": cem, "icem": icem} {
		plan := make([]float32, h*d)
		if err := opt.Optimize(context.Background(), plan, obj, make([]float32, h*d)); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := range plan {
			worst = math.Max(worst, math.Abs(float64(plan[i]-tgt[i])))
		}
		t.Logf("%s: largest error %.4f, return %.2e", name, worst, score(obj, plan))
		if worst > 0.02 {
			t.Fatalf("%s: plan is %.4f from the optimum in some element", name, worst)
		}
	}
	// MPPI moves towards the optimum from its start.
	mppi, err := NewMPPI(MPPIConfig{Horizon: h, Population: 400, Iterations: 5, Gamma: 10, Sigma: 0.5, Beta: 0.7}, b, 3)
	if err != nil {
		t.Fatal(err)
	}
	start := make([]float32, h*d)
	plan := make([]float32, h*d)
	if err := mppi.Optimize(context.Background(), plan, obj, start); err != nil {
		t.Fatal(err)
	}
	before, after := score(obj, start), score(obj, plan)
	t.Logf("mppi: return %.3f → %.3f", before, after)
	if after < 0.5*before {
		t.Fatalf("MPPI's return went from %.3f to %.3f, want it at least halved in magnitude", before, after)
	}
}

// TestRandomShootingReturnsItsBestSample: from a start at a corner of the
// box, far from the optimum, random shooting returns the best sequence it
// scored — one of its uniform samples, better than the start.
func TestRandomShootingReturnsItsBestSample(t *testing.T) {
	const h, d, pop = 10, 2, 200
	tgt, b := target(h, d)
	obj := quadratic(tgt, d)
	var seen [][]float32
	var rets []float64
	record := ObjectiveFunc{H: h, F: func(ctx context.Context, returns []float64, seqs []float32, n int) error {
		err := obj.Evaluate(ctx, returns, seqs, n)
		for s := 0; s < n; s++ {
			seen = append(seen, slices.Clone(seqs[s*h*d:(s+1)*h*d]))
			rets = append(rets, returns[s])
		}
		return err
	}}
	start := make([]float32, h*d)
	for i := range start {
		start[i] = 2
	}
	rs, _ := NewRandomShooting(h, pop, b, 4)
	plan := make([]float32, h*d)
	if err := rs.Optimize(context.Background(), plan, record, start); err != nil {
		t.Fatal(err)
	}
	if len(seen) != pop || !slices.Equal(seen[0], start) {
		t.Fatalf("scored %d sequences, want %d with the start first", len(seen), pop)
	}
	best := 0
	for i, r := range rets {
		if r > rets[best] {
			best = i
		}
	}
	t.Logf("start %.2f, best of %d samples %.2f", rets[0], pop, rets[best])
	if best == 0 || !slices.Equal(plan, seen[best]) {
		t.Fatalf("returned a plan scoring %.2f; the best sample (%d) scores %.2f, the start %.2f", score(obj, plan), best, rets[best], rets[0])
	}
}

func TestSamplesStayInBoundsAndSmallVariance(t *testing.T) {
	const h = 5
	b := Bounds{Low: []float32{-1}, High: []float32{3}}
	seen := 0
	check := ObjectiveFunc{H: h, F: func(ctx context.Context, returns []float64, seqs []float32, n int) error {
		for _, v := range seqs[:n*h] {
			if v < -1 || v > 3 {
				t.Fatalf("sample %v outside [−1, 3]", v)
			}
		}
		seen += n
		return quadratic([]float32{3, 3, -1, -1, 0}, 1).F(ctx, returns, seqs, n)
	}}
	for name, mk := range map[string]func() (Optimizer, error){
		"cem": func() (Optimizer, error) {
			return NewCEM(CEMConfig{Horizon: h, Population: 50, Elites: 5, Iterations: 20, Alpha: 0.1, MinVariance: 0.001}, b, 5)
		},
		"icem": func() (Optimizer, error) {
			return NewICEM(ICEMConfig{Horizon: h, Population: 50, Elites: 5, Iterations: 5, NoiseBeta: 2, PopDecay: 1.25, KeepElites: 0.3}, b, 6)
		},
		"mppi": func() (Optimizer, error) {
			return NewMPPI(MPPIConfig{Horizon: h, Population: 50, Iterations: 3, Gamma: 1, Sigma: 3, Beta: 0.5}, b, 7)
		},
		"shoot": func() (Optimizer, error) { return NewRandomShooting(h, 50, b, 8) },
	} {
		opt, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		seen = 0
		plan := make([]float32, h)
		if err := opt.Optimize(context.Background(), plan, check, make([]float32, h)); err != nil {
			t.Fatal(name, err)
		}
		if name == "cem" && seen >= 20*50 {
			t.Fatalf("CEM ran all iterations though its variance fell below the threshold")
		}
	}
}

func TestBrokenSequencesRankLast(t *testing.T) {
	const h = 3
	b := Bounds{Low: []float32{-1}, High: []float32{1}}
	// Sequences starting above 0.5 "diverge"; the rest score −(a−0.9)²,
	// so the valid optimum sits at the edge of the broken region.
	obj := ObjectiveFunc{H: h, F: func(_ context.Context, returns []float64, seqs []float32, n int) error {
		for s := 0; s < n; s++ {
			switch {
			case seqs[s*h] > 0.5:
				returns[s] = math.NaN()
			case seqs[s*h] > 0.45:
				returns[s] = math.Inf(1) // a broken rollout reporting +Inf
			default:
				var r float64
				for _, v := range seqs[s*h : (s+1)*h] {
					r -= float64((v - 0.9) * (v - 0.9))
				}
				returns[s] = r
			}
		}
		return nil
	}}
	cem, _ := NewCEM(CEMConfig{Horizon: h, Population: 200, Elites: 20, Iterations: 10, Alpha: 0.1}, b, 9)
	plan := make([]float32, h)
	if err := cem.Optimize(context.Background(), plan, obj, plan); err != nil {
		t.Fatal(err)
	}
	// The best valid sequences start just below the broken region, 0.45;
	// the plan starts at 0 before the search.
	if plan[0] > 0.45 || plan[0] < 0.3 {
		t.Fatalf("the plan starts at %g, want it in [0.3, 0.45]: at the edge of the broken region, not in it", plan[0])
	}
	allNaN := ObjectiveFunc{H: h, F: func(_ context.Context, returns []float64, _ []float32, n int) error {
		for i := range returns[:n] {
			returns[i] = math.NaN()
		}
		return nil
	}}
	if err := cem.Optimize(context.Background(), plan, allNaN, plan); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("all-NaN returns: %v", err)
	}
}

// lagOneCorrelation is the lag-1 autocorrelation coloredNoise's
// construction gives over H steps: each frequency k contributes its share
// of the variance (s_k² for the real coefficients at 0 and H/2, 4·s_k²
// for the others, s_k = (k/H)^(−β/2) with k = 0 taken as 1) times
// cos(2πk/H).
func lagOneCorrelation(H int, beta float64) float64 {
	var num, den float64
	for k := 0; k <= H/2; k++ {
		s2 := math.Pow(float64(max(k, 1))/float64(H), -beta)
		w := 4 * s2
		if k == 0 || (H%2 == 0 && k == H/2) {
			w = s2
		}
		num += w * math.Cos(2*math.Pi*float64(k)/float64(H))
		den += w
	}
	return num / den
}

// TestColoredNoise: unit variance at every exponent, and the lag-1
// correlation the spectrum 1/f^β implies, within 4 standard errors.
func TestColoredNoise(t *testing.T) {
	src := rng.New(10)
	for _, beta := range []float64{0, 1, 2} {
		const H, n = 30, 4000
		x := make([]float64, H)
		var ss, lag float64
		for i := 0; i < n; i++ {
			coloredNoise(x, beta, src)
			for t := range x {
				ss += x[t] * x[t]
				if t > 0 {
					lag += x[t] * x[t-1]
				}
			}
		}
		v := ss / (n * H)
		rho := lag / (n * (H - 1)) / v
		want := lagOneCorrelation(H, beta)
		if beta == 0 {
			want = 0 // white noise is drawn directly
		}
		// Each of the n sequences gives one estimate of the correlation,
		// of spread at most 1/√(H−1); their mean's spread is √n smaller.
		tol := 4 / math.Sqrt(float64(n*(H-1)))
		t.Logf("β=%g: variance %.3f, lag-1 correlation %.4f (analytic %.4f, tolerance %.4f; at 2β %.4f)", beta, v, rho, want, tol, lagOneCorrelation(H, 2*beta))
		if math.Abs(v-1) > 0.05 {
			t.Fatalf("β=%g: variance %.3f, want 1", beta, v)
		}
		if math.Abs(rho-want) > tol {
			t.Fatalf("β=%g: lag-1 correlation %.4f, want %.4f ± %.4f", beta, rho, want, tol)
		}
	}
}

// pointMassModel trains a small deterministic model of the point mass.
func pointMassModel(t *testing.T, cfg dynamics.Config) *dynamics.Model {
	t.Helper()
	buf, err := data.RandomEpisodes(classic.PointMass, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dynamics.New(classic.PointMass, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr := dynamics.NewTrainer(m, 1)
	defer tr.Close()
	if _, err := tr.Train(context.Background(), buf, dynamics.TrainConfig{LR: 3e-3, Epochs: 30, BatchSize: 32, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestModelRolloutsMatchManualRollout: the returns of the model objective
// equal rollouts computed step by step through the predictor.
func TestModelRolloutsMatchManualRollout(t *testing.T) {
	task := classic.PointMass
	m := pointMassModel(t, dynamics.Config{Class: dynamics.D, Members: 1, Hidden: []int{16}, Activation: nn.Tanh})
	const h, n = 6, 5
	seqs := make([]float32, n*h)
	rng.New(4).FillUniform(seqs, -1, 1)
	start := []float32{0.2, -0.1}
	p := m.NewPredictor(1)
	defer p.Close()
	want := make([]float64, n)
	for s := 0; s < n; s++ {
		obs := append([]float32(nil), start...)
		next := make([]float32, 2)
		r := make([]float32, 1)
		for t := 0; t < h; t++ {
			a := seqs[s*h+t : s*h+t+1]
			p.Next(next, obs, a, 1, []int{0}, nil)
			task.Reward(r, obs, a, next)
			want[s] += float64(r[0])
			copy(obs, next)
		}
	}
	for _, prop := range []Propagation{TSInf, TS1, Expectation, Mean} {
		o, err := NewModelObjective(task, m, h, 3, prop, nn.FP32, 1, 5)
		if err != nil {
			t.Fatal(err)
		}
		o.SetStart(start)
		got := make([]float64, n)
		if err := o.Evaluate(context.Background(), got, seqs, n); err != nil {
			t.Fatal(err)
		}
		o.Close()
		for s := range got {
			// A deterministic single model: every propagation agrees.
			if math.Abs(got[s]-want[s]) > 1e-5*(1+math.Abs(want[s])) {
				t.Fatalf("%v: sequence %d return %g, manual rollout %g", prop, s, got[s], want[s])
			}
		}
	}
}

// rewardTask replaces a task's reward (and hides any planning reward).
type rewardTask struct {
	env.Task
	reward func(dst, obs, act, next []float32)
}

func (t rewardTask) Reward(dst, obs, act, next []float32) { t.reward(dst, obs, act, next) }

// TestDivergingModelScoresMinusInf: a sequence with a particle whose state
// or reward stops being finite scores −Inf, whatever the other check sees.
func TestDivergingModelScoresMinusInf(t *testing.T) {
	m := pointMassModel(t, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{8}, Activation: nn.Swish})
	zero := func(dst, _, _, _ []float32) { clear(dst) }
	// A NaN reward where the action is positive: the state stays finite.
	nanReward := func(dst, _, act, _ []float32) {
		for i := range dst {
			dst[i] = 0
			if act[i] > 0 {
				dst[i] = float32(math.NaN())
			}
		}
	}
	for _, c := range []struct {
		name    string
		horizon int     // 1: an infinite state is not fed back as NaN
		bias    float64 // of member 1's output; 0: left as trained
		reward  func(dst, obs, act, next []float32)
	}{
		{"NaN state, its reward finite", 4, math.NaN(), zero},
		{"infinite state, its reward finite", 1, math.Inf(1), zero},
		{"NaN state and reward", 4, math.NaN(), nil},
		{"NaN reward, finite states", 4, 0, nanReward},
	} {
		t.Run(c.name, func(t *testing.T) {
			mc := m.Clone()
			if c.bias != 0 {
				l := mc.Net.Layers[len(mc.Net.Layers)-1]
				for j := range l.MemberB(1)[:2] { // the means
					l.MemberB(1)[j] = float32(c.bias)
				}
			}
			var task env.Task = classic.PointMass
			if c.reward != nil {
				task = rewardTask{task, c.reward}
			}
			h := c.horizon
			o, err := NewModelObjective(task, mc, h, 4, TSInf, nn.FP32, 1, 6)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			o.SetStart([]float32{0, 0})
			const n = 10
			seqs := make([]float32, n*h)
			for s := 0; s < n; s++ {
				// Sequences 0–4 push at their last step, 5–9 never.
				seqs[s*h+h-1] = -1
				if s < n/2 {
					seqs[s*h+h-1] = 1
				}
			}
			ret := make([]float64, n)
			if err := o.Evaluate(context.Background(), ret, seqs, n); err != nil {
				t.Fatal(err)
			}
			for s, r := range ret {
				// With 4 particles on 2 members, every sequence has a
				// particle on the poisoned member.
				want := c.bias != 0 || s < n/2
				if got := math.IsInf(r, -1); got != want {
					t.Fatalf("sequence %d scored %g", s, r)
				}
			}
		})
	}
}

func TestSimObjectiveMatchesStepping(t *testing.T) {
	e, _ := classic.CartPole.New()
	sim := e.(env.Simulator)
	sim.Reset(3)
	const h, n = 20, 8
	o, err := NewSimObjective(sim, h, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.SetStart(sim.State())
	seqs := make([]float32, n*h)
	rng.New(7).FillUniform(seqs, -1, 1)
	got := make([]float64, n)
	if err := o.Evaluate(context.Background(), got, seqs, n); err != nil {
		t.Fatal(err)
	}
	st := sim.State()
	for s := 0; s < n; s++ {
		sim.SetState(st)
		var want float64
		for t := 0; t < h; t++ {
			_, r, term, _, err := sim.Step(seqs[s*h+t : s*h+t+1])
			if err != nil {
				break
			}
			want += r
			if term {
				break
			}
		}
		if got[s] != want {
			t.Fatalf("sequence %d: objective %g, stepping %g", s, got[s], want)
		}
	}
}

// TestExpertOnPointMass: CEM over the true simulator drives the point mass
// to its goal. Random actions score about −80 (the mass wanders near its
// start, a unit from the goal, for 50 steps); the expert must score above
// −15, which needs the goal reached within about a second and held.
func TestExpertOnPointMass(t *testing.T) {
	task := classic.PointMass
	e, _ := task.New()
	sim := e.(env.Simulator)
	sim.Reset(0)
	obj, err := NewSimObjective(sim, 15, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b := BoundsOf(task.ActionSpace())
	cem, _ := NewCEM(CEMConfig{Horizon: 15, Population: 100, Elites: 10, Iterations: 5, Alpha: 0.1, MinVariance: 0.001}, b, 11)
	agent, err := NewAgent(cem, obj, func([]float32) error { obj.SetStart(sim.State()); return nil }, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	expert, err := data.RunEpisode(context.Background(), sim, agent.Act, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var random float64
	for i := uint64(0); i < 5; i++ {
		r, _ := data.RunEpisode(context.Background(), sim, data.RandomPolicy(task.ActionSpace(), i), i, nil, nil)
		random += r / 5
	}
	t.Logf("expert %.2f, random %.2f", expert, random)
	if expert < -15 || random > -30 {
		t.Fatalf("expert scored %.2f (want > −15), random %.2f (want < −30)", expert, random)
	}
	if agent.Plans != 50 {
		t.Fatalf("the agent planned %d times in 50 steps", agent.Plans)
	}
}

func TestAgentShiftsPlan(t *testing.T) {
	b := Bounds{Low: []float32{-1}, High: []float32{1}}
	var starts [][]float32
	fake := &recordingOptimizer{h: 4, starts: &starts}
	a, err := NewAgent(fake, nil, nil, b, 2)
	if err != nil {
		t.Fatal(err)
	}
	act := make([]float32, 1)
	for i := 0; i < 4; i++ {
		a.Act(context.Background(), act, nil)
		if want := float32(0.1 * float64(i%2+1)); math.Abs(float64(act[0]-want)) > 1e-6 {
			t.Fatalf("step %d executed %v, want %v", i, act[0], want)
		}
	}
	// Replanning every 2 steps: the second start is the first plan shifted
	// by two, its tail at the box's middle (0).
	if len(starts) != 2 || starts[1][0] != 0.3 || starts[1][1] != 0.4 || starts[1][2] != 0 || starts[1][3] != 0 {
		t.Fatalf("optimiser starts %v", starts)
	}
	if _, err := NewAgent(fake, nil, nil, b, 5); err == nil {
		t.Fatal("replanning less often than the horizon accepted")
	}
}

// recordingOptimizer records its starts and returns 0.1, 0.2, ….
type recordingOptimizer struct {
	h      int
	starts *[][]float32
}

func (r *recordingOptimizer) Optimize(_ context.Context, plan []float32, _ Objective, init []float32) error {
	*r.starts = append(*r.starts, append([]float32(nil), init...))
	for i := range plan {
		plan[i] = 0.1 * float32(i+1)
	}
	return nil
}
func (r *recordingOptimizer) Reset()       {}
func (r *recordingOptimizer) Horizon() int { return r.h }

func TestConfigErrors(t *testing.T) {
	b := Bounds{Low: []float32{-1}, High: []float32{1}}
	if _, err := NewCEM(CEMConfig{Horizon: 5, Population: 10, Elites: 11, Iterations: 1}, b, 1); err == nil {
		t.Fatal("more elites than the population accepted")
	}
	if _, err := NewCEM(CEMConfig{Horizon: 0, Population: 10, Elites: 1, Iterations: 1}, b, 1); err == nil {
		t.Fatal("horizon 0 accepted")
	}
	if _, err := NewCEM(CEMConfig{Horizon: 5, Population: 10, Elites: 1, Iterations: 1}, Bounds{Low: []float32{1}, High: []float32{1}}, 1); err == nil {
		t.Fatal("an empty action box accepted")
	}
	if _, err := NewICEM(ICEMConfig{Horizon: 5, Population: 10, Elites: 1, Iterations: 1, PopDecay: 0.5}, b, 1); err == nil {
		t.Fatal("population decay below 1 accepted")
	}
	if _, err := NewMPPI(MPPIConfig{Horizon: 5, Population: 10, Iterations: 1, Gamma: 1, Sigma: 1, Beta: 0}, b, 1); err == nil {
		t.Fatal("beta 0 accepted")
	}
	if _, err := ParsePropagation("ts-42"); err == nil {
		t.Fatal("unknown propagation accepted")
	}
	for _, p := range []Propagation{TSInf, TS1, Expectation, Mean} {
		if q, err := ParsePropagation(p.String()); err != nil || q != p {
			t.Fatalf("%v does not round-trip", p)
		}
	}
}

// TestModelRolloutsDoNotAllocate: after the first call of a size, scoring
// a population allocates nothing.
func TestModelRolloutsDoNotAllocate(t *testing.T) {
	m := pointMassModel(t, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Swish})
	o, err := NewModelObjective(classic.PointMass, m, 10, 4, TSInf, nn.FP32, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.SetStart([]float32{0, 0})
	const n = 64
	seqs := make([]float32, n*10)
	ret := make([]float64, n)
	o.Evaluate(context.Background(), ret, seqs, n)
	if a := testing.AllocsPerRun(10, func() { o.Evaluate(context.Background(), ret, seqs, n) }); a != 0 {
		t.Fatalf("Evaluate allocated %.1f times per call", a)
	}
}

// lineTask is a 1-D task for testing rollouts: the reward of a transition
// is the position it arrives at, so a rollout's return is the sum of the
// positions it visits.
type lineTask struct{}

func (lineTask) Name() string                               { return "line" }
func (lineTask) ObservationSpace() env.Box                  { return env.Unbounded(1) }
func (lineTask) ActionSpace() env.Box                       { return env.Uniform(1, -1, 1) }
func (lineTask) EpisodeSteps() int                          { return 10 }
func (lineTask) New() (env.Env, error)                      { return nil, errors.New("no simulator") }
func (lineTask) InputDim() int                              { return 1 }
func (lineTask) Preprocess(dst, obs []float32)              { copy(dst, obs) }
func (lineTask) AbsoluteTargets() []int                     { return nil }
func (lineTask) Terminated(dst []bool, _, _, _ []float32)   { clear(dst) }
func (lineTask) Reward(dst []float32, _, _, next []float32) { copy(dst, next) }

// splitModel is a two-member probabilistic model of lineTask whose member 0
// always predicts a step of +1 and member 1 a step of −1, each with the
// smallest variance its log-variance bound allows (σ ≈ 0.007).
func splitModel(t *testing.T) *dynamics.Model {
	t.Helper()
	m, err := dynamics.New(lineTask{}, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{1}, Activation: nn.Swish}, 1)
	if err != nil {
		t.Fatal(err)
	}
	clear(m.Net.Params())
	out := m.Net.Layers[len(m.Net.Layers)-1]
	for e, step := range []float32{1, -1} {
		b := out.MemberB(e)
		b[0], b[1] = step, -30 // mean, then raw log-variance
	}
	return m
}

// TestPropagationModes checks each propagation against rollouts worked out
// by hand on splitModel, with one particle per sequence so that each
// return is one particle's. Over H = 4 steps from 0, a particle that keeps
// member 0 visits 1, 2, 3, 4 (return 10) and one that keeps member 1
// returns −10; the members' average stays at 0; a particle that draws a
// member s_t = ±1 at each step returns 4s₁ + 3s₂ + 2s₃ + s₄.
func TestPropagationModes(t *testing.T) {
	const H, n = 4, 4000
	m := splitModel(t)
	returns := func(prop Propagation) []float64 {
		o, err := NewModelObjective(lineTask{}, m, H, 1, prop, nn.FP32, 2, 7)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		o.SetStart([]float32{0})
		r := make([]float64, n)
		if err := o.Evaluate(context.Background(), r, make([]float32, n*H), n); err != nil {
			t.Fatal(err)
		}
		return r
	}
	near := func(x, y, tol float64) bool { return math.Abs(x-y) <= tol }
	// Mean: each particle keeps one member, without noise: exactly ±10,
	// half of the particles on each member.
	plus := 0
	for i, r := range returns(Mean) {
		switch {
		case near(r, 10, 1e-4):
			plus++
		case near(r, -10, 1e-4):
		default:
			t.Fatalf("mean: sequence %d returns %g, want ±10", i, r)
		}
	}
	if plus != n/2 {
		t.Fatalf("mean: %d of %d particles follow member 0, want half", plus, n)
	}
	// TS∞: the same paths, with each step's noise (σ ≈ 0.007) sampled.
	plus, noisy := 0, 0
	for i, r := range returns(TSInf) {
		switch {
		case near(r, 10, 0.2):
			plus++
		case near(r, -10, 0.2):
		default:
			t.Fatalf("ts-inf: sequence %d returns %g, want ±10 and noise", i, r)
		}
		if !near(math.Abs(r), 10, 1e-4) {
			noisy++
		}
	}
	if plus != n/2 || noisy < n/2 {
		t.Fatalf("ts-inf: %d of %d particles follow member 0 (want half), %d show noise", plus, n, noisy)
	}
	// Expectation: the members' average, 0 at every step.
	for i, r := range returns(Expectation) {
		if !near(r, 0, 1e-4) {
			t.Fatalf("expectation: sequence %d returns %g, want 0", i, r)
		}
	}
	// TS1: a member drawn at every step: every return is that of a sign
	// pattern, each value as often as the patterns that give it (each
	// pattern 1/16 of the time; 4+3−2−1 and 4−3+2+1 give the same).
	patterns := map[float64]int{}
	for p := 0; p < 16; p++ {
		var v float64
		for s := 0; s < H; s++ {
			v += float64(1-2*(p>>s&1)) * float64(H-s)
		}
		patterns[v]++
	}
	count := map[float64]int{}
	for i, r := range returns(TS1) {
		found := false
		for v := range patterns {
			if near(r, v, 0.2) {
				count[v]++
				found = true
			}
		}
		if !found {
			t.Fatalf("ts1: sequence %d returns %g, no sign pattern's", i, r)
		}
	}
	for v, k := range patterns {
		// n·k/16 expected; the binomial spread is at most 16.
		want := n * k / 16
		if c := count[v]; c < want-80 || c > want+80 {
			t.Fatalf("ts1: return %g turns up %d times in %d, want about %d", v, c, n, want)
		}
	}
}

// TestHorizonsMustAgree: an optimiser of horizon 20 over an objective of
// horizon 15 would read the sequences with the wrong stride; it is an
// error, for every optimiser and for the agent.
func TestHorizonsMustAgree(t *testing.T) {
	b := Bounds{Low: []float32{-1}, High: []float32{1}}
	obj := quadratic(make([]float32, 15), 1)
	cem, _ := NewCEM(CEMConfig{Horizon: 20, Population: 10, Elites: 2, Iterations: 1}, b, 1)
	icem, _ := NewICEM(ICEMConfig{Horizon: 20, Population: 10, Elites: 2, Iterations: 1, PopDecay: 1}, b, 1)
	mppi, _ := NewMPPI(MPPIConfig{Horizon: 20, Population: 10, Iterations: 1, Gamma: 1, Sigma: 1, Beta: 1}, b, 1)
	rs, _ := NewRandomShooting(20, 10, b, 1)
	for _, opt := range []Optimizer{cem, icem, mppi, rs} {
		plan := make([]float32, 20)
		if err := opt.Optimize(context.Background(), plan, obj, plan); err == nil || !strings.Contains(err.Error(), "horizon 15") {
			t.Fatalf("%T over a shorter objective: %v", opt, err)
		}
	}
	if _, err := NewAgent(cem, obj, nil, b, 1); err == nil {
		t.Fatal("an agent of mismatched horizons was made")
	}
}

// TestObjectivePrecision: an objective asked for bf16 computes in bf16
// where the machine can and says fp32 where it cannot; both score the same
// sequences closely (the bf16 returns within 2% of the fp32 ones' spread).
func TestObjectivePrecision(t *testing.T) {
	m := pointMassModel(t, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{64, 64}, Activation: nn.Swish})
	const n, h = 200, 10
	seqs := make([]float32, n*h)
	rng.New(3).FillUniform(seqs, -1, 1)
	returns := func(p nn.Precision) ([]float64, nn.Precision) {
		o, err := NewModelObjective(classic.PointMass, m, h, 1, Mean, p, 2, 9)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		o.SetStart([]float32{0.3, 0})
		r := make([]float64, n)
		if err := o.Evaluate(context.Background(), r, seqs, n); err != nil {
			t.Fatal(err)
		}
		return r, o.Precision()
	}
	fp, got := returns(nn.FP32)
	if got != nn.FP32 {
		t.Fatalf("asked for fp32, got %v", got)
	}
	bf, got := returns(nn.BF16)
	if want := map[bool]nn.Precision{true: nn.BF16, false: nn.FP32}[nn.BF16Supported()]; got != want {
		t.Fatalf("asked for bf16 on a machine with BF16Supported %t, got %v", nn.BF16Supported(), got)
	}
	lo, hi := slices.Min(fp), slices.Max(fp)
	for i := range fp {
		if math.Abs(bf[i]-fp[i]) > 0.02*(hi-lo) {
			t.Fatalf("sequence %d returns %.4f in %v, %.4f in fp32 (fp32 returns span %.3f)", i, bf[i], got, fp[i], hi-lo)
		}
	}
}

// planScored is the point mass with a planning score of its own: the
// rollout's start position, whatever the transition.
type planScored struct{ env.Task }

func (planScored) PlanReward(dst []float32, start, _, _, _ []float32) {
	for i := range dst {
		dst[i] = start[0]
	}
}

// TestObjectiveUsesPlanReward: model rollouts are scored with a task's
// planning score where it has one (PETS's pusher and reacher), given the
// rollout's start.
func TestObjectiveUsesPlanReward(t *testing.T) {
	m := pointMassModel(t, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Swish})
	const n, h = 5, 4
	seqs := make([]float32, n*h)
	rng.New(4).FillUniform(seqs, -1, 1)
	returns := func(task env.Task, start []float32) []float64 {
		o, err := NewModelObjective(task, m, h, 1, Mean, nn.FP32, 1, 9)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		o.SetStart(start)
		r := make([]float64, n)
		if err := o.Evaluate(context.Background(), r, seqs, n); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, x0 := range []float32{0.3, -0.7} {
		plain, scored := returns(classic.PointMass, []float32{x0, 0}), returns(planScored{classic.PointMass}, []float32{x0, 0})
		for s := range n {
			if want := h * float64(x0); math.Abs(scored[s]-want) > 1e-6 || math.Abs(plain[s]-want) < 1e-3 {
				t.Fatalf("start %g, sequence %d: return %.6f with the planning score (want %.6f), %.6f with the reward", x0, s, scored[s], want, plain[s])
			}
		}
	}
}

// TestSharedSteps: the steps computed once per sequence and member
// (sharedStep: the first; every step under Mean) give the returns of
// every slot computed apart, for each propagation that samples or keeps
// members, on one goroutine and two, with more particles than members (so
// slots share) and a population that leaves padding slots — bit for bit
// through the packed predictors, to rounding through OpenBLAS, which may
// round a row differently for another row count.
func TestSharedSteps(t *testing.T) {
	m, err := dynamics.New(classic.PointMass, dynamics.Config{Class: dynamics.PE, Members: 5, Hidden: []int{16, 16}, Activation: nn.Swish}, 8)
	if err != nil {
		t.Fatal(err)
	}
	tol := 0.0
	if p, err := m.NewPackedPredictor(1, nn.FP32); errors.Is(err, nn.ErrUnsupported) {
		tol = 1e-4
	} else {
		p.Close()
	}
	const H, n, P = 5, 37, 7 // 259 particles: 52 slots a member, one of padding
	seqs := make([]float32, n*H)
	rng.New(9).FillUniform(seqs, -1, 1)
	for _, prop := range []Propagation{TSInf, TS1, Mean} {
		for _, threads := range []int{1, 2} {
			returns := func(unshared bool) []float64 {
				o, err := NewModelObjective(classic.PointMass, m, H, P, prop, nn.FP32, threads, 10)
				if err != nil {
					t.Fatal(err)
				}
				defer o.Close()
				o.unshared = unshared
				o.SetStart([]float32{0.2, -0.1})
				r := make([]float64, n)
				for range 2 { // the second call reuses the first's buffers
					if err := o.Evaluate(context.Background(), r, seqs, n); err != nil {
						t.Fatal(err)
					}
				}
				return r
			}
			want, got := returns(true), returns(false)
			for s := range want {
				if math.IsInf(want[s], 0) || math.Abs(got[s]-want[s]) > tol*(1+math.Abs(want[s])) {
					t.Fatalf("%v, %d goroutines: sequence %d returns %v shared, %v computed apart", prop, threads, s, got[s], want[s])
				}
			}
		}
	}
}

// TestLanes: an evaluation large enough is rolled out in lanes, each an
// objective of its own on one goroutine over a share of the sequences,
// drawing from its own stream; the returns are the same on 1, 2 and 3
// goroutines, bit for bit, and each lane's are those of an objective made
// with its seed.
func TestLanes(t *testing.T) {
	m, err := dynamics.New(classic.PointMass, dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16, 16}, Activation: nn.Swish}, 8)
	if err != nil {
		t.Fatal(err)
	}
	const H, P, seed = 4, 2, 10
	for _, c := range []struct {
		n, lanes int
	}{{199, 1}, {200, 2}, {999, 2}, {2100, 2}, {3500, 3}} {
		seqs := make([]float32, c.n*H)
		rng.New(9).FillUniform(seqs, -1, 1)
		for _, prop := range []Propagation{TSInf, TS1, Expectation, Mean} {
			var first []float64
			for _, threads := range []int{1, 2, 3} {
				o, err := NewModelObjective(classic.PointMass, m, H, P, prop, nn.FP32, threads, seed)
				if err != nil {
					t.Fatal(err)
				}
				// Two members and two particles: a member carries a row
				// of every sequence, under every propagation.
				if got := o.laneCount(c.n); got != c.lanes {
					t.Fatalf("%d sequences, %v: %d lanes, want %d", c.n, prop, got, c.lanes)
				}
				o.SetStart([]float32{0.2, -0.1})
				r := make([]float64, c.n)
				for range 2 { // the second call reuses the lanes
					if err := o.Evaluate(context.Background(), r, seqs, c.n); err != nil {
						t.Fatal(err)
					}
				}
				o.Close()
				if first == nil {
					first = r
					continue
				}
				for s := range r {
					if r[s] != first[s] {
						t.Fatalf("%d sequences, %v: sequence %d returns %v on %d goroutines, %v on 1", c.n, prop, s, r[s], threads, first[s])
					}
				}
			}
			if prop != TSInf {
				continue
			}
			// Lane l's share, by an objective of lane l's seed.
			L := c.lanes
			split, err := NewModelObjective(classic.PointMass, m, H, P, prop, nn.FP32, 1, seed)
			if err != nil {
				t.Fatal(err)
			}
			for l := 0; l < L; l++ {
				lo, hi := split.laneStart(l, L, c.n), split.laneStart(l+1, L, c.n)
				ls := uint64(seed)
				if L > 1 {
					ls = rng.New(seed).Named("lanes").Uint64() + uint64(l)
				}
				o, err := NewModelObjective(classic.PointMass, m, H, P, prop, nn.FP32, 1, ls)
				if err != nil {
					t.Fatal(err)
				}
				o.SetStart([]float32{0.2, -0.1})
				r := make([]float64, hi-lo)
				for range 2 {
					if err := o.evaluate(context.Background(), r, seqs[lo*H:hi*H], hi-lo); err != nil {
						t.Fatal(err)
					}
				}
				o.Close()
				for s := range r {
					if r[s] != first[lo+s] {
						t.Fatalf("%d sequences: lane %d's sequence %d returns %v, alone %v", c.n, l, s, first[lo+s], r[s])
					}
				}
			}
			split.Close()
		}
	}
}

// TestLanesTakeWholeBlocks: lanes split an evaluation where every
// member's rows come to a multiple of kernel.NetRows, so that lanes
// compute no more rows than one objective would (the kernel computes a
// part-filled group whole), each lane keeping most of its share.
func TestLanesTakeWholeBlocks(t *testing.T) {
	// The rows the kernel computes for a member's rows.
	computed := func(rows int) int { return (rows + kernel.NetRows - 1) / kernel.NetRows * kernel.NetRows }
	for _, c := range []struct {
		members, particles, n int
		prop                  Propagation
		aligned               bool // the split can fall on whole blocks
	}{
		{5, 20, 500, TSInf, true}, // mbrl-lib's notebook: 2 lanes of 252 and 248
		{5, 5, 200, TSInf, true},  // the fast presets: 2 lanes of 96 and 104
		{5, 5, 200, TS1, true},
		{7, 20, 2000, TSInf, true},
		{3, 7, 90, TSInf, false},  // 16 rows a member take 48 sequences
		{2, 31, 40, TSInf, false}, // 32 sequences, where a lane's share is 20
		{4, 1, 250, Expectation, true},
		{3, 1, 7000, Expectation, true},
	} {
		m, err := dynamics.New(classic.PointMass, dynamics.Config{Class: dynamics.PE, Members: c.members, Hidden: []int{8}, Activation: nn.Swish}, 1)
		if err != nil {
			t.Fatal(err)
		}
		o, err := NewModelObjective(classic.PointMass, m, 2, c.particles, c.prop, nn.FP32, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		L := o.laneCount(c.n)
		if L < 2 {
			t.Fatalf("%+v: %d lanes", c, L)
		}
		perMember := func(seqs int) int { // rows a member carries for seqs sequences
			if c.prop == Expectation {
				return seqs
			}
			return (seqs*c.particles + c.members - 1) / c.members
		}
		sum := 0
		for l := 0; l < L; l++ {
			lo, hi := o.laneStart(l, L, c.n), o.laneStart(l+1, L, c.n)
			if l == 0 && lo != 0 || l == L-1 && hi != c.n || hi-lo < c.n/(2*L) {
				t.Fatalf("%+v: lane %d of %d takes sequences [%d, %d)", c, l, L, lo, hi)
			}
			sum += computed(perMember(hi - lo))
		}
		if one := computed(perMember(c.n)); c.aligned && sum != one {
			t.Errorf("%+v: the lanes compute %d rows a member, one objective %d", c, sum, one)
		}
		o.Close()
	}
}

// TestBytesBoundsLanes checks that a planner's memory estimate counts at
// least the lanes (each a packed network) its objective rolls out in,
// whichever members the training keeps as elites.
func TestBytesBoundsLanes(t *testing.T) {
	m, err := dynamics.New(classic.PointMass, dynamics.Config{Class: dynamics.PE, Members: 7, Hidden: []int{8}, Activation: nn.Swish}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, prop := range []Propagation{TSInf, Expectation} {
		for _, pop := range []int{300, 2100, 5000} {
			c := Config{Population: pop, Particles: 20, Propagation: prop}
			bound := c.maxLanes()
			for elites := 1; elites <= 7; elites++ {
				m.Elites = m.Elites[:0]
				for e := range elites {
					m.Elites = append(m.Elites, e)
				}
				o, err := NewModelObjective(classic.PointMass, m, 2, c.Particles, prop, nn.FP32, 1, 1)
				if err != nil {
					t.Fatal(err)
				}
				if got := o.laneCount(pop); got > bound {
					t.Errorf("%v, population %d, %d elites: %d lanes, the estimate counts %d", prop, pop, elites, got, bound)
				}
				o.Close()
			}
		}
	}
}
