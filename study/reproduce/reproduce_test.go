package reproduce

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mismatch-rl/mismatch/env/classic"
	_ "github.com/mismatch-rl/mismatch/env/mujoco"
	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/study"
	"github.com/mismatch-rl/mismatch/study/stats"
)

func TestCorrelationVerdict(t *testing.T) {
	c := func(v, lo, hi float64) study.Correlation {
		return study.Correlation{Pearson: study.Stat{Value: v, Interval: stats.Interval{Low: lo, High: hi}, Defined: true, HasCI: true}}
	}
	for _, tc := range []struct {
		paper float64
		c     study.Correlation
		want  string
	}{
		{0.59, c(0.5, 0.3, 0.7), Reproduced},
		{0.59, c(0.4, 0.35, 0.45), Partly},      // outside, 0.19 away
		{0.59, c(0.2, 0.1, 0.3), NotReproduced}, // outside, 0.39 away
		{-0.06, c(0.1, -0.1, 0.3), Reproduced},
		{0.59, study.Correlation{}, NotReproduced}, // undefined
	} {
		if got, why := correlationVerdict(tc.paper, tc.c); got != tc.want || why == "" {
			t.Errorf("paper %.2f, ours %+v: %s (%s), want %s", tc.paper, tc.c.Pearson, got, why, tc.want)
		}
	}
}

func TestAdversaryVerdict(t *testing.T) {
	for _, tc := range []struct {
		json, want, ours string
	}{
		{`{"before": {"nll": -4.8, "reward_mean": 176, "reward_std": 2}, "after": {"nll": -4.81, "reward_mean": 98, "reward_std": 30}, "evaluations": 60}`, Reproduced, "(-44%)"},
		{`{"before": {"nll": -4.8, "reward_mean": 176}, "after": {"nll": -4.8, "reward_mean": 150}}`, Partly, "(-15%)"},
		{`{"before": {"nll": -4.8, "reward_mean": 176}, "after": {"nll": -4.7, "reward_mean": 50}}`, NotReproduced, "NLL -4.8000 → -4.7000"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "attack.json"), []byte(tc.json), 0o644)
		f, err := adversary(dir)
		if err != nil || f.Verdict != tc.want || !strings.Contains(f.Ours, tc.ours) {
			t.Errorf("%s: %s (%q, %v), want %s and %q", tc.json, f.Verdict, f.Ours, err, tc.want, tc.ours)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "attack.json"), []byte(`{"before": `), 0o644)
	if _, err := adversary(dir); err == nil || !strings.Contains(err.Error(), "attack.json") {
		t.Errorf("a corrupt attack.json: %v", err)
	}
}

func TestAccuracyVerdict(t *testing.T) {
	head := "dataset,bin,distance_low,distance_high,transitions,top_quartile_mse,bottom_quartile_mse\n"
	for _, tc := range []struct{ csv, want, ours string }{
		// Worst quarter 4× the best's error near the expert, 1.5× far.
		{"expert,1,0,1,10,0.01,0.04\nexpert,2,1,2,10,0.05,0.05\nexpert,3,1,2,10,0.02,0.03\ngrid,1,0,1,10,0.1,0.3\ngrid,2,1,9,10,0.2,0.2\n", Reproduced, "expert: the worst quarter's one-step error is 4× the best quarter's nearest the expert, 1.5× farthest"},
		{"expert,1,0,1,10,0.01,0.04\nexpert,2,1,2,10,0.01,0.08\n", Partly, "8× farthest"},
		{"expert,1,0,1,10,0.04,0.01\nexpert,2,1,2,10,0.04,0.01\n", NotReproduced, "0.25×"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, study.AccuracyFile), []byte(head+tc.csv), 0o644)
		f, err := accuracy(dir)
		if err != nil || f.Verdict != tc.want || !strings.Contains(f.Ours, tc.ours) {
			t.Errorf("%s: %s (%q, %v), want %s and %q", tc.csv, f.Verdict, f.Ours, err, tc.want, tc.ours)
		}
	}
	// A study without study metrics: not run, and says what writes it.
	f, err := accuracy(t.TempDir())
	if err != nil || f.Verdict != NotRun || !strings.Contains(f.Why, "study metrics") {
		t.Errorf("no accuracy.csv: %+v, %v", f, err)
	}
}

// TestReproduceStudies: small real studies of each kind laid out as the
// script lays them out; every finding that ran gets a verdict and its
// figure, the half-cheetah study (absent) is "not run", and the page and
// the Markdown hold them all.
func TestReproduceStudies(t *testing.T) {
	root := t.TempDir()
	src := Layout(root)
	ctx := context.Background()

	lr, err := study.Preset("fast", study.LikelihoodReward, "cartpole-swingup")
	if err != nil {
		t.Fatal(err)
	}
	small := lr.Population.PETS.Planner
	small.Population, small.Elites, small.Iterations, small.Horizon, small.Particles = 20, 4, 2, 8, 1
	lr.Datasets[0].Episodes, lr.Datasets[0].Threshold, lr.Datasets[0].Planner = 1, -1e300, small
	lr.Datasets[2].Points = 2
	p := &lr.Population.PETS
	lr.Population.Runs, p.Trials, p.Train.Epochs, p.Model.Hidden, p.Model.Members, p.Planner = 2, 2, 2, []int{8}, 2, small
	lr.Evaluation.Episodes, lr.Evaluation.Planner, lr.Evaluation.Resamples = 1, small, 50
	if _, err := study.Run(ctx, lr, study.Options{Dir: src.CartpoleLikelihood}); err != nil {
		t.Fatal(err)
	}
	if err := runReport(src.CartpoleLikelihood); err != nil {
		t.Fatal(err)
	}

	loss, err := study.Preset("fast", study.LossReward, "pointmass")
	if err != nil {
		t.Fatal(err)
	}
	pm := loss.Evaluation.Planner
	pm.Population, pm.Elites, pm.Iterations, pm.Particles = 20, 4, 2, 1
	loss.Datasets[0].Episodes, loss.Datasets[0].Planner = 1, pm
	loss.Datasets[1].Points = 3
	loss.Population.Epochs, loss.Population.Every, loss.Population.Seeds, loss.Population.Model.Hidden = 4, 2, 2, []int{8}
	loss.Evaluation.Episodes, loss.Evaluation.Planner = 2, pm
	if _, err := study.Run(ctx, loss, study.Options{Dir: src.LossReward}); err != nil {
		t.Fatal(err)
	}
	if err := runReport(src.LossReward); err != nil {
		t.Fatal(err)
	}

	fs, err := Assemble(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 13 {
		t.Fatalf("%d findings, want 13", len(fs))
	}
	byName := map[string]Finding{}
	for _, f := range fs {
		byName[f.Name] = f
	}
	for _, name := range []string{"Likelihood vs reward, cartpole-swingup, expert data", "Likelihood vs reward, cartpole-swingup, grid data", "Loss vs reward over training epochs"} {
		f := byName[name]
		if f.Verdict == NotRun || f.Ours == "" || f.Why == "" || len(f.Figures) == 0 || !strings.Contains(f.Command, "study") && f.Command != "unknown" {
			t.Errorf("%s: %+v", name, f)
		}
	}
	if f := byName["Likelihood vs reward, cartpole-swingup, expert data"]; !strings.Contains(f.Ours, "4 models × 1 episodes") || len(f.Figures) != 1 || f.Figures[0].Name != "likelihood-reward-expert" {
		t.Errorf("expert finding: %q, %d figures", f.Ours, len(f.Figures))
	}
	// Each dataset's finding carries that dataset's correlation.
	res, err := study.Analyse(src.CartpoleLikelihood)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Correlations {
		f := byName["Likelihood vs reward, cartpole-swingup, "+c.Dataset+" data"]
		if c.Group == "all" && !strings.Contains(f.Ours, "ρ = "+study.FormatStat(c.Pearson)+",") {
			t.Errorf("%s: %q, the study's ρ is %s", f.Name, f.Ours, study.FormatStat(c.Pearson))
		}
	}
	if f := byName["Loss vs reward over training epochs"]; !strings.Contains(f.Ours, "seed 2:") {
		t.Errorf("loss finding: %q", f.Ours)
	}
	for _, name := range []string{"Likelihood vs reward, halfcheetah, expert data", "Likelihood vs reward, halfcheetah-fine, uniform data", "Re-weighted training", "Adversarial model (CMA-ES on the last layer)"} {
		if f := byName[name]; f.Verdict != NotRun || !strings.Contains(f.Why, "does not exist") {
			t.Errorf("%s: %+v, want not run", name, f)
		}
	}
	// The cartpole study has no metrics yet: not run, with the reason.
	if f := byName["Where good models are accurate"]; f.Verdict != NotRun || !strings.Contains(f.Why, "study metrics") {
		t.Errorf("accuracy: %+v", f)
	}

	page := filepath.Join(root, "reproduction.html")
	if err := WritePage(page, fs); err != nil {
		t.Fatal(err)
	}
	figs := 0
	for _, f := range fs {
		figs += len(f.Figures)
	}
	if err := report.CheckOffline(page, figs); err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, fs); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(md.String(), "\n## "); n != 13 || !strings.Contains(md.String(), "| Loss vs reward over training epochs |") {
		t.Fatalf("%d sections in the Markdown:\n%s", n, md.String())
	}

	// A study directory that is there but unfinished is not run, with the
	// reason; a finished study of another kind where one is expected is an
	// error.
	os.MkdirAll(src.Reweight, 0o755)
	if fs, err := Assemble(src); err != nil || !strings.Contains(fs[12].Why, "holds no reweight.csv") {
		t.Fatalf("an unfinished reweight study: %v, %+v", err, fs[12])
	}
	src.CheetahLikelihood = src.CartpoleLikelihood
	if _, err := Assemble(src); err == nil || !strings.Contains(err.Error(), "want likelihood-reward on halfcheetah") {
		t.Fatalf("a cartpole study given as the half-cheetah one: %v", err)
	}
}

// runReport writes a finished study's figures, as study run does.
func runReport(dir string) error {
	res, err := study.Analyse(dir)
	if err != nil {
		return err
	}
	return study.Report(dir, res)
}

// TestEpochVerdict: a seed counts when the checkpoint of lowest NLL on the
// held-out dataset earns less than the best by more than two standard
// errors of the best's episodes.
func TestEpochVerdict(t *testing.T) {
	res := func(gaps ...float64) *study.Results {
		r := &study.Results{Datasets: []string{"train", "held"}}
		r.Spec.Population.Dataset = "train"
		for seed, gap := range gaps {
			// Epoch 1: lowest held-out NLL; epoch 2: best reward, its
			// two episodes 100 ± 1 (standard error 0.71).
			for e, c := range []study.Cell{
				{RewardMean: 100 - gap, RewardStd: 1, Rewards: []float64{99 - gap, 101 - gap}, NLL: map[string]float64{"train": 2, "held": 1}},
				{RewardMean: 100, RewardStd: 1, Rewards: []float64{99, 101}, NLL: map[string]float64{"train": 1, "held": 2}},
			} {
				r.Members = append(r.Members, study.Member{Seed: seed + 1, Epoch: e + 1})
				r.Cells = append(r.Cells, c)
			}
		}
		return r
	}
	for _, tc := range []struct {
		gaps []float64
		want string
	}{
		{[]float64{5, 5, 0.5}, Reproduced}, // 2 of 3 seeds beyond 1.41
		{[]float64{5, 0.5, 0.5}, Partly},
		{[]float64{1, 0.5, 0}, NotReproduced},
	} {
		var f Finding
		judgeEpochs(&f, res(tc.gaps...))
		if f.Verdict != tc.want || !strings.Contains(f.Ours, "lowest held NLL at epoch 1") || strings.Contains(f.Ours, "lowest train NLL") {
			t.Errorf("gaps %v: %s (%s; %s), want %s", tc.gaps, f.Verdict, f.Ours, f.Why, tc.want)
		}
	}
	// Two held-out datasets: the verdict follows the one on which most
	// seeds count, and both counts are given. On "far" the lowest NLL is
	// always at the best epoch.
	r := res(5, 5, 0.5)
	r.Datasets = append(r.Datasets, "far")
	for i := range r.Cells {
		r.Cells[i].NLL = map[string]float64{"train": r.Cells[i].NLL["train"], "held": r.Cells[i].NLL["held"], "far": r.Cells[i].NLL["train"]}
	}
	var f Finding
	judgeEpochs(&f, r)
	if f.Verdict != Reproduced || !strings.Contains(f.Why, "held 2 of 3, far 0 of 3") || !strings.Contains(f.Why, "follows held") {
		t.Errorf("two held-out datasets: %s (%s)", f.Verdict, f.Why)
	}
}

func TestOriginSumsInvocationsAndFlagsKilledOnes(t *testing.T) {
	rec := func(start int, wall float64, status string) provenance.Record {
		return provenance.Record{Command: []string{"mismatch", "study", "run"}, Start: time.Unix(int64(start), 0), WallSec: wall, Status: status, CPU: "cpu", Cores: 2}
	}
	for _, c := range []struct {
		name string
		recs []provenance.Record
		want string
	}{
		{"finished", []provenance.Record{rec(1, 60, "stopped"), rec(2, 30, "done")}, "1m30s over 2 invocation(s), cpu, 2 cores"},
		{"one killed", []provenance.Record{rec(1, 0, "running"), rec(2, 30, "done")}, "at least 30s over 2 invocation(s), cpu, 2 cores (1 killed before recording its end)"},
	} {
		dir := t.TempDir()
		for _, r := range c.recs {
			if err := provenance.Save(dir, r); err != nil {
				t.Fatal(err)
			}
		}
		var f Finding
		origin(&f, dir)
		if f.Wall != c.want || f.Command != "mismatch study run" {
			t.Errorf("%s: wall %q, command %q; want %q", c.name, f.Wall, f.Command, c.want)
		}
	}
}
