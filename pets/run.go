package pets

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/dirlock"
	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/rng"
)

// Files of a run directory.
const (
	ConfigFile = "config.yaml" // the resolved configuration
	TrialsFile = "trials.csv"  // one row per finished trial
	DataFile   = "data.npz"    // every transition collected
	ModelsDir  = "models"      // trial_NNN.safetensors and .json
)

// CheckDir refuses a directory a run must not write into: one that holds
// files but is not a run directory. A directory that does not exist, is
// empty, or holds a run (to resume) is accepted.
func CheckDir(dir string) error {
	return dirlock.CheckOwned(dir, ConfigFile, ModelsDir, provenance.File)
}

// The kinds of trial.
const (
	KindRandom = "random" // uniformly random actions, seeding the data
	KindMPC    = "mpc"    // model-predictive control with the trial's model
)

// Trial is one row of a run's trials table. Trials numbered 0 and below
// collected random-action data; trials from 1 ran model-predictive control
// with the model saved as Model.
type Trial struct {
	Trial       int
	Kind        string // KindRandom or KindMPC
	Reward      float64
	Steps       int
	Transitions int // in the dataset after this trial
	Epochs      int
	TrainLoss   float64 // NaN for random trials
	HoldOutNLL  float64 // NaN without held-out data
	HoldOutMSE  float64
	TrainSec    float64
	PlanSec     float64
	StepMillis  float64 // planning time per step
	Model       string  // checkpoint, relative to the run directory
}

// Event reports progress.
type Event struct {
	Phase  string // "resumed" (once per trial found on disk), "train", "step" or "trial"
	Trial  int    // current trial (from 1 for MPC trials)
	Trials int    // MPC trials in the run
	Step   int    // steps taken in the current episode
	Steps  int    // the episode's length
	Reward float64
	Row    *Trial // the finished trial, in "trial" events
}

// Options are how a run reports and where it writes.
type Options struct {
	// Dir is the run directory; a run already there is resumed after its
	// last finished trial if its config is the same.
	Dir string
	// Progress, if set, receives events as the run goes.
	Progress func(Event)
	// Threads, if set, gives the goroutines of each trial's training and
	// planner, asked as each starts, in place of the config's Threads (a
	// run's numbers do not depend on them): a study running runs side by
	// side gives a run left alone the cores the others had.
	Threads func() int
}

// Run runs PETS. It returns the finished trials, including those of an
// earlier run it resumed. Cancelling ctx stops it between steps; every
// trial finished by then is on disk, and the error is ctx's.
func Run(ctx context.Context, cfg Config, opt Options) ([]Trial, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	task, err := env.Lookup(cfg.Task)
	if err != nil {
		return nil, err
	}
	if opt.Dir == "" {
		return nil, errors.New("pets: no run directory")
	}
	if err := CheckDir(opt.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opt.Dir, ModelsDir), 0o755); err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(opt.Dir, "pets")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := safefile.Clean(opt.Dir); err != nil {
		return nil, err
	}
	rows, buf, err := resume(opt.Dir, cfg, task)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, task: task, dir: opt.Dir, rows: rows, buf: buf, seed: rng.New(cfg.Seed), progress: opt.Progress, threads: opt.Threads}
	if r.progress == nil {
		r.progress = func(Event) {}
	}
	if r.env, err = task.New(); err != nil {
		return nil, err
	}
	defer r.env.Close()
	if rows == nil {
		if err := r.randomTrials(ctx); err != nil {
			return r.rows, err
		}
	}
	if err := r.restore(); err != nil {
		return r.rows, err
	}
	defer r.trainer.Close()
	for trial := lastTrial(r.rows) + 1; trial <= cfg.Trials; trial++ {
		if err := ctx.Err(); err != nil {
			return r.rows, err
		}
		if err := r.trial(ctx, trial); err != nil {
			return r.rows, err
		}
	}
	return r.rows, nil
}

// run is a PETS run under way.
type run struct {
	cfg      Config
	task     env.Task
	dir      string
	env      env.Env
	rows     []Trial
	buf      *data.Buffer
	seed     *rng.Source
	progress func(Event)
	threads  func() int // Options.Threads
	model    *dynamics.Model
	trainer  *dynamics.Trainer
}

// randomTrials collects the random-action trials, numbered 1−R … 0.
func (r *run) randomTrials(ctx context.Context) error {
	cfg, task := r.cfg, r.task
	r.buf = data.NewBuffer(task.ObservationSpace().Dim(), task.ActionSpace().Dim())
	for i := 0; i < cfg.RandomTrials; i++ {
		trial := i + 1 - cfg.RandomTrials
		n0 := r.buf.Len()
		policy := data.RandomPolicy(task.ActionSpace(), r.seed.Named("random trial").Child(uint64(i)).Uint64())
		reward, err := data.RunEpisode(ctx, r.env, policy, episodeSeed(cfg.Seed, trial), r.buf, nil)
		if err != nil {
			return fmt.Errorf("random trial %d: %w", trial, err)
		}
		row := Trial{Trial: trial, Kind: KindRandom, Reward: reward, Steps: r.buf.Len() - n0, Transitions: r.buf.Len(),
			TrainLoss: math.NaN(), HoldOutNLL: math.NaN(), HoldOutMSE: math.NaN()}
		r.rows = append(r.rows, row)
		if err := save(r.dir, r.buf, r.rows); err != nil {
			return err
		}
		r.progress(Event{Phase: "trial", Trial: trial, Trials: cfg.Trials, Row: &row})
	}
	return nil
}

// restore makes the model and its trainer: new ones, or those of the last
// finished trial with the optimiser's state, so that a resumed run goes on
// exactly as an uninterrupted one would.
func (r *run) restore() error {
	model, err := dynamics.New(r.task, r.cfg.Model, r.seed.Named("model").Uint64())
	if err != nil {
		return err
	}
	done := lastTrial(r.rows)
	for i := range r.rows {
		if r.rows[i].Kind == KindMPC {
			r.progress(Event{Phase: "resumed", Trial: done, Trials: r.cfg.Trials, Row: &r.rows[i]})
		}
	}
	var last string
	if done > 0 {
		last = filepath.Join(r.dir, r.rows[len(r.rows)-1].Model)
		if model, err = dynamics.Load(last, r.task); err != nil {
			return fmt.Errorf("resuming from trial %d: %w", done, err)
		}
	}
	r.model, r.trainer = model, dynamics.NewTrainer(model, r.cfg.Threads)
	if done > 0 {
		if err := r.trainer.LoadState(optimizerPath(r.dir, r.rows[len(r.rows)-1].Model)); err != nil {
			r.trainer.Close()
			return fmt.Errorf("resuming from trial %d: %w", done, err)
		}
	}
	return nil
}

// trial trains the model on all data, saves it with the optimiser's state,
// runs one MPC episode with it and records the trial.
func (r *run) trial(ctx context.Context, trial int) error {
	cfg := r.cfg
	r.progress(Event{Phase: "train", Trial: trial, Trials: cfg.Trials})
	if r.threads != nil {
		r.trainer.SetThreads(r.threads())
	}
	t0 := time.Now()
	tc := cfg.Train.TrainConfig
	tc.Seed = r.seed.Named("train").Child(uint64(trial)).Uint64()
	if cfg.Train.Reweight != "" {
		var err error
		if tc.Weights, err = data.Weights(cfg.Train.Reweight, r.buf, bestEpisode(r.buf), cfg.Threads); err != nil {
			return err
		}
	}
	res, err := r.trainer.Train(ctx, r.buf, tc)
	if err != nil {
		return fmt.Errorf("training before trial %d: %w", trial, err)
	}
	trainSec := time.Since(t0).Seconds()
	ckpt := filepath.Join(ModelsDir, fmt.Sprintf("trial_%03d.safetensors", trial))
	if err := r.model.Save(filepath.Join(r.dir, ckpt)); err != nil {
		return err
	}
	if err := r.trainer.SaveState(optimizerPath(r.dir, ckpt)); err != nil {
		return err
	}

	// Planner and objective draw from the trial's own streams, so a
	// resumed trial plans as it would have in one go.
	threads := cfg.Threads
	if r.threads != nil {
		threads = r.threads()
	}
	agent, err := planning.NewModelAgent(r.task, r.model, cfg.Planner, threads, r.seed.Named("plan").Child(uint64(trial)).Uint64())
	if err != nil {
		return err
	}
	steps := r.task.EpisodeSteps()
	episode := data.NewBuffer(r.buf.ObsDim, r.buf.ActDim)
	reward, err := data.RunEpisode(ctx, r.env, agent.Act, episodeSeed(cfg.Seed, trial), episode, func(step int, ret float64) {
		r.progress(Event{Phase: "step", Trial: trial, Trials: cfg.Trials, Step: step, Steps: steps, Reward: ret})
	})
	agent.Close()
	if err != nil {
		return fmt.Errorf("trial %d: %w", trial, err)
	}
	r.buf.Append(episode)
	row := Trial{Trial: trial, Kind: KindMPC, Reward: reward, Steps: episode.Len(), Transitions: r.buf.Len(), Epochs: res.Epochs,
		TrainLoss: res.TrainLoss, HoldOutNLL: math.NaN(), HoldOutMSE: math.NaN(), TrainSec: trainSec,
		PlanSec: agent.PlanTime.Seconds(), StepMillis: 1000 * agent.PlanTime.Seconds() / float64(max(agent.Plans, 1)), Model: ckpt}
	if res.HoldOut != nil {
		row.HoldOutNLL, row.HoldOutMSE = res.HoldOut.NLL, res.HoldOut.MSE
	}
	r.rows = append(r.rows, row)
	if err := save(r.dir, r.buf, r.rows); err != nil {
		return err
	}
	r.progress(Event{Phase: "trial", Trial: trial, Trials: cfg.Trials, Row: &row})
	return nil
}

// bestEpisode returns the transitions of the episode of highest return.
func bestEpisode(buf *data.Buffer) *data.Buffer {
	eps := buf.Episodes()
	rets := buf.EpisodeReturns()
	best := 0
	for i, r := range rets {
		if r > rets[best] {
			best = i
		}
	}
	idx := make([]int, 0, eps[best].End-eps[best].Start)
	for i := eps[best].Start; i < eps[best].End; i++ {
		idx = append(idx, i)
	}
	return buf.Subset(idx)
}

// optimizerPath is where the optimiser's state after a trial's training is
// kept, beside the trial's model.
func optimizerPath(dir, ckpt string) string {
	return filepath.Join(dir, strings.TrimSuffix(ckpt, filepath.Ext(ckpt))+".adam")
}

// episodeSeed is the reset seed of a trial's episode.
func episodeSeed(seed uint64, trial int) uint64 {
	return rng.New(seed).Named("episode").Child(uint64(trial)).Uint64()
}

func lastTrial(rows []Trial) int {
	if len(rows) == 0 {
		return 0
	}
	return max(rows[len(rows)-1].Trial, 0)
}

// save writes the data, then the table that vouches for it.
func save(dir string, buf *data.Buffer, rows []Trial) error {
	if err := buf.WriteNPZ(filepath.Join(dir, DataFile)); err != nil {
		return err
	}
	return safefile.Write(filepath.Join(dir, TrialsFile), func(w io.Writer) error { return WriteTrials(w, rows) })
}

var trialHeader = []string{"trial", "kind", "reward", "steps", "transitions", "epochs", "train_loss",
	"holdout_nll", "holdout_mse", "train_s", "plan_s", "plan_ms_per_step", "model"}

// WriteTrials writes rows as CSV with a header.
func WriteTrials(w io.Writer, rows []Trial) error {
	cw := csv.NewWriter(w)
	cw.Write(trialHeader)
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, r := range rows {
		cw.Write([]string{strconv.Itoa(r.Trial), r.Kind, f(r.Reward), strconv.Itoa(r.Steps), strconv.Itoa(r.Transitions),
			strconv.Itoa(r.Epochs), f(r.TrainLoss), f(r.HoldOutNLL), f(r.HoldOutMSE), f(r.TrainSec), f(r.PlanSec), f(r.StepMillis), r.Model})
	}
	cw.Flush()
	return cw.Error()
}

// ReadTrials reads a trials table written by WriteTrials.
func ReadTrials(r io.Reader) ([]Trial, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || len(recs[0]) != len(trialHeader) || recs[0][0] != "trial" {
		return nil, fmt.Errorf("not a trials table (header %v)", recs)
	}
	var rows []Trial
	for i, rec := range recs[1:] {
		var t Trial
		var errs []error
		num := func(s string) float64 {
			if s == "" {
				return math.NaN()
			}
			v, err := strconv.ParseFloat(s, 64)
			errs = append(errs, err)
			return v
		}
		integer := func(s string) int {
			v, err := strconv.Atoi(s)
			errs = append(errs, err)
			return v
		}
		t.Trial, t.Kind, t.Reward, t.Steps = integer(rec[0]), rec[1], num(rec[2]), integer(rec[3])
		t.Transitions, t.Epochs, t.TrainLoss = integer(rec[4]), integer(rec[5]), num(rec[6])
		t.HoldOutNLL, t.HoldOutMSE, t.TrainSec, t.PlanSec = num(rec[7]), num(rec[8]), num(rec[9]), num(rec[10])
		t.StepMillis, t.Model = num(rec[11]), rec[12]
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("row %d: %w", i+1, err)
		}
		if t.Kind != KindRandom && t.Kind != KindMPC {
			return nil, fmt.Errorf("row %d: kind %q", i+1, t.Kind)
		}
		if t.Model != "" && !filepath.IsLocal(t.Model) {
			return nil, fmt.Errorf("row %d: model %q lies outside the run directory", i+1, t.Model)
		}
		rows = append(rows, t)
	}
	return rows, nil
}

// resume reads a run already in dir: its trials and data, after checking
// that its config is cfg. A new directory gets cfg written and no rows.
func resume(dir string, cfg Config, task env.Task) ([]Trial, *data.Buffer, error) {
	want, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}
	cfgPath := filepath.Join(dir, ConfigFile)
	have, err := os.ReadFile(cfgPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, safefile.WriteBytes(cfgPath, want)
	}
	if err != nil {
		return nil, nil, err
	}
	same, err := sameRun(have, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if !same {
		return nil, nil, fmt.Errorf("%s holds a run with another config (%s differs); use a new directory", dir, ConfigFile)
	}
	if !bytes.Equal(have, want) {
		// The same run, asked for another number of trials: the file
		// says what the run now aims at.
		if err := safefile.WriteBytes(cfgPath, want); err != nil {
			return nil, nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, TrialsFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	rows, buf, err := ReadRun(dir, task)
	if err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, nil
	}
	if rows[len(rows)-1].Trial < 0 {
		// Random trials were interrupted: start over.
		return nil, nil, nil
	}
	return rows, buf, nil
}

// ReadRun reads a run directory's trials table and the transitions it
// vouches for: a run stopped between writing its data and its table holds
// more, which belong to no finished trial and are left out. The data must
// be the task's width. A directory without a trials table gives an error
// that wraps os.ErrNotExist.
func ReadRun(dir string, task env.Task) ([]Trial, *data.Buffer, error) {
	path := filepath.Join(dir, TrialsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rows, err := ReadTrials(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	od, ad := task.ObservationSpace().Dim(), task.ActionSpace().Dim()
	if len(rows) == 0 {
		return nil, data.NewBuffer(od, ad), nil
	}
	buf, err := data.ReadNPZ(filepath.Join(dir, DataFile))
	if err != nil {
		return nil, nil, err
	}
	n := rows[len(rows)-1].Transitions
	if buf.ObsDim != od || buf.ActDim != ad {
		return nil, nil, fmt.Errorf("%s holds %d-wide observations and %d-wide actions; the task %s has %d and %d", filepath.Join(dir, DataFile), buf.ObsDim, buf.ActDim, task.Name(), od, ad)
	}
	if buf.Len() < n {
		return nil, nil, fmt.Errorf("%s has %d transitions, the trials table vouches for %d", filepath.Join(dir, DataFile), buf.Len(), n)
	}
	if buf.Len() > n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		buf = buf.Subset(idx)
	}
	return rows, buf, nil
}
