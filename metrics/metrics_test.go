package metrics

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/classic"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/rng"
)

// pointMass returns episodes of the point mass under random actions and
// a small ensemble trained briefly on other episodes.
func pointMass(t *testing.T) (*dynamics.Model, *data.Buffer, *data.Buffer) {
	t.Helper()
	task := classic.PointMass
	episodes := func(n int, seed uint64) *data.Buffer {
		e, err := task.New()
		if err != nil {
			t.Fatal(err)
		}
		b := data.NewBuffer(2, 1)
		src := rng.New(seed)
		for i := 0; i < n; i++ {
			policy := func(_ context.Context, act, _ []float32) error {
				act[0] = float32(src.Uniform(-1, 1))
				return nil
			}
			if _, err := data.RunEpisode(context.Background(), e, policy, seed+uint64(i), b, nil); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	train, test := episodes(8, 1), episodes(3, 100)
	m, err := dynamics.New(task, dynamics.Config{Class: dynamics.PE, Members: 3, Hidden: []int{16}, Activation: nn.Swish}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr := dynamics.NewTrainer(m, 1)
	defer tr.Close()
	if _, err := tr.Train(context.Background(), train, dynamics.TrainConfig{Epochs: 5, BatchSize: 32, LR: 3e-3, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	return m, train, test
}

// handNLL is the members' mean NLL per transition of b, by hand from the
// predicted moments, each transition weighted by w (nil: equally).
func handNLL(t *testing.T, m *dynamics.Model, b *data.Buffer, w []float32) float64 {
	t.Helper()
	E, od, n := m.Members(), b.ObsDim, b.Len()
	p := m.NewPredictor(1)
	defer p.Close()
	obs, act := make([]float32, E*n*od), make([]float32, E*n*b.ActDim)
	for e := 0; e < E; e++ {
		copy(obs[e*n*od:], b.Obs)
		copy(act[e*n*b.ActDim:], b.Act)
	}
	mean, vari := make([]float32, E*n*od), make([]float32, E*n*od)
	if err := p.Moments(mean, vari, obs, act, n, nil); err != nil {
		t.Fatal(err)
	}
	var sum, wsum float64
	for i := 0; i < n; i++ {
		wi := 1.0
		if w != nil {
			wi = float64(w[i])
		}
		for e := 0; e < E; e++ {
			for d := 0; d < od; d++ {
				// Moments predicts the next observation itself.
				err := float64(b.Next[i*od+d]) - float64(mean[(e*n+i)*od+d])
				v := float64(vari[(e*n+i)*od+d])
				sum += wi * 0.5 * (err*err/v + math.Log(v) + math.Log(2*math.Pi)) / float64(E)
			}
		}
		wsum += wi
	}
	return sum / wsum
}

func TestMetricsAgainstHandComputations(t *testing.T) {
	m, train, test := pointMass(t)
	d := &Data{Task: classic.PointMass, Datasets: []Dataset{{"train", train}, {"test", test}}, Expert: test, Horizon: 10, Threads: 1}
	all := map[string]float64{}
	for _, name := range []string{"likelihood", "calibration", "open-loop", "reweighted"} {
		mt, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := mt.Score(context.Background(), m, d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k, x := range v {
			if _, dup := all[k]; dup {
				t.Fatalf("column %s from two metrics", k)
			}
			all[k] = x
		}
	}
	for _, ds := range d.Datasets {
		if got, want := all[Column("nll", ds.Name)], handNLL(t, m, ds.Buf, nil); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
			t.Errorf("nll@%s %g, by hand %g", ds.Name, got, want)
		}
		met, _ := m.Evaluate(ds.Buf, 1)
		if got, want := all[Column("calibration-error", ds.Name)], (math.Abs(met.Coverage1-0.6827)+math.Abs(met.Coverage2-0.9545))/2; math.Abs(got-want) > 1e-4 {
			t.Errorf("calibration-error@%s %g, want %g", ds.Name, got, want)
		}
		// All k from the same starts: those with a horizon's steps left.
		ol, _ := m.OpenLoop(ds.Buf, 10, classic.PointMass, 1)
		if got := all[Column("open-loop-mse-1", ds.Name)]; got != ol.StateMSE[0] {
			t.Errorf("open-loop-mse-1@%s %g, want %g", ds.Name, got, ol.StateMSE[0])
		}
		if got := all[Column("open-loop-return-error-10", ds.Name)]; got != ol.ReturnError || !(got > 0) {
			t.Errorf("open-loop-return-error-10@%s %g, want %g", ds.Name, got, ol.ReturnError)
		}
		if all[Column("open-loop-mse-10", ds.Name)] <= all[Column("open-loop-mse-1", ds.Name)] {
			t.Errorf("%s: 10-step error %g not above the 1-step %g", ds.Name, all[Column("open-loop-mse-10", ds.Name)], all[Column("open-loop-mse-1", ds.Name)])
		}
		w, _ := data.Weights(data.Exponential, ds.Buf, test, 1)
		if got, want := all[Column("reweighted-nll", ds.Name)], handNLL(t, m, ds.Buf, w); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
			t.Errorf("reweighted-nll@%s %g, by hand %g", ds.Name, got, want)
		}
	}
	// On the expert's own data every weight is 1 at distance 0... except
	// the farthest transitions: the weighted NLL differs from the plain.
	if all[Column("reweighted-nll", "train")] == all[Column("nll", "train")] {
		t.Error("re-weighting changed nothing on the training data")
	}
	// Without an expert, no re-weighted column.
	d.Expert = nil
	if v, _ := (reweighted{}).Score(context.Background(), m, d); len(v) != 0 {
		t.Errorf("without an expert: %v", v)
	}
}

func TestRegistry(t *testing.T) {
	names := Names()
	for _, want := range []string{"calibration", "likelihood", "open-loop", "reweighted"} {
		if _, err := Lookup(want); err != nil {
			t.Errorf("%s: %v (have %v)", want, err, names)
		}
	}
	if _, err := Lookup("telepathy"); err == nil || !strings.Contains(err.Error(), "likelihood") {
		t.Errorf("unknown metric: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a second likelihood metric was registered")
		}
	}()
	Register(likelihood{})
}

// TestRankKnownAnswers: a column that is the reward ranks first with
// Spearman 1 and beats a noise likelihood with an interval above zero; the
// likelihood compared with itself differs by exactly zero; a reversed
// column ranks as high as the straight one.
func TestRankKnownAnswers(t *testing.T) {
	src := rng.New(7)
	n := 40
	rew := make([]float64, n)
	for i := range rew {
		rew[i] = src.Normal()
	}
	perfect, reversed, noise, partial := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range rew {
		perfect[i] = 2*rew[i] + 1
		reversed[i] = -rew[i]
		noise[i] = src.Normal()
		partial[i] = rew[i] + src.Normal()
	}
	partial[3] = math.NaN()
	values := map[string][]float64{
		"nll@a": noise, "metric@a": perfect, "flip@a": reversed, "mixed@a": partial, "nll@b": perfect,
	}
	rows := Rank(values, rew, map[string]float64{"metric@a": 0.5}, RankOptions{Resamples: 500, Level: 0.95, Seed: 1})
	by := map[string]Row{}
	for _, r := range rows {
		by[r.Column] = r
	}
	if len(rows) != 5 || math.Abs(math.Abs(rows[0].Spearman.Value)-1) > 1e-12 || rows[4].Column != "nll@a" {
		t.Fatalf("order: %v", rows)
	}
	m := by["metric@a"]
	if m.Spearman.Value != 1 || m.Kendall.Value != 1 || math.Abs(m.Pearson.Value-1) > 1e-12 || m.Baseline != "nll@a" || m.Seconds != 0.5 {
		t.Errorf("perfect column: %+v", m)
	}
	if !m.VsBaseline.HasCI || !(m.VsBaseline.Interval.Low > 0) || m.VsBaseline.Value <= 0.5 {
		t.Errorf("perfect vs noise likelihood: %+v, want an interval above 0", m.VsBaseline)
	}
	if f := by["flip@a"]; f.Spearman.Value != -1 || math.Abs(f.VsBaseline.Value-m.VsBaseline.Value) > 1e-12 {
		t.Errorf("reversed column: %+v", f)
	}
	if nl := by["nll@a"]; nl.Baseline != "" || nl.VsBaseline.Defined {
		t.Errorf("the likelihood against itself: %+v", nl)
	}
	// A noisy column's difference has a real spread around its value.
	if mx := by["mixed@a"]; mx.Models != n-1 || !mx.VsBaseline.HasCI || !(mx.VsBaseline.Interval.Low < mx.VsBaseline.Value && mx.VsBaseline.Value < mx.VsBaseline.Interval.High) {
		t.Errorf("a column with one NaN: %+v", mx)
	}
	// Columns of dataset b compare with b's likelihood.
	if by["nll@b"].Baseline != "" {
		t.Errorf("nll@b compared with %s", by["nll@b"].Baseline)
	}
}

// TestDecisionRegret: planning with the simulator itself as the "model"
// makes exactly the simulator's decisions (zero regret, same first
// action); an untrained model's plans lose true return.
func TestDecisionRegret(t *testing.T) {
	m, _, test := pointMass(t)
	untrained, err := dynamics.New(classic.PointMass, dynamics.Config{Class: dynamics.PE, Members: 3, Hidden: []int{16}, Activation: nn.Swish}, 77)
	if err != nil {
		t.Fatal(err)
	}
	untrained.FitNormalizer(test.Obs, test.Act, test.Len())
	cfg := planning.DefaultConfig()
	cfg.Horizon, cfg.Population, cfg.Elites, cfg.Iterations, cfg.Particles = 10, 60, 6, 3, 2
	d := &Data{Task: classic.PointMass, Datasets: []Dataset{{"test", test}}, Expert: test, ExpertName: "test", Planner: cfg, Seed: 5, States: 6, Threads: 1}
	defer d.Close()
	truthModel := func(start []float32, _ uint64) (planning.Objective, func(), error) {
		e, err := classic.PointMass.New()
		if err != nil {
			return nil, nil, err
		}
		if err := e.(env.ObservationSetter).SetObservation(start); err != nil {
			return nil, nil, err
		}
		obj, err := planning.NewSimObjective(e.(env.Simulator), cfg.Horizon, 1)
		if err != nil {
			return nil, nil, err
		}
		return obj, func() { obj.Close(); e.Close() }, nil
	}
	same, err := decisionScore(context.Background(), d, truthModel)
	if err != nil {
		t.Fatal(err)
	}
	if same["decision-regret@test"] != 0 || same["decision-first-action-distance@test"] != 0 {
		t.Fatalf("the simulator as its own model: %v, want zero regret and distance", same)
	}
	truth, _, _ := d.truth(context.Background())
	var scale float64
	for _, tp := range truth {
		scale += math.Abs(tp.reward) / float64(len(truth))
	}
	for _, c := range []struct {
		name  string
		model *dynamics.Model
	}{{"trained", m}, {"untrained", untrained}} {
		v, err := (decision{}).Score(context.Background(), c.model, d)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s model: regret %.4f, first-action distance %.4f (true returns average %.3f)", c.name, v["decision-regret@test"], v["decision-first-action-distance@test"], -scale)
		if c.name == "untrained" && (!(v["decision-regret@test"] > 0.2*scale) || !(v["decision-first-action-distance@test"] > 0.05)) {
			t.Errorf("untrained model: regret %g (true returns %g), distance %g", v["decision-regret@test"], scale, v["decision-first-action-distance@test"])
		}
	}
}
