package study

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
	"time"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env/classic"
	_ "github.com/mismatch-rl/mismatch/env/mujoco" // halfcheetah-fine, a variant
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// tinySpec is a likelihood-vs-reward study on the point mass small enough
// for a unit test: two PETS runs of three trials, two episodes per model.
func tinySpec() Spec {
	planner := planning.Config{Optimizer: planning.MethodCEM, Horizon: 8, Population: 40, Elites: 5, Iterations: 3, Alpha: 0.1, MinVariance: 0.001, Particles: 2, Propagation: planning.TSInf, ReplanEvery: 1}
	petsCfg := pets.Config{Task: "pointmass", RandomTrials: 1, Trials: 3,
		Model:   dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Swish},
		Train:   pets.TrainConfig{TrainConfig: dynamics.TrainConfig{Epochs: 10, BatchSize: 32, LR: 3e-3}},
		Planner: planner}
	return Spec{Kind: LikelihoodReward, Task: "pointmass", Seed: 3, Threads: 1,
		Datasets: []DatasetSpec{
			{Name: "expert", Kind: "expert", Episodes: 1, Threshold: -30, Planner: planner},
			{Name: "on-policy", Kind: "on-policy"},
			{Name: "grid", Kind: "grid", Points: 4},
			{Name: "uniform", Kind: "uniform", Samples: 200},
		},
		Population: PopulationSpec{Kind: "pets", Runs: 2, PETS: petsCfg},
		Evaluation: EvalSpec{Episodes: 2, Planner: planner, Resamples: 200, Level: 0.9},
	}
}

func refPearson(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i] / float64(len(x))
		my += y[i] / float64(len(y))
	}
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

// refRanks gives ranks from 1, ties sharing their average rank.
func refRanks(x []float64) []float64 {
	r := make([]float64, len(x))
	for i := range x {
		less, same := 0, 0
		for j := range x {
			switch {
			case x[j] < x[i]:
				less++
			case x[j] == x[i]:
				same++
			}
		}
		r[i] = float64(less) + float64(same+1)/2
	}
	return r
}

// refKendall is Kendall's τ-b.
func refKendall(x, y []float64) float64 {
	var c, d, tx, ty float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			a, b := x[i]-x[j], y[i]-y[j]
			switch {
			case a == 0 && b == 0:
			case a == 0:
				tx++
			case b == 0:
				ty++
			case a*b > 0:
				c++
			default:
				d++
			}
		}
	}
	return (c - d) / math.Sqrt((c+d+tx)*(c+d+ty))
}

func TestTinyStudyEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var logs []string
	res, err := Run(context.Background(), tinySpec(), Options{Dir: dir, Workers: 2, Log: func(f string, a ...any) { logs = append(logs, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 6 || len(res.Cells) != 6 || len(res.Failed) != 0 {
		t.Fatalf("%d members, %d cells, failed %v", len(res.Members), len(res.Cells), res.Failed)
	}
	for _, c := range res.Cells {
		if len(c.Rewards) != 2 || math.IsNaN(c.RewardMean) || math.IsNaN(c.NLL["grid"]) || math.IsNaN(c.NLL["on-policy"]) {
			t.Fatalf("cell %+v", c)
		}
	}
	if len(res.Correlations) != 4 {
		t.Fatalf("%d correlation rows, want one per dataset", len(res.Correlations))
	}
	// Each correlation, recomputed here from the cells by the textbook
	// formulas.
	byID := map[string]Cell{}
	for _, c := range res.Cells {
		byID[c.ID] = c
	}
	for _, c := range res.Correlations {
		var x, y []float64
		for _, m := range res.Members {
			cell := byID[m.ID]
			x, y = append(x, -cell.NLL[c.Dataset]), append(y, cell.RewardMean)
		}
		p, s, k := refPearson(x, y), refPearson(refRanks(x), refRanks(y)), refKendall(x, y)
		t.Logf("%s: pearson %.4f spearman %.4f kendall %.4f", c.Dataset, p, s, k)
		if c.N != 6 || !c.Pearson.Defined || !c.Spearman.Defined || !c.Kendall.Defined ||
			math.Abs(c.Pearson.Value-p) > 1e-9 || math.Abs(c.Spearman.Value-s) > 1e-9 || math.Abs(c.Kendall.Value-k) > 1e-9 {
			t.Fatalf("%s: pearson %v, spearman %v, kendall %v; recomputed %.6f %.6f %.6f", c.Dataset, c.Pearson, c.Spearman, c.Kendall, p, s, k)
		}
		if c.Pearson.HasCI && !(c.Pearson.Interval.Low <= c.Pearson.Value && c.Pearson.Value <= c.Pearson.Interval.High) {
			t.Fatalf("%s: interval %v leaves out the estimate %.4f", c.Dataset, c.Pearson.Interval, c.Pearson.Value)
		}
	}
	table, err := os.ReadFile(filepath.Join(dir, TableFile))
	if err != nil || !strings.Contains(string(table), "loglik_grid") || strings.Count(string(table), "\n") != 7 {
		t.Fatalf("table %v:\n%s", err, table)
	}
	// Everything is on disk: a rerun evaluates nothing and gives the same
	// table.
	if err := RunCells(context.Background(), Options{Dir: dir, Progress: func(int, int, Cell) { t.Fatal("a finished cell ran again") }}); err != nil {
		t.Fatal(err)
	}
	res2, err := Analyse(dir)
	if err != nil {
		t.Fatal(err)
	}
	table2, _ := os.ReadFile(filepath.Join(dir, TableFile))
	if !bytes.Equal(table, table2) || res2.Correlations[0] != res.Correlations[0] {
		t.Fatal("re-analysis changed the results")
	}
	if _, err := os.Stat(TrajectoryPath(dir, "expert")); err != nil {
		t.Fatal(err)
	}
	// The report: one scatter plot per dataset, inlined.
	if err := Report(dir, res); err != nil {
		t.Fatal(err)
	}
	if err := report.CheckOffline(filepath.Join(dir, "report.html"), 4); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"expert", "on-policy", "grid", "uniform"} {
		if _, err := os.Stat(filepath.Join(dir, "figures", "likelihood-reward-"+d+".png")); err != nil {
			t.Fatal(err)
		}
	}

	// Sharded: prepare once, run the cells as two shards, analyse: the
	// same table as one process.
	dir2 := t.TempDir()
	copyTree(t, filepath.Join(dir, "datasets"), filepath.Join(dir2, "datasets"))
	copyTree(t, filepath.Join(dir, "runs"), filepath.Join(dir2, "runs"))
	if b, err := os.ReadFile(filepath.Join(dir, SpecFile)); err != nil || os.WriteFile(filepath.Join(dir2, SpecFile), b, 0o644) != nil {
		t.Fatal("copying the spec:", err)
	}
	if err := Prepare(context.Background(), tinySpec(), Options{Dir: dir2}); err != nil {
		t.Fatal(err)
	}
	for shard := 0; shard < 2; shard++ {
		if err := RunCells(context.Background(), Options{Dir: dir2, Shard: shard, Shards: 2, Workers: 1}); err != nil {
			t.Fatal(err)
		}
		if shard > 0 {
			break
		}
		// With shard 1 not run, the analysis names each of its cells,
		// by row and shard.
		_, err := Analyse(dir2)
		var mc *MissingCells
		if !errors.As(err, &mc) || mc.Shards != 2 || !slices.Equal(mc.RerunShards(), []int{1}) {
			t.Fatalf("with shard 1 of 2 not run: %v", err)
		}
		members, _ := readPopulation(dir2)
		if len(mc.Cells) != len(members)/2 || mc.Total != len(members) {
			t.Fatalf("%d cells missing of %d, want %d of %d", len(mc.Cells), mc.Total, len(members)/2, len(members))
		}
		for _, c := range mc.Cells {
			if c.Position%2 != 1 || c.Shard != 1 || members[c.Position].ID != c.ID || !strings.Contains(err.Error(), fmt.Sprintf("%s: row %d of population.csv (from 0), shard 1 of 2", c.ID, c.Position)) {
				t.Fatalf("missing cell %+v; error:\n%v", c, err)
			}
		}
	}
	if _, err := Analyse(dir2); err != nil {
		t.Fatal(err)
	}
	table3, _ := os.ReadFile(filepath.Join(dir2, TableFile))
	if !bytes.Equal(dropSeconds(table), dropSeconds(table3)) {
		t.Fatalf("sharded table differs:\n%s\nvs\n%s", table, table3)
	}
	// Another spec in the same directory is refused.
	other := tinySpec()
	other.Seed++
	if err := Prepare(context.Background(), other, Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "another spec") {
		t.Fatalf("another spec: %v", err)
	}
}

// dropSeconds blanks the wall-time column, the one thing that varies.
func dropSeconds(table []byte) []byte {
	lines := strings.Split(string(table), "\n")
	for i, l := range lines {
		f := strings.Split(l, ",")
		if len(f) > 2 {
			f[len(f)-2] = ""
		}
		lines[i] = strings.Join(f, ",")
	}
	return []byte(strings.Join(lines, "\n"))
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSpecValidation(t *testing.T) {
	s := tinySpec()
	s.Datasets = append(s.Datasets, DatasetSpec{Name: "grid", Kind: "grid", Points: 0})
	s.Evaluation.Episodes = 0
	s.Kind = "bogus"
	err := s.Validate()
	for _, want := range []string{"kind", `"grid" is used twice`, "datasets[4].points", "evaluation.episodes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not mention %q", err, want)
		}
	}
	// Cover names an earlier dataset, of grid or uniform data, without
	// low and high.
	for _, c := range []struct {
		d    DatasetSpec
		want string
	}{
		{DatasetSpec{Name: "u", Kind: "uniform", Samples: 10, Cover: "later"}, `datasets[4].cover: is "later"`},
		{DatasetSpec{Name: "u", Kind: "uniform", Samples: 10, Cover: "u"}, `datasets[4].cover: is "u"`},
		{DatasetSpec{Name: "u", Kind: "file", Path: "x.npz", Cover: "expert"}, "only grid and uniform"},
		{DatasetSpec{Name: "u", Kind: "grid", Points: 3, Cover: "expert", Low: []float32{0}, High: []float32{1}}, "give one"},
	} {
		s := tinySpec()
		s.Datasets = append(s.Datasets, c.d, DatasetSpec{Name: "later", Kind: "grid", Points: 2})
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("cover %q on %s data: error %v, want %q", c.d.Cover, c.d.Kind, err, c.want)
		}
	}
	s = tinySpec()
	s.Datasets = append(s.Datasets, DatasetSpec{Name: "u", Kind: "uniform", Samples: 10, Cover: "on-policy"})
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	// The half-cheetah's fine variant gets the half-cheetah's studies.
	for _, kind := range []string{LikelihoodReward, LossReward} {
		for _, p := range Presets {
			hc, _ := Preset(p, kind, "halfcheetah")
			fine, err := Preset(p, kind, "halfcheetah-fine")
			if err != nil || fine.Task != "halfcheetah-fine" || fine.Population.PETS.Task != "halfcheetah-fine" && kind == LikelihoodReward {
				t.Fatalf("preset %s/%s for halfcheetah-fine: task %q (PETS %q), %v", p, kind, fine.Task, fine.Population.PETS.Task, err)
			}
			fine.Task, fine.Population.PETS.Task = hc.Task, hc.Population.PETS.Task
			if !reflect.DeepEqual(fine, hc) {
				t.Fatalf("preset %s/%s: halfcheetah-fine %+v, halfcheetah %+v", p, kind, fine, hc)
			}
		}
	}
	for _, task := range []string{"cartpole-swingup", "pointmass", "halfcheetah", "reacher", "pusher"} {
		for _, kind := range []string{LikelihoodReward, LossReward, Reweight} {
			for _, p := range Presets {
				s, err := Preset(p, kind, task)
				mujoco := task == "halfcheetah" || task == "reacher" || task == "pusher"
				if kind == Reweight && mujoco {
					if err == nil {
						t.Errorf("preset %s/%s/%s: a reweight pool with no box to sample", p, kind, task)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Validate(); err != nil {
					t.Fatalf("preset %s/%s/%s: %v", p, kind, task, err)
				}
				// The MuJoCo tasks' third dataset samples the range
				// the data cover (no 7-point grid in 20-odd
				// dimensions); the pusher's observation sets no state.
				var names []string
				for _, d := range s.Datasets {
					names = append(names, d.Name+":"+d.Kind+":"+d.Cover)
				}
				want := map[string][]string{
					"halfcheetah": {"expert:expert:", "on-policy:on-policy:", "sampled:uniform:on-policy"},
					"reacher":     {"expert:expert:", "on-policy:on-policy:", "sampled:uniform:on-policy"},
					"pusher":      {"expert:expert:", "on-policy:on-policy:"},
				}[task]
				if kind == LikelihoodReward && mujoco && !slices.Equal(names, want) {
					t.Errorf("preset %s/%s/%s: datasets %v, want %v", p, kind, task, names, want)
				}
				if kind == LossReward && task == "halfcheetah" && !slices.Equal(names, []string{"expert:expert:", "sampled:uniform:expert"}) {
					t.Errorf("preset %s/%s/%s: datasets %v", p, kind, task, names)
				}
				// The fast loss-reward study trains where a model can
				// learn the task: on uniform data over the task's box.
				if kind == LossReward && p == "fast" && task == "cartpole-swingup" && (s.Population.Dataset != "uniform" || !slices.Equal(names, []string{"expert:expert:", "grid:grid:", "uniform:uniform:"})) {
					t.Errorf("preset %s/%s/%s: trains on %q, datasets %v", p, kind, task, s.Population.Dataset, names)
				}
				if task != "pointmass" && s.Datasets[0].Planner.Horizon != s.Evaluation.Planner.Horizon {
					t.Errorf("preset %s/%s/%s: the expert plans %d steps ahead, the models %d", p, kind, task, s.Datasets[0].Planner.Horizon, s.Evaluation.Planner.Horizon)
				}
			}
		}
	}
}

// TestLossRewardStudy: a model checkpointed every 3 epochs of 9, each
// checkpoint scored; the report has the reward and loss figures.
func TestLossRewardStudy(t *testing.T) {
	s := tinySpec()
	s.Kind = LossReward
	s.Datasets = s.Datasets[2:] // grid and uniform
	s.Population = PopulationSpec{Kind: "epochs", Dataset: "uniform", Epochs: 9, Every: 3, Seeds: 2,
		Model: dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Swish},
		Train: dynamics.TrainConfig{BatchSize: 16, LR: 3e-3}}
	dir := t.TempDir()
	res, err := Run(context.Background(), s, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 6 || res.Members[2].Epoch != 9 || res.Members[3].Seed != 2 || math.IsNaN(res.Members[0].TrainLoss) {
		t.Fatalf("members %+v", res.Members)
	}
	// Training lowers the loss on the data it trains on, for each seed.
	for _, first := range []int{0, 3} {
		if !(res.Cells[first+2].NLL["uniform"] < res.Cells[first].NLL["uniform"]) {
			t.Fatalf("seed %d: NLL on the training data went from %g to %g", res.Members[first].Seed, res.Cells[first].NLL["uniform"], res.Cells[first+2].NLL["uniform"])
		}
	}
	// The second seed trains another model; the first is the model a
	// one-seed population trains, under the same names.
	load := func(dir, id string) []float32 {
		m, err := dynamics.Load(filepath.Join(dir, "models", id+".safetensors"), classic.PointMass)
		if err != nil {
			t.Fatal(err)
		}
		return m.Net.Params()
	}
	if slices.Equal(load(dir, "epoch0009"), load(dir, "seed2-epoch0009")) {
		t.Fatal("the two seeds trained the same model")
	}
	one := s
	one.Population.Seeds = 0
	dir1 := t.TempDir()
	if err := Prepare(context.Background(), one, Options{Dir: dir1}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(load(dir, "epoch0009"), load(dir1, "epoch0009")) {
		t.Fatal("the first seed's model differs from a one-seed population's")
	}
	// The summary per seed, against the cells.
	sums := res.Epochs()
	if len(sums) != 2 {
		t.Fatalf("%d seeds summarised, want 2", len(sums))
	}
	for k, e := range sums {
		cells := res.Cells[3*k : 3*k+3]
		best, lowest := 0, 0
		for i := range cells {
			if cells[i].RewardMean > cells[best].RewardMean {
				best = i
			}
			if cells[i].NLL["grid"] < cells[lowest].NLL["grid"] {
				lowest = i
			}
		}
		if e.Seed != k+1 || e.BestEpoch != 3*(best+1) || e.BestReward != cells[best].RewardMean ||
			e.LowestNLLEpoch["grid"] != 3*(lowest+1) || e.RewardAtLowest["grid"] != cells[lowest].RewardMean {
			t.Fatalf("seed %d: summary %+v; best reward at checkpoint %d, lowest grid NLL at %d", k+1, e, best, lowest)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, EpochsFile))
	if err != nil || strings.Count(string(b), "\n") != 3 || !strings.HasPrefix(string(b), "seed,best_reward_epoch,best_reward,lowest_nll_epoch_grid,") {
		t.Fatalf("%s: %v\n%s", EpochsFile, err, b)
	}
	if err := Report(dir, res); err != nil {
		t.Fatal(err)
	}
	if err := report.CheckOffline(filepath.Join(dir, "report.html"), 2); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(page), "Best reward against lowest loss") {
		t.Fatal("the report lacks the summary per seed")
	}
}

func TestReweightStudy(t *testing.T) {
	s := tinySpec()
	s.Kind = Reweight
	s.Datasets = []DatasetSpec{s.Datasets[0], {Name: "pool", Kind: "uniform", Samples: 3000}}
	s.Population = PopulationSpec{Kind: "reweight", Pool: "pool", Expert: "expert", Sizes: []int{10, 100}, Bounds: []float64{0.5, 2},
		Weighting: "exponential", Seeds: 2, Steps: 100,
		Model: dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Swish},
		Train: dynamics.TrainConfig{Epochs: 5, BatchSize: 16, LR: 3e-3}}
	dir := t.TempDir()
	res, err := Run(context.Background(), s, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 16 {
		t.Fatalf("%d models, want 2 sizes × 2 bounds × 2 seeds × 2 weightings", len(res.Members))
	}
	for _, m := range res.Members {
		if m.Size > 100 || m.Size < 1 || (m.Bound != 0.5 && m.Bound != 2) {
			t.Fatalf("member %+v", m)
		}
	}
	// Each weighted model differs from its unweighted twin (same tuples,
	// initial weights and batches): the weights were used.
	models := map[string][]float32{}
	for _, m := range res.Members {
		mm, err := dynamics.Load(filepath.Join(dir, m.Model), classic.PointMass)
		if err != nil {
			t.Fatal(err)
		}
		models[strings.Replace(m.ID, "weighted", "plain", 1)+map[bool]string{true: " w"}[m.Weighted]] = mm.Net.Params()
	}
	for id, p := range models {
		if strings.HasSuffix(id, " w") && slices.Equal(p, models[strings.TrimSuffix(id, " w")]) {
			t.Fatalf("%s: the weighted model equals the unweighted one", id)
		}
	}
	g := res.Grid()
	for _, w := range []bool{false, true} {
		for bi := range g.Bounds {
			for si := range g.Sizes {
				if math.IsNaN(g.Mean[w][bi][si]) {
					t.Fatalf("no reward for weighted=%v bound %g size %d", w, g.Bounds[bi], g.Sizes[si])
				}
			}
		}
	}
	// The paired difference, by hand: per seed, the weighted model's
	// episode rewards minus its twin's, averaged over all.
	for bi, b := range g.Bounds {
		for si, n := range g.Sizes {
			var sum float64
			var k int
			for i, m := range res.Members {
				if !m.Weighted || m.Bound != b || !strings.HasPrefix(m.ID, fmt.Sprintf("n%05d-", n)) {
					continue
				}
				twin := slices.IndexFunc(res.Members, func(o Member) bool { return o.ID == strings.Replace(m.ID, "weighted", "plain", 1) })
				for e := range res.Cells[i].Rewards {
					sum += res.Cells[i].Rewards[e] - res.Cells[twin].Rewards[e]
					k++
				}
			}
			want := sum / float64(k)
			iv := g.DiffInterval[bi][si]
			if k != 4 || g.Pairs[bi][si] != 2 || math.Abs(g.Diff[bi][si]-want) > 1e-9*(1+math.Abs(want)) || !g.DiffDefined[bi][si] || !(iv.Low <= want && want <= iv.High) {
				t.Fatalf("bound %g size %d: difference %g in %v (%d pairs), by hand %g over %d episodes", b, n, g.Diff[bi][si], iv, g.Pairs[bi][si], want, k)
			}
		}
	}
	table, err := os.ReadFile(filepath.Join(dir, ReweightFile))
	if err != nil || strings.Count(string(table), "\n") != 5 || !strings.HasPrefix(string(table), "bound,size,unweighted_reward,weighted_reward,difference,difference_low,difference_high,seeds\n") {
		t.Fatalf("%s: %v\n%s", ReweightFile, err, table)
	}
	if err := Report(dir, res); err != nil {
		t.Fatal(err)
	}
	if err := report.CheckOffline(filepath.Join(dir, "report.html"), 4); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(page), "weighted − unweighted on the same start states") {
		t.Fatal("the report does not give the paired differences")
	}
}

// TestShardedPreparation: the population's runs prepared in two shards,
// then an unsharded prepare, give the same population as one prepare.
func TestShardedPreparation(t *testing.T) {
	s := tinySpec()
	dir := t.TempDir()
	for shard := 0; shard < 2; shard++ {
		var log []string
		if err := Prepare(context.Background(), s, Options{Dir: dir, Shard: shard, Shards: 2, Log: func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }}); err != nil {
			t.Fatal(err)
		}
		// A shard says how each trial of its runs went.
		for tr := 1; tr <= s.Population.PETS.Trials; tr++ {
			want := fmt.Sprintf("population: run %d trial %d of %d: reward", shard, tr, s.Population.PETS.Trials)
			if !slices.ContainsFunc(log, func(l string) bool { return strings.HasPrefix(l, want) }) {
				t.Errorf("shard %d logged no %q:\n%s", shard, want, strings.Join(log, "\n"))
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "run_001", "trials.csv")); err != nil {
		t.Fatal("shard 1 did not run PETS run 1:", err)
	}
	if _, err := os.Stat(filepath.Join(dir, PopulationFile)); err == nil {
		t.Fatal("a preparation shard wrote the population table")
	}
	if err := Prepare(context.Background(), s, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	// One process making the runs one at a time, and two at once (each
	// on its share of the threads): the same runs as the shards made.
	for _, workers := range []int{1, 2} {
		one := t.TempDir()
		var log []string
		if err := Prepare(context.Background(), s, Options{Dir: one, Workers: workers, Log: func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{PopulationFile, "runs/run_000/data.npz", "runs/run_001/data.npz", "runs/run_001/models/trial_003.safetensors", "datasets/on-policy.npz"} {
			a, _ := os.ReadFile(filepath.Join(dir, f))
			b, _ := os.ReadFile(filepath.Join(one, f))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("%s, sharded:\n%.600s\none process, %d runs at once:\n%.600s", f, a, workers, b)
			}
		}
		if want := fmt.Sprintf("population: run 1 trial %d of %d: reward", s.Population.PETS.Trials, s.Population.PETS.Trials); !slices.ContainsFunc(log, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("%d runs at once logged no %q", workers, want)
		}
	}
}

// TestShareThreads: runs side by side split the threads; one left alone
// gets them all; none gets fewer than one.
func TestShareThreads(t *testing.T) {
	for _, c := range []struct{ all, running, want int }{
		{2, 2, 1}, {2, 1, 2}, {2, 0, 2}, {8, 3, 2}, {1, 2, 1}, {16, 2, 8},
	} {
		if got := shareThreads(c.all, c.running); got != c.want {
			t.Errorf("shareThreads(%d threads, %d runs) = %d, want %d", c.all, c.running, got, c.want)
		}
	}
}

// TestPopulationRunFails: a PETS run that cannot be made fails the
// preparation with its own error, not the cancellation it causes in the
// run beside it.
func TestPopulationRunFails(t *testing.T) {
	dir := t.TempDir()
	if err := Prepare(context.Background(), tinySpec(), Options{Dir: dir, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	// Run 1's data damaged, run 0 to be made again (it is still running
	// when run 1 fails, and is stopped), and the population table gone.
	bad := filepath.Join(dir, "runs", "run_001", "data.npz")
	if err := os.WriteFile(bad, []byte("PK\x03\x04 not a zip"), 0o644); err != nil || os.Remove(filepath.Join(dir, PopulationFile)) != nil ||
		os.RemoveAll(filepath.Join(dir, "runs", "run_000")) != nil {
		t.Fatal(err)
	}
	err := Prepare(context.Background(), tinySpec(), Options{Dir: dir, Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "population run 1") || !strings.Contains(err.Error(), "data.npz") || errors.Is(err, context.Canceled) {
		t.Fatalf("run 1's data damaged: %v", err)
	}
}

// TestTrainPopulation: models of two classes, two seeds and two epoch
// budgets trained on one dataset, each scored.
func TestTrainPopulation(t *testing.T) {
	s := tinySpec()
	s.Datasets = []DatasetSpec{{Name: "uniform", Kind: "uniform", Samples: 400}, {Name: "grid", Kind: "grid", Points: 3}}
	s.Population = PopulationSpec{Kind: "train", Dataset: "uniform", Classes: []dynamics.Class{dynamics.P, dynamics.DE}, Seeds: 2, Budgets: []int{2, 6},
		Model: dynamics.Config{Class: dynamics.PE, Members: 2, Hidden: []int{16}, Activation: nn.Tanh}, Train: dynamics.TrainConfig{BatchSize: 32, LR: 3e-3}}
	s.Evaluation.Episodes = 1
	res, err := Run(context.Background(), s, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 8 {
		t.Fatalf("%d models, want 2 classes × 2 seeds × 2 budgets", len(res.Members))
	}
	classes := map[string]int{}
	for i, m := range res.Members {
		classes[m.Class]++
		if math.IsNaN(res.Cells[i].NLL["grid"]) || math.IsNaN(res.Cells[i].RewardMean) {
			t.Fatalf("cell %+v", res.Cells[i])
		}
	}
	if classes["P"] != 4 || classes["DE"] != 4 {
		t.Fatalf("classes %v", classes)
	}
	// Per-class correlations join the overall one.
	groups := map[string]bool{}
	for _, c := range res.Correlations {
		groups[c.Group] = true
	}
	if !groups["all"] || !groups["P"] || !groups["DE"] {
		t.Fatalf("correlation groups %v", groups)
	}
}

// TestSpecsOfEarlierVersionLoad: spec.yaml files written before the
// configuration types were shared (testdata/v0: the fast presets as the
// version of 2026-11-25 resolved them) still load, validate, and count as
// the same study as today's presets.
func TestSpecsOfEarlierVersionLoad(t *testing.T) {
	for _, tc := range []struct{ file, kind, task string }{
		{"likelihood-reward.yaml", LikelihoodReward, "pointmass"},
		{"reweight.yaml", Reweight, "pointmass"},
		{"loss-reward.yaml", LossReward, "cartpole-swingup"},
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", "v0", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, SpecFile), raw, 0o644)
		old, err := LoadSpec(dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		now, err := Preset("fast", tc.kind, tc.task)
		if err != nil {
			t.Fatal(err)
		}
		if tc.kind == LossReward {
			// The fast preset has changed its study since (three
			// seeds, trained on uniform data): the earlier spec still
			// loads and validates, and counts as another study, so
			// that a resume with today's preset is refused rather
			// than mixed. A one-seed spec is the same study as one
			// with seeds: 1.
			if bytes.Equal(old.canonical(), now.canonical()) {
				t.Fatalf("%s: the earlier loss-reward spec counts as today's preset", tc.file)
			}
			one := old
			one.Population.Seeds = 1
			if !bytes.Equal(old.canonical(), one.canonical()) {
				t.Fatalf("%s: seeds 0 and 1 count as different studies", tc.file)
			}
			continue
		}
		if !bytes.Equal(old.canonical(), now.canonical()) {
			t.Fatalf("%s: the earlier spec differs from today's preset:\n%s\ntoday:\n%s", tc.file, old.canonical(), now.canonical())
		}
		now.Evaluation.Episodes++
		if bytes.Equal(old.canonical(), now.canonical()) {
			t.Fatalf("%s: a changed spec counts as the same", tc.file)
		}
	}
}

// TestPaperRhoFollowsTaskAndKind: the paper's correlation is looked up by
// the study's task and the dataset's kind, whatever the dataset is named.
func TestPaperRhoFollowsTaskAndKind(t *testing.T) {
	for _, c := range []struct {
		task, name, kind string
		want             float64
		ok               bool
	}{
		{"cartpole-swingup", "mine", "expert", 0.59, true},
		{"cartpole-swingup", "expert", "grid", -0.06, true},
		{"cartpole-swingup", "x", "on-policy", 0.34, true},
		{"halfcheetah", "cheetah-uniform", "uniform", 0.19, true},
		{"halfcheetah", "e", "expert", 0.07, true},
		{"halfcheetah-fine", "on", "on-policy", 0.46, true},
		{"cartpole-swingup", "uniform", "uniform", 0, false},
		{"pointmass", "expert", "expert", 0, false},
	} {
		s := Spec{Task: c.task, Datasets: []DatasetSpec{{Name: "other", Kind: "grid"}, {Name: c.name, Kind: c.kind}}}
		if c.task == "pointmass" {
			s.Datasets[0].Kind = "file"
		}
		got, ok := paperRho(s, c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("%s dataset %q of kind %s: %v %v, want %v %v", c.task, c.name, c.kind, got, ok, c.want, c.ok)
		}
	}
}

// TestStudyMetrics: study metrics ranks every column of every metric over
// a finished study's models against their cells' rewards, caches the
// values beside the cells (a rerun computes nothing; a damaged cache is
// computed again) and writes metrics.csv.
func TestStudyMetrics(t *testing.T) {
	dir := t.TempDir()
	s := tinySpec()
	s.Evaluation.Resamples = 100
	res, err := Run(context.Background(), s, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	o := MetricsOptions{Workers: 2, Log: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}
	lb, err := Metrics(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Models != len(res.Members)-len(res.Failed) || len(logged) != lb.Models {
		t.Fatalf("%d models scored, %d log lines; the study has %d members, %d failed", lb.Models, len(logged), len(res.Members), len(res.Failed))
	}
	cols := map[string]bool{}
	for _, r := range lb.Rows {
		cols[r.Column] = true
	}
	for _, want := range []string{"nll@expert", "mse@grid", "calibration-error@uniform", "open-loop-mse-1@expert", "open-loop-return-error-8@on-policy", "reweighted-nll@grid", "decision-regret@expert", "decision-first-action-distance@expert"} {
		if !cols[want] {
			t.Errorf("no column %s in %v", want, cols)
		}
	}
	// The likelihood column's Spearman is the study's own.
	for _, r := range lb.Rows {
		if r.Column != "nll@expert" {
			continue
		}
		for _, c := range res.Correlations {
			if c.Dataset == "expert" && c.Group == "all" && math.Abs(-r.Spearman.Value-c.Spearman.Value) > 1e-9 {
				t.Errorf("nll@expert Spearman %g, the study's likelihood Spearman %g", r.Spearman.Value, c.Spearman.Value)
			}
		}
	}
	table, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil || strings.Count(string(table), "\n") != len(lb.Rows)+1 {
		t.Fatalf("metrics.csv: %v\n%s", err, table)
	}
	// Accuracy by distance to the expert: five bins per dataset, in
	// order, holding every transition; the top quartile's (here: the best
	// model's) error recomputed by hand for the grid dataset.
	if len(lb.Accuracy) != 5*len(s.Datasets) {
		t.Fatalf("%d accuracy bins for %d datasets", len(lb.Accuracy), len(s.Datasets))
	}
	best, bestR := -1, math.Inf(-1)
	for i, c := range res.Cells {
		if c.Error == "" && c.RewardMean > bestR {
			best, bestR = i, c.RewardMean
		}
	}
	model, err := dynamics.Load(filepath.Join(dir, res.Members[best].Model), classic.PointMass)
	if err != nil {
		t.Fatal(err)
	}
	grid, _ := data.ReadNPZ(DatasetPath(dir, "grid"))
	expert, _ := data.ReadNPZ(DatasetPath(dir, "expert"))
	dist := make([]float64, grid.Len())
	data.Distances(dist, grid, expert, data.Scale(grid), 1)
	errs, _ := model.Errors(grid, 1)
	total := 0
	for _, b := range lb.Accuracy {
		if b.Dataset != "grid" {
			continue
		}
		total += b.Transitions
		var sum float64
		n := 0
		for i, d := range dist {
			if d >= b.Low && d <= b.High {
				sum += errs[i]
				n++
			}
		}
		if n != b.Transitions || math.Abs(sum/float64(n)-b.Top) > 1e-9*b.Top {
			t.Errorf("grid bin %d [%g, %g]: %d transitions, top-quartile MSE %g; by hand %d, %g", b.Bin, b.Low, b.High, b.Transitions, b.Top, n, sum/float64(n))
		}
	}
	if total != grid.Len() {
		t.Errorf("grid bins hold %d of %d transitions", total, grid.Len())
	}
	if raw, err := os.ReadFile(filepath.Join(dir, AccuracyFile)); err != nil || strings.Count(string(raw), "\n") != len(lb.Accuracy)+1 {
		t.Errorf("accuracy.csv: %v\n%s", err, raw)
	}
	// The report: a scatter per metric family, and the accuracy figure.
	families := map[string]bool{}
	for _, r := range lb.Rows {
		if f, _, _ := strings.Cut(r.Column, "@"); r.Spearman.Defined {
			families[f] = true
		}
	}
	if err := report.CheckOffline(filepath.Join(dir, MetricsReport), len(families)+1); err != nil || len(families) < 10 {
		t.Error(err, families)
	}
	// A rerun reads every value from the cache.
	logged = nil
	stamp := map[string]time.Time{}
	for _, m := range res.Members {
		if st, err := os.Stat(MetricsPath(dir, m.ID)); err == nil {
			stamp[m.ID] = st.ModTime()
		}
	}
	os.WriteFile(MetricsPath(dir, res.Members[0].ID), []byte("{not json"), 0o644)
	lb2, err := Metrics(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Members[1:] {
		if st, err := os.Stat(MetricsPath(dir, m.ID)); err == nil && !st.ModTime().Equal(stamp[m.ID]) {
			t.Errorf("%s's cached metrics were computed again", m.ID)
		}
	}
	if raw, _ := os.ReadFile(MetricsPath(dir, res.Members[0].ID)); !strings.Contains(string(raw), "likelihood") {
		t.Errorf("the damaged cache was not computed again: %s", raw)
	}
	// (Only the recomputed member's cost may differ.)
	lb2.Rows[0].Seconds = lb.Rows[0].Seconds
	if len(lb2.Rows) != len(lb.Rows) || lb2.Rows[0] != lb.Rows[0] {
		t.Errorf("a rerun ranks otherwise: %+v vs %+v", lb2.Rows[0], lb.Rows[0])
	}
	if _, err := Metrics(context.Background(), dir, MetricsOptions{Names: []string{"telepathy"}}); err == nil {
		t.Error("an unknown metric was accepted")
	}
	// A spec that asks for metrics gets them from study run; naming an
	// unknown one is refused by name.
	s.Metrics = []string{"likelihood"}
	dir2 := t.TempDir()
	if _, err := Run(context.Background(), s, Options{Dir: dir2}); err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir2, MetricsFile)); err != nil || strings.Contains(string(raw), "open-loop") || !strings.Contains(string(raw), "nll@expert") {
		t.Errorf("metrics.csv of a spec asking for likelihood: %v\n%s", err, raw)
	}
	s.Metrics = []string{"likelihood", "telepathy"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `metrics[1]: "telepathy" is not a metric`) {
		t.Errorf("unknown metric in a spec: %v", err)
	}
}

// TestCoverBoundsByAnotherDataset: uniform data covering the on-policy
// data is built after the population, inside the 1st–99th percentiles of
// the on-policy observations, and reaching close to each of their edges.
func TestCoverBoundsByAnotherDataset(t *testing.T) {
	// The box by hand: 0, 1, …, 100 has percentiles 1 and 99; a constant
	// column is widened by 1% of its value.
	b := data.NewBuffer(2, 1)
	for i := range 101 {
		b.Obs = append(b.Obs, float32(100-i), 5)
		b.Act = append(b.Act, 0)
		b.Next = append(b.Next, 0, 0)
		b.Reward = append(b.Reward, 0)
		b.Terminated = append(b.Terminated, false)
		b.Truncated = append(b.Truncated, false)
	}
	box, err := coverBox(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 4.95}; !slices.Equal(box.Low, want) {
		t.Fatalf("low %v, want %v", box.Low, want)
	}
	if want := []float32{99, 5.05}; !slices.Equal(box.High, want) {
		t.Fatalf("high %v, want %v", box.High, want)
	}

	s := tinySpec()
	s.Datasets = []DatasetSpec{{Name: "on-policy", Kind: "on-policy"}, {Name: "sampled", Kind: "uniform", Samples: 2000, Cover: "on-policy"}}
	dir := t.TempDir()
	if err := Prepare(context.Background(), s, Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	on, err := data.ReadNPZ(DatasetPath(dir, "on-policy"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := data.ReadNPZ(DatasetPath(dir, "sampled"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := coverBox(on)
	if err != nil {
		t.Fatal(err)
	}
	for j := range u.ObsDim {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range u.Len() {
			v := float64(u.Obs[i*u.ObsDim+j])
			lo, hi = min(lo, v), max(hi, v)
		}
		l, h := float64(want.Low[j]), float64(want.High[j])
		// 2000 uniform draws come within 1% of the width of each edge
		// but for a chance of about 2·e⁻²⁰.
		if lo < l || hi > h || lo > l+0.01*(h-l) || hi < h-0.01*(h-l) {
			t.Fatalf("observation %d spans [%g, %g], the on-policy data's 1st–99th percentiles [%g, %g]", j, lo, hi, l, h)
		}
	}
}

// TestReweightSigns: at a size, the bounds with a pair are counted, and of
// those the ones whose interval lies wholly above or below zero.
func TestReweightSigns(t *testing.T) {
	iv := func(lo, hi float64) stats.Interval { return stats.Interval{Low: lo, High: hi} }
	g := ReweightGrid{Bounds: []float64{0.5, 1, 2, 4},
		Diff:         [][]float64{{3}, {-4}, {1}, {math.NaN()}},
		DiffInterval: [][]stats.Interval{{iv(1, 5)}, {iv(-6, -2)}, {iv(-1, 3)}, {iv(0, 0)}},
		DiffDefined:  [][]bool{{true}, {true}, {true}, {false}}}
	if pairs, above, below := g.Signs(0); pairs != 3 || above != 1 || below != 1 {
		t.Fatalf("pairs %d, above %d, below %d; want 3, 1, 1", pairs, above, below)
	}
	g.DiffDefined[0][0] = false // no interval: neither above nor below
	if _, above, _ := g.Signs(0); above != 0 {
		t.Fatalf("a difference without an interval counted as above zero")
	}
}
