package study

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/rng"
)

// Member is one model of a population: one cell of the study.
type Member struct {
	ID    string // unique, usable as a file name
	Model string // checkpoint; relative paths are to the study directory
	Class string // P, PE, D or DE
	// Where it comes from: a PETS run and trial (with the reward it
	// earned there), or a training seed and epoch count.
	Run         string
	Trial       int
	TrainReward float64 // NaN when not from a PETS trial
	Seed        int
	Epoch       int
	TrainLoss   float64 // NaN when not recorded
	// Of reweight populations: the dataset's size and distance bound,
	// and whether it was trained with weights.
	Size     int
	Bound    float64
	Weighted bool
}

// PopulationFile lists a prepared population.
const PopulationFile = "population.csv"

// runProgress logs population run r's trials as they finish (and those
// found on disk), so that a run of many hours shows where it is.
func runProgress(logf func(string, ...any), r int) func(pets.Event) {
	return func(e pets.Event) {
		switch e.Phase {
		case "trial":
			if e.Row.Kind == pets.KindRandom {
				logf("population: run %d random trial: reward %.2f", r, e.Row.Reward)
				return
			}
			logf("population: run %d trial %d of %d: reward %.2f (model trained in %.0fs)", r, e.Row.Trial, e.Trials, e.Row.Reward, e.Row.TrainSec)
		case "resumed":
			logf("population: run %d trial %d of %d found on disk: reward %.2f", r, e.Row.Trial, e.Trials, e.Row.Reward)
		}
	}
}

// preparePopulation builds or finds the population's models, returning the
// members and, for PETS populations, the run directories. Up to workers
// PETS runs go at once (below 1: one per CPU).
func preparePopulation(ctx context.Context, s Spec, task env.Task, dir string, workers int, logf func(string, ...any)) ([]Member, []string, error) {
	p := s.Population
	switch p.Kind {
	case "pets":
		if err := petsRuns(ctx, s, dir, workers, logf); err != nil {
			return nil, nil, err
		}
		var dirs []string
		for r := 0; r < p.Runs; r++ {
			dirs = append(dirs, runDir(r))
		}
		ms, err := runMembers(dir, dirs, true)
		abs := make([]string, len(dirs))
		for i, d := range dirs {
			abs[i] = filepath.Join(dir, d)
		}
		return ms, abs, err
	case "runs":
		ms, err := runMembers(dir, p.Dirs, false)
		return ms, p.Dirs, err
	case "train":
		ms, err := trainMembers(ctx, s, task, dir, logf)
		return ms, nil, err
	case "epochs":
		ms, err := epochMembers(ctx, s, task, dir, logf)
		return ms, nil, err
	case "reweight":
		ms, err := reweightMembers(ctx, s, task, dir, logf)
		return ms, nil, err
	}
	return nil, nil, fmt.Errorf("study: population kind %q", p.Kind)
}

// petsRuns makes (or resumes) the population's PETS runs, up to workers at
// once, the study's threads shared among the runs in progress: two runs on
// one goroutine each keep two cores busier than one run on two, whose
// row-wise work at the presets' sizes runs on one core while the other
// waits; a run left alone plans its next trials on all of them. A run's
// numbers do not depend on its thread count (the packed network passes
// give a row the same result however rows are split, and training and
// noise are split in fixed chunks), so they are those of runs made one at
// a time. The first run to fail stops the others.
func petsRuns(ctx context.Context, s Spec, dir string, workers int, logf func(string, ...any)) error {
	runs := s.Population.Runs
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, runs)
	threads := s.Threads
	var running atomic.Int32
	var runThreads func() int
	if workers > 1 {
		if threads < 1 {
			threads = runtime.GOMAXPROCS(0)
		}
		all := threads
		threads = shareThreads(threads, workers)
		// A run's trials train and plan on the threads the runs in
		// progress leave it: all of them once it is alone (the others
		// done, or fewer runs than workers left).
		runThreads = func() int { return shareThreads(all, int(running.Load())) }
		var mu sync.Mutex
		inner := logf
		logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			inner(format, args...)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pool := parallel.New(workers)
	defer pool.Close()
	errs := make([]error, runs)
	pool.Run(runs, func(_, r int) {
		if ctx.Err() != nil {
			errs[r] = ctx.Err()
			return
		}
		cfg := petsRunConfig(s, r)
		cfg.Threads = threads
		logf("population: PETS run %d of %d", r+1, runs)
		running.Add(1)
		defer running.Add(-1)
		if _, err := pets.Run(ctx, cfg, pets.Options{Dir: filepath.Join(dir, runDir(r)), Progress: runProgress(logf, r), Threads: runThreads}); err != nil {
			errs[r] = fmt.Errorf("population run %d: %w", r, err)
			cancel()
		}
	})
	// A run's own failure rather than the cancellations it caused in the
	// others (the lowest-numbered, if several failed); the caller's own
	// cancellation where that was the cause.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// shareThreads is one run's share of all threads with running runs in
// progress: at least one.
func shareThreads(all, running int) int { return max(all/max(running, 1), 1) }

// petsRunConfig is the configuration of the population's r-th PETS run.
func petsRunConfig(s Spec, r int) pets.Config {
	cfg := s.Population.PETS
	cfg.Task, cfg.Seed, cfg.Threads = s.Task, s.Seed+uint64(r)+1, s.Threads
	return cfg
}

// runDir is the r-th PETS run's directory, relative to the study's.
func runDir(r int) string { return filepath.Join("runs", fmt.Sprintf("run_%03d", r)) }

// runMembers lists every MPC trial's model of PETS run directories; inside
// says whether the directories are relative to the study directory.
func runMembers(dir string, runs []string, inside bool) ([]Member, error) {
	var ms []Member
	for i, r := range runs {
		rd := r
		if inside {
			rd = filepath.Join(dir, r)
		}
		f, err := os.Open(filepath.Join(rd, pets.TrialsFile))
		if err != nil {
			return nil, err
		}
		rows, err := pets.ReadTrials(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rd, err)
		}
		cls := "?"
		if cfgRaw, err := os.ReadFile(filepath.Join(rd, pets.ConfigFile)); err == nil {
			cls = classFromConfig(cfgRaw)
		}
		for _, row := range rows {
			if row.Kind != pets.KindMPC {
				continue
			}
			model := filepath.Join(r, row.Model)
			if !inside {
				model = filepath.Join(rd, row.Model)
				if abs, err := filepath.Abs(model); err == nil {
					model = abs
				}
			}
			ms = append(ms, Member{ID: fmt.Sprintf("run%03d-trial%03d", i, row.Trial), Model: model, Class: cls,
				Run: r, Trial: row.Trial, TrainReward: row.Reward, Epoch: row.Epochs, TrainLoss: row.TrainLoss})
		}
	}
	return ms, nil
}

func trainModel(s Spec, task env.Task, class dynamics.Class, seed uint64) (*dynamics.Model, *dynamics.Trainer, error) {
	m, err := dynamics.New(task, s.Population.Model.WithClass(class), seed)
	if err != nil {
		return nil, nil, err
	}
	return m, dynamics.NewTrainer(m, s.Threads), nil
}

func trainMembers(ctx context.Context, s Spec, task env.Task, dir string, logf func(string, ...any)) ([]Member, error) {
	p := s.Population
	buf, err := data.ReadNPZ(DatasetPath(dir, p.Dataset))
	if err != nil {
		return nil, err
	}
	var ms []Member
	for _, class := range p.Classes {
		for seed := 1; seed <= p.Seeds; seed++ {
			for _, budget := range p.Budgets {
				id := fmt.Sprintf("%s-seed%d-epochs%d", class, seed, budget)
				rel := filepath.Join("models", id+".safetensors")
				m := Member{ID: id, Model: rel, Class: string(class), Seed: seed, Epoch: budget, TrainReward: math.NaN(), TrainLoss: math.NaN()}
				if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
					ms = append(ms, m)
					continue
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				model, tr, err := trainModel(s, task, class, rng.New(s.Seed).Named(id).Uint64())
				if err != nil {
					return nil, err
				}
				res, err := tr.Train(ctx, buf, trainConfig(s, budget, id, nil))
				tr.Close()
				if err != nil {
					return nil, fmt.Errorf("training %s: %w", id, err)
				}
				m.TrainLoss = res.TrainLoss
				logf("population: trained %s, loss %.4g", id, res.TrainLoss)
				if err := model.Save(filepath.Join(dir, rel)); err != nil {
					return nil, err
				}
				ms = append(ms, m)
			}
		}
	}
	return ms, nil
}

func trainConfig(s Spec, epochs int, id string, onEpoch func(dynamics.EpochStats) error) dynamics.TrainConfig {
	t := s.Population.Train
	t.Epochs = epochs
	t.Seed = rng.New(s.Seed).Named("train " + id).Uint64()
	t.OnEpoch = onEpoch
	return t
}

// epochMembers trains one model per seed (Seeds of them, at least one),
// saving it every Every epochs. Training is deterministic, so an
// interrupted population is simply trained again. The first seed's models
// keep the names of populations made before seeds were counted.
func epochMembers(ctx context.Context, s Spec, task env.Task, dir string, logf func(string, ...any)) ([]Member, error) {
	p := s.Population
	class := p.Model.Class
	seeds := max(p.Seeds, 1)
	var ms []Member
	for seed := 1; seed <= seeds; seed++ {
		for e := p.Every; e <= p.Epochs; e += p.Every {
			id := fmt.Sprintf("epoch%04d", e)
			if seed > 1 {
				id = fmt.Sprintf("seed%d-epoch%04d", seed, e)
			}
			ms = append(ms, Member{ID: id, Model: filepath.Join("models", id+".safetensors"),
				Class: string(class), Seed: seed, Epoch: e, TrainReward: math.NaN(), TrainLoss: math.NaN()})
		}
	}
	if prev, err := readPopulation(dir); err == nil && len(prev) == len(ms) {
		return prev, nil
	}
	buf, err := data.ReadNPZ(DatasetPath(dir, p.Dataset))
	if err != nil {
		return nil, err
	}
	per := len(ms) / seeds
	for seed := 1; seed <= seeds; seed++ {
		name := "epochs"
		if seed > 1 {
			name = fmt.Sprintf("epochs seed %d", seed)
		}
		own := ms[(seed-1)*per : seed*per]
		if err := trainCheckpoints(ctx, s, task, dir, buf, name, own, logf); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// trainCheckpoints trains one model from the seed that name draws, saving
// it at each member's epoch and recording its training loss there.
func trainCheckpoints(ctx context.Context, s Spec, task env.Task, dir string, buf *data.Buffer, name string, ms []Member, logf func(string, ...any)) error {
	model, tr, err := trainModel(s, task, s.Population.Model.Class, rng.New(s.Seed).Named(name).Uint64())
	if err != nil {
		return err
	}
	defer tr.Close()
	next := 0
	_, err = tr.Train(ctx, buf, trainConfig(s, s.Population.Epochs, name, func(st dynamics.EpochStats) error {
		if next < len(ms) && st.Epoch == ms[next].Epoch {
			ms[next].TrainLoss = st.TrainLoss
			if err := model.Save(filepath.Join(dir, ms[next].Model)); err != nil {
				return err
			}
			logf("population: %s, epoch %d, training loss %.4g", name, st.Epoch, st.TrainLoss)
			next++
		}
		return nil
	}))
	return err
}

// reweightMembers trains, for every size S, bound ε and seed, a model on S
// tuples of the pool within ε of the expert trajectory, with and without
// weights falling from 1 on the trajectory to 0 at ε. A bound with no
// tuples within it gives no models.
func reweightMembers(ctx context.Context, s Spec, task env.Task, dir string, logf func(string, ...any)) ([]Member, error) {
	p := s.Population
	pool, err := data.ReadNPZ(DatasetPath(dir, p.Pool))
	if err != nil {
		return nil, err
	}
	traj, err := data.ReadNPZ(TrajectoryPath(dir, p.Expert))
	if err != nil {
		return nil, err
	}
	dist := make([]float64, pool.Len())
	if err := data.Distances(dist, pool, traj, data.Scale(pool), s.Threads); err != nil {
		return nil, err
	}
	class := p.Model.Class
	var ms []Member
	for _, bound := range p.Bounds {
		var near []int
		for i, d := range dist {
			if d < bound {
				near = append(near, i)
			}
		}
		logf("population: %d of %d pool tuples within %g of the expert trajectory", len(near), pool.Len(), bound)
		if len(near) == 0 {
			continue
		}
		for _, size := range p.Sizes {
			for seed := 1; seed <= p.Seeds; seed++ {
				src := rng.New(s.Seed).Named(fmt.Sprintf("sample %d %g %d", size, bound, seed))
				pick := append([]int(nil), near...)
				src.Shuffle(pick)
				pick = pick[:min(size, len(pick))]
				slices.Sort(pick)
				sub := pool.Subset(pick)
				w := make([]float32, len(pick))
				for i, k := range pick {
					x, _ := data.Weight(p.Weighting, dist[k], bound)
					// A tuple at the bound itself would weigh 0; keep a
					// trace so every sampled tuple counts a little.
					w[i] = float32(max(x, 1e-3))
				}
				// Small datasets get more epochs, so that every model
				// takes at least Steps gradient steps.
				batches := (len(pick) + p.Train.BatchSize - 1) / p.Train.BatchSize
				epochs := max(p.Train.Epochs, (p.Steps+batches-1)/batches)
				for _, weighted := range []bool{false, true} {
					eps := strings.ReplaceAll(strconv.FormatFloat(bound, 'g', -1, 64), ".", "p")
					id := fmt.Sprintf("n%05d-eps%s-%s-seed%d", size, eps, map[bool]string{false: "plain", true: "weighted"}[weighted], seed)
					rel := filepath.Join("models", id+".safetensors")
					m := Member{ID: id, Model: rel, Class: string(class), Seed: seed, Epoch: epochs, TrainReward: math.NaN(), TrainLoss: math.NaN(),
						Size: len(pick), Bound: bound, Weighted: weighted}
					if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
						ms = append(ms, m)
						continue
					}
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					// The same initial weights and batches for both.
					model, tr, err := trainModel(s, task, class, rng.New(s.Seed).Named(fmt.Sprintf("init %d %g %d", size, bound, seed)).Uint64())
					if err != nil {
						return nil, err
					}
					tc := trainConfig(s, epochs, fmt.Sprintf("%d %g %d", size, bound, seed), nil)
					if weighted {
						tc.Weights = w
					}
					res, err := tr.Train(ctx, sub, tc)
					tr.Close()
					if err != nil {
						return nil, fmt.Errorf("training %s: %w", id, err)
					}
					m.TrainLoss = res.TrainLoss
					if err := model.Save(filepath.Join(dir, rel)); err != nil {
						return nil, err
					}
					logf("population: trained %s (%d tuples, %d epochs)", id, len(pick), epochs)
					ms = append(ms, m)
				}
			}
		}
	}
	return ms, nil
}

func classFromConfig(raw []byte) string {
	var c struct {
		Model dynamics.Config `yaml:"model"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil || c.Model.Validate() != nil {
		return "?"
	}
	return string(c.Model.Class)
}

var populationHeader = []string{"id", "model", "class", "run", "trial", "train_reward", "seed", "epoch", "train_loss", "size", "bound", "weighted"}

func writePopulation(dir string, ms []Member) error {
	return safefile.Write(filepath.Join(dir, PopulationFile), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(populationHeader)
		for _, m := range ms {
			cw.Write([]string{m.ID, m.Model, m.Class, m.Run, strconv.Itoa(m.Trial), fmtNum(m.TrainReward),
				strconv.Itoa(m.Seed), strconv.Itoa(m.Epoch), fmtNum(m.TrainLoss), strconv.Itoa(m.Size), fmtNum(m.Bound), strconv.FormatBool(m.Weighted)})
		}
		cw.Flush()
		return cw.Error()
	})
}

func readPopulation(dir string) ([]Member, error) {
	f, err := os.Open(filepath.Join(dir, PopulationFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", PopulationFile, err)
	}
	if len(recs) == 0 || len(recs[0]) != len(populationHeader) {
		return nil, fmt.Errorf("%s: not a population table", PopulationFile)
	}
	var ms []Member
	seen := map[string]bool{}
	for i, r := range recs[1:] {
		trial, e1 := strconv.Atoi(r[4])
		seed, e2 := strconv.Atoi(r[6])
		epoch, e3 := strconv.Atoi(r[7])
		tr, e4 := parseNum(r[5])
		tl, e5 := parseNum(r[8])
		size, e6 := strconv.Atoi(r[9])
		bound, e7 := parseNum(r[10])
		weighted, e8 := strconv.ParseBool(r[11])
		for _, e := range []error{e1, e2, e3, e4, e5, e6, e7, e8} {
			if e != nil {
				return nil, fmt.Errorf("%s row %d: %w", PopulationFile, i+1, e)
			}
		}
		if !validName(r[0]) || seen[r[0]] {
			return nil, fmt.Errorf("%s row %d: bad or repeated id %q", PopulationFile, i+1, r[0])
		}
		seen[r[0]] = true
		ms = append(ms, Member{ID: r[0], Model: r[1], Class: r[2], Run: r[3], Trial: trial, TrainReward: tr, Seed: seed, Epoch: epoch, TrainLoss: tl,
			Size: size, Bound: bound, Weighted: weighted})
	}
	return ms, nil
}

func fmtNum(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}

func parseNum(s string) (float64, error) {
	if s == "" {
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}
