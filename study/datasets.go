package study

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/planning"
	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// DatasetPath is where a study keeps a dataset.
func DatasetPath(dir, name string) string { return filepath.Join(dir, "datasets", name+".npz") }

// TrajectoryPath is where a study keeps an expert dataset's best episode
// (for distances to the expert).
func TrajectoryPath(dir, name string) string {
	return filepath.Join(dir, "datasets", name+".trajectory.npz")
}

// buildDataset builds one dataset, unless it is already on disk. On-policy
// data is built after the population, from its runs.
func buildDataset(ctx context.Context, s Spec, d DatasetSpec, task env.Task, dir string, runDirs []string, logf func(string, ...any)) error {
	path := DatasetPath(dir, d.Name)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var buf *data.Buffer
	var err error
	switch d.Kind {
	case "expert":
		return buildExpert(ctx, s, d, task, dir, logf)
	case "on-policy":
		// Only what each run's trials table vouches for: a stopped run
		// may hold the data of a trial it did not finish.
		buf = data.NewBuffer(task.ObservationSpace().Dim(), task.ActionSpace().Dim())
		for _, r := range runDirs {
			_, b, err := pets.ReadRun(r, task)
			if err != nil {
				return err
			}
			if err := buf.Append(b); err != nil {
				return fmt.Errorf("%s: %w", r, err)
			}
		}
	case "grid", "uniform":
		t0, last := time.Now(), time.Now()
		progress := func(done, total int) {
			if time.Since(last) < 10*time.Second {
				return
			}
			last = time.Now()
			eta := time.Duration(float64(time.Since(t0)) * float64(total-done) / float64(done))
			logf("dataset %s: %d of %d transitions (%.0f%%), ETA %s", d.Name, done, total, 100*float64(done)/float64(total), eta.Round(time.Second))
		}
		box, berr := datasetBox(d, task, dir)
		if berr != nil {
			return berr
		}
		if d.Kind == "grid" {
			buf, err = data.Grid(ctx, task, box, d.Points, progress)
		} else {
			buf, err = data.Uniform(ctx, task, box, d.Samples, rng.New(s.Seed).Named(d.Name).Uint64(), progress)
		}
	case "file":
		buf, err = data.ReadNPZ(d.Path)
		if err == nil && (buf.ObsDim != task.ObservationSpace().Dim() || buf.ActDim != task.ActionSpace().Dim()) {
			err = fmt.Errorf("%s holds %d/%d-wide data, the task %s is %d/%d", d.Path, buf.ObsDim, buf.ActDim, task.Name(), task.ObservationSpace().Dim(), task.ActionSpace().Dim())
		}
	}
	if err != nil {
		return fmt.Errorf("dataset %s: %w", d.Name, err)
	}
	logf("dataset %s (%s): %d transitions", d.Name, d.Kind, buf.Len())
	return buf.WriteNPZ(path)
}

func datasetBox(d DatasetSpec, task env.Task, dir string) (env.Box, error) {
	if len(d.Low) > 0 {
		return env.NewBox(d.Low, d.High)
	}
	if d.Cover != "" {
		b, err := data.ReadNPZ(DatasetPath(dir, d.Cover))
		if err != nil {
			return env.Box{}, fmt.Errorf("dataset %s covers %s: %w", d.Name, d.Cover, err)
		}
		box, err := coverBox(b)
		if err != nil {
			return env.Box{}, fmt.Errorf("dataset %s covers %s: %w", d.Name, d.Cover, err)
		}
		return box, nil
	}
	c, ok := task.(env.Coverer)
	if !ok || c.CoverageBox().Dim() == 0 {
		return env.Box{}, fmt.Errorf("dataset %s: task %s has no coverage box; give low and high", d.Name, task.Name())
	}
	return c.CoverageBox(), nil
}

// coverBox bounds each observation dimension of b by the 1st and 99th
// percentiles of its values, so that a few outlying states do not stretch
// the box over space the data do not cover. A dimension whose values do not
// spread is widened by 1% of its magnitude (at least 10⁻³) either side.
func coverBox(b *data.Buffer) (env.Box, error) {
	n := b.Len()
	if n < 2 {
		return env.Box{}, fmt.Errorf("%d transitions, want at least 2 to bound", n)
	}
	lo, hi := make([]float32, b.ObsDim), make([]float32, b.ObsDim)
	col := make([]float64, n)
	for j := range b.ObsDim {
		for i := range n {
			col[i] = float64(b.Obs[i*b.ObsDim+j])
		}
		iv := stats.Percentiles(col, 0.98)
		if iv.Low == iv.High {
			w := max(0.01*math.Abs(iv.Low), 1e-3)
			iv.Low, iv.High = iv.Low-w, iv.High+w
		}
		lo[j], hi[j] = float32(iv.Low), float32(iv.High)
	}
	return env.NewBox(lo, hi)
}

// buildExpert runs the planner on the true simulator until Episodes
// episodes pass the threshold (at most three times as many tries), keeping
// those and, separately, the best one.
func buildExpert(ctx context.Context, s Spec, d DatasetSpec, task env.Task, dir string, logf func(string, ...any)) error {
	e, err := task.New()
	if err != nil {
		return err
	}
	defer e.Close()
	sim, ok := e.(env.Simulator)
	if !ok {
		return fmt.Errorf("dataset %s: %s cannot be planned on with its true dynamics", d.Name, task.Name())
	}
	obj, err := planning.NewSimObjective(sim, d.Planner.Horizon, s.Threads)
	if err != nil {
		return err
	}
	defer obj.Close()
	kept := data.NewBuffer(task.ObservationSpace().Dim(), task.ActionSpace().Dim())
	var best *data.Buffer
	bestR := math.Inf(-1)
	seeds := rng.New(s.Seed).Named(d.Name)
	n := 0
	for try := 0; n < d.Episodes && try < 3*d.Episodes; try++ {
		agent, err := planning.NewSimAgent(obj, sim, d.Planner, seeds.Child(uint64(2*try)).Uint64())
		if err != nil {
			return err
		}
		ep := data.NewBuffer(kept.ObsDim, kept.ActDim)
		r, err := data.RunEpisode(ctx, sim, agent.Act, seeds.Child(uint64(2*try+1)).Uint64(), ep, nil)
		if err != nil {
			return fmt.Errorf("expert episode %d: %w", try, err)
		}
		pass := r > d.Threshold
		logf("dataset %s: expert episode %d reward %.2f (%s threshold %g)", d.Name, try, r, map[bool]string{true: "passes", false: "fails"}[pass], d.Threshold)
		if pass {
			kept.Append(ep)
			n++
		}
		if r > bestR {
			bestR, best = r, ep
		}
	}
	if n == 0 {
		return fmt.Errorf("dataset %s: no expert episode passed the threshold %g (best %.2f); lower it or strengthen the planner", d.Name, d.Threshold, bestR)
	}
	if n < d.Episodes {
		logf("dataset %s: only %d of %d expert episodes passed the threshold", d.Name, n, d.Episodes)
	}
	if err := best.WriteNPZ(TrajectoryPath(dir, d.Name)); err != nil {
		return err
	}
	return kept.WriteNPZ(DatasetPath(dir, d.Name))
}

var errNoData = errors.New("study: dataset missing; run prepare first")
