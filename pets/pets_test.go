package pets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/env/classic"
	_ "github.com/mismatch-rl/mismatch/env/mujoco" // halfcheetah-fine, a variant
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/rng"
)

func pointMassConfig() Config {
	return Config{Task: "pointmass", Seed: 7, Threads: 2, RandomTrials: 1, Trials: 3,
		Model:   dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{32, 32}, Activation: nn.Swish},
		Train:   TrainConfig{TrainConfig: dynamics.TrainConfig{Epochs: 30, BatchSize: 32, LR: 3e-3}},
		Planner: planning.Config{Optimizer: planning.MethodCEM, Horizon: 10, Population: 100, Elites: 10, Iterations: 4, Alpha: 0.1, MinVariance: 0.001, Particles: 4, Propagation: planning.TSInf, ReplanEvery: 1},
	}
}

// bestRandom is the best return of n episodes of uniformly random actions
// from the start state of trial's episode.
func bestRandom(t *testing.T, cfg Config, trial, n int) float64 {
	t.Helper()
	e, _ := classic.PointMass.New()
	defer e.Close()
	best := math.Inf(-1)
	for i := 0; i < n; i++ {
		r, err := data.RunEpisode(context.Background(), e, data.RandomPolicy(classic.PointMass.ActionSpace(), uint64(1000+i)), episodeSeed(cfg.Seed, trial), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		best = max(best, r)
	}
	return best
}

// TestPETSBeatsRandomOnPointMass: PETS with a small model learns the point
// mass from one random episode. Over three seeds, the better of each run's
// trials 3 and 4 scores on average above the best of 1000 random-action
// episodes from the same start states (about −8 against −14; random
// episodes average about −50; measured over 12 seeds, the better of trials
// 3 and 4 ranged from −5.5 to −15.9, the random best from −9 to −15.7).
func TestPETSBeatsRandomOnPointMass(t *testing.T) {
	var pets, random float64
	var dir string
	var rows []Trial
	for seed := uint64(1); seed <= 3; seed++ {
		cfg := pointMassConfig()
		cfg.Seed, cfg.Trials = seed, 4
		dir = t.TempDir()
		var err error
		rows, err = Run(context.Background(), cfg, Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 5 || rows[0].Kind != KindRandom || rows[4].Trial != 4 {
			t.Fatalf("rows %+v", rows)
		}
		best, i := max(rows[3].Reward, rows[4].Reward), 3
		if rows[4].Reward > rows[3].Reward {
			i = 4
		}
		chance := bestRandom(t, cfg, i, 1000)
		t.Logf("seed %d: rewards %.2f %.2f %.2f %.2f; best of trials 3-4 %.2f, best of 1000 random episodes from its start %.2f",
			seed, rows[1].Reward, rows[2].Reward, rows[3].Reward, rows[4].Reward, best, chance)
		pets, random = pets+best/3, random+chance/3
	}
	if pets <= random {
		t.Fatalf("PETS's later trials average %.2f, the best random episodes %.2f", pets, random)
	}
	// The run directory holds the table, the data and every trial's model.
	buf, err := data.ReadNPZ(filepath.Join(dir, DataFile))
	if err != nil || buf.Len() != 5*50 {
		t.Fatalf("data: %v, %d transitions", err, buf.Len())
	}
	for _, r := range rows[1:] {
		if _, err := os.Stat(filepath.Join(dir, r.Model)); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteReport(dir); err != nil {
		t.Fatal(err)
	}
	if err := report.CheckOffline(filepath.Join(dir, "report.html"), 3); err != nil {
		t.Fatal(err)
	}
}

func TestResumeAfterCancel(t *testing.T) {
	cfg := pointMassConfig()
	cfg.Train.Epochs = 5
	cfg.Planner.Population = 20
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	rows, err := Run(ctx, cfg, Options{Dir: dir, Progress: func(e Event) {
		if e.Phase == "step" && e.Trial == 2 && e.Step == 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || len(rows) != 2 {
		t.Fatalf("cancelled run: %v with %d rows, want context.Canceled after 2 rows", err, len(rows))
	}
	table, _ := os.ReadFile(filepath.Join(dir, TrialsFile))
	var resumed []float64
	// Resumed on other threads (it began on two): the threads are not part
	// of the run.
	// Its trainers and planners on the goroutines Options.Threads gives as
	// each starts (3, 2, 1, 3), not the config's one.
	one := cfg
	one.Threads = 1
	asked := 0
	rows, err = Run(context.Background(), one, Options{Dir: dir, Progress: func(e Event) {
		if e.Phase == "resumed" {
			resumed = append(resumed, e.Row.Reward)
		}
	}, Threads: func() int { asked++; return []int{3, 2, 1, 3}[min(asked, 4)-1] }})
	if err != nil {
		t.Fatal(err)
	}
	if asked != 4 {
		t.Fatalf("Options.Threads asked %d times for the 2 trials left, want 4 (training and planning)", asked)
	}
	// The finished MPC trial is announced, so progress counts its reward.
	if len(resumed) != 1 || resumed[0] != rows[1].Reward {
		t.Fatalf("resumed events %v, want trial 1's reward %v", resumed, rows[1].Reward)
	}
	if len(rows) != 4 || rows[2].Trial != 2 || rows[3].Trial != 3 {
		t.Fatalf("resumed rows %+v", rows)
	}
	// Finished trials are kept as they were.
	after, _ := os.ReadFile(filepath.Join(dir, TrialsFile))
	if !bytes.HasPrefix(after, table) {
		t.Fatalf("the resumed table rewrote finished trials:\n%s\nthen\n%s", table, after)
	}
	// And the resumed run is the uninterrupted one: same rewards, same
	// losses, same data.
	// The reference runs one trial more, for the extension below.
	longer := cfg
	longer.Trials++
	ref, err := Run(context.Background(), longer, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	same := func(rows []Trial, how string) {
		t.Helper()
		for i := range rows {
			a, b := ref[i], rows[i]
			if a.Reward != b.Reward || a.Transitions != b.Transitions || a.Epochs != b.Epochs || !sameNum(a.TrainLoss, b.TrainLoss) {
				t.Fatalf("trial %d: uninterrupted %+v, %s %+v", a.Trial, a, how, b)
			}
		}
	}
	same(rows, "resumed")
	// A finished run asked for one more trial runs only that trial, and is
	// the run that had asked for it from the start (here on three
	// goroutines).
	table, _ = os.ReadFile(filepath.Join(dir, TrialsFile))
	three := longer
	three.Threads = 3
	rows, err = Run(context.Background(), three, Options{Dir: dir})
	if err != nil || len(rows) != len(ref) {
		t.Fatalf("extended run: %v, %d rows, want %d", err, len(rows), len(ref))
	}
	same(rows, "extended")
	if after, _ := os.ReadFile(filepath.Join(dir, TrialsFile)); !bytes.HasPrefix(after, table) {
		t.Fatalf("the extension rewrote finished trials:\n%s\nthen\n%s", table, after)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); !strings.Contains(string(b), fmt.Sprintf("trials: %d\n", longer.Trials)) {
		t.Fatalf("%s after the extension does not ask for %d trials:\n%s", ConfigFile, longer.Trials, b)
	}
	// Another config in the same directory is refused.
	cfg.Seed++
	if _, err := Run(context.Background(), cfg, Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "another config") {
		t.Fatalf("a different config: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	c := pointMassConfig()
	c.Planner.Elites = 500
	c.Train.HoldOut = 0.9
	c.Model.Class = "Q"
	err := c.Validate()
	for _, want := range []string{"planner.elites", "train.hold_out", "model.class"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not name %s", err, want)
		}
	}
	for _, p := range Presets {
		for _, task := range []string{"cartpole-swingup", "halfcheetah", "reacher", "pusher", "pointmass"} {
			c, err := Preset(p, task)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("preset %s for %s: %v", p, task, err)
			}
		}
	}
	if _, err := Preset("slow", "pointmass"); err == nil {
		t.Fatal("unknown preset accepted")
	}
	// The half-cheetah's fine variant gets the half-cheetah's presets.
	for _, p := range Presets {
		hc, _ := Preset(p, "halfcheetah")
		fine, err := Preset(p, "halfcheetah-fine")
		if err != nil || fine.Task != "halfcheetah-fine" {
			t.Fatalf("preset %s for halfcheetah-fine: task %q, %v", p, fine.Task, err)
		}
		fine.Task = hc.Task
		if !reflect.DeepEqual(fine, hc) {
			t.Fatalf("preset %s: halfcheetah-fine %+v, halfcheetah %+v", p, fine, hc)
		}
	}
}

func TestTrialsTableRoundTrip(t *testing.T) {
	rows := []Trial{
		{Trial: 0, Kind: "random", Reward: -80.5, Steps: 50, Transitions: 50, TrainLoss: math.NaN(), HoldOutNLL: math.NaN(), HoldOutMSE: math.NaN()},
		{Trial: 1, Kind: "mpc", Reward: -9.25, Steps: 50, Transitions: 100, Epochs: 30, TrainLoss: 0.5, HoldOutNLL: -3.2, HoldOutMSE: 0.01, TrainSec: 1.5, PlanSec: 2, StepMillis: 40, Model: "models/trial_001.safetensors"},
	}
	var b bytes.Buffer
	if err := WriteTrials(&b, rows); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTrials(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] != rows[1] || got[0].Trial != 0 || !math.IsNaN(got[0].TrainLoss) {
		t.Fatalf("read back %+v", got)
	}
	if _, err := ReadTrials(strings.NewReader("trial,kind\n1,mpc\n")); err == nil {
		t.Fatal("a malformed table was read")
	}
}

// TestOnlineReweighting: with transitions weighted by their distance to
// the best episode so far, PETS trains trial 3's model exactly as the
// dynamics trainer does with those weights — from trial 2's checkpoint and
// optimiser state, on the data trial 2 left — and not as it does without
// them; and it still learns the point mass, beating the best of 1000
// random episodes in its last trial.
func TestOnlineReweighting(t *testing.T) {
	cfg := pointMassConfig()
	cfg.Train.Reweight = "exponential"
	dir := t.TempDir()
	rows, err := Run(context.Background(), cfg, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rewards %.2f %.2f %.2f", rows[1].Reward, rows[2].Reward, rows[3].Reward)
	if best := bestRandom(t, cfg, 3, 1000); rows[3].Reward <= best {
		t.Fatalf("last trial %.2f with re-weighting; the best of 1000 random episodes %.2f", rows[3].Reward, best)
	}

	all, err := data.ReadNPZ(filepath.Join(dir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, rows[2].Transitions)
	for i := range idx {
		idx[i] = i
	}
	buf := all.Subset(idx)
	weights, err := data.Weights(data.Exponential, buf, bestEpisode(buf), 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := dynamics.Load(filepath.Join(dir, rows[3].Model), classic.PointMass)
	if err != nil {
		t.Fatal(err)
	}
	retrain := func(w []float32) []float32 {
		m, err := dynamics.Load(filepath.Join(dir, rows[2].Model), classic.PointMass)
		if err != nil {
			t.Fatal(err)
		}
		tr := dynamics.NewTrainer(m, cfg.Threads)
		defer tr.Close()
		if err := tr.LoadState(optimizerPath(dir, rows[2].Model)); err != nil {
			t.Fatal(err)
		}
		tc := cfg.Train.TrainConfig
		tc.Seed = rng.New(cfg.Seed).Named("train").Child(3).Uint64()
		tc.Weights = w
		if _, err := tr.Train(context.Background(), buf, tc); err != nil {
			t.Fatal(err)
		}
		return m.Net.Params()
	}
	if !slices.Equal(retrain(weights), want.Net.Params()) {
		t.Fatal("trial 3's model is not the one the dynamics trainer makes with the re-weighting's weights")
	}
	if slices.Equal(retrain(nil), want.Net.Params()) {
		t.Fatal("trial 3's model is the one trained without weights")
	}
	cfg.Train.Reweight = "triangular"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "train.reweight") {
		t.Fatalf("unknown weighting: %v", err)
	}
}

func sameNum(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// TestResumesRunOfEarlierVersion: a run directory written before the
// configuration gained keys (testdata/v0run: the fast preset on the point
// mass, trials=1 train.epochs=2, by the version of 2026-11-25) resumes
// with today's same settings instead of being refused as another run.
func TestResumesRunOfEarlierVersion(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{ConfigFile, TrialsFile, DataFile, "models/trial_001.safetensors", "models/trial_001.json", "models/trial_001.adam"} {
		b, err := os.ReadFile(filepath.Join("testdata", "v0run", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	cfg, err := Preset("fast", "pointmass")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Trials, cfg.Train.Epochs = 1, 2
	rows, err := Run(context.Background(), cfg, Options{Dir: dir})
	if err != nil || len(rows) != 2 {
		t.Fatalf("resuming: %v, %d rows", err, len(rows))
	}
	// A change that matters is still refused.
	cfg.Train.Epochs = 3
	if _, err := Run(context.Background(), cfg, Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "another config") {
		t.Fatalf("another config: %v", err)
	}
	// A planner setting the optimiser ignores does not matter.
	cfg.Train.Epochs, cfg.Planner.Gamma = 2, 99
	if _, err := Run(context.Background(), cfg, Options{Dir: dir}); err != nil {
		t.Fatalf("an unused planner setting: %v", err)
	}
}

// referenced is the point mass with a known reference reward.
type referenced struct{ env.Task }

func (referenced) Name() string                       { return "pointmass-referenced" }
func (referenced) ReferenceReward() (float64, string) { return -3.5, "a test's oracle" }

// TestRewardPlotDrawsReference: the reward plot names random and MPC
// trials apart and draws the task's reference reward where it has one.
func TestRewardPlotDrawsReference(t *testing.T) {
	env.Register(referenced{classic.PointMass})
	rows := []Trial{{Trial: 0, Kind: KindRandom, Reward: -40}, {Trial: 1, Kind: KindMPC, Reward: -20}, {Trial: 2, Kind: KindMPC, Reward: -5}}
	for _, c := range []struct {
		task string
		ref  bool
	}{{"pointmass-referenced", true}, {"pointmass", false}, {"no-such-task", false}} {
		f, err := RewardPlot(rows, c.task)
		if err != nil {
			t.Fatal(err)
		}
		svg := string(f.SVG)
		if got := strings.Contains(svg, "reference -4: a test"); got != c.ref {
			t.Errorf("%s: reference line drawn %v, want %v", c.task, got, c.ref)
		}
		if !strings.Contains(svg, "random-action trials") || !strings.Contains(svg, "MPC trials") {
			t.Errorf("%s: legend lacks the trial kinds", c.task)
		}
	}
}
