package study

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/dirlock"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/pets"
)

// SpecFile is the study's spec, as resolved when it was prepared.
const SpecFile = "spec.yaml"

// Options are where a study writes and how it reports.
type Options struct {
	Dir string
	// Shard and Shards select the cells this process evaluates: those at
	// positions i with i mod Shards = Shard in the population. Shards ≤ 1
	// means all.
	Shard, Shards int
	// Workers is the number of cells evaluated, and of a pets
	// population's PETS runs made, at once (0: one per CPU).
	Workers int
	Log     func(format string, args ...any)
	// Progress, if set, is called after each cell with the cells done and
	// to do in this process.
	Progress func(done, total int, c Cell)
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// CheckDir refuses a directory a study must not write into: one that holds
// files but is not a study directory. A directory that does not exist, is
// empty, or holds a study (to resume) is accepted.
func CheckDir(dir string) error {
	return dirlock.CheckOwned(dir, SpecFile, "datasets", "cells", "models", "runs", provenance.File)
}

// Prepare writes the spec and builds the datasets and the population, each
// step skipped when its output is already there. A directory prepared with
// another spec is refused.
func Prepare(ctx context.Context, s Spec, o Options) error {
	if err := s.Validate(); err != nil {
		return err
	}
	task, err := env.Lookup(s.Task)
	if err != nil {
		return err
	}
	if err := s.CheckInputs(task); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	if err := CheckDir(o.Dir); err != nil {
		return err
	}
	for _, sub := range []string{"datasets", "cells", "models"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	name := "prepare"
	if o.Shards > 1 {
		name = fmt.Sprintf("prepare-%d-of-%d", o.Shard, o.Shards)
	}
	lock, err := dirlock.Acquire(o.Dir, name)
	if err != nil {
		return err
	}
	defer lock.Release()
	if o.Shards <= 1 {
		// What interrupted writes of an earlier prepare or report left;
		// shards of the cells and of the PETS runs clean their own.
		if err := safefile.CleanDir(o.Dir); err != nil {
			return err
		}
		for _, sub := range []string{"datasets", "models", "figures"} {
			if err := safefile.Clean(filepath.Join(o.Dir, sub)); err != nil {
				return err
			}
		}
	}
	want, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	have, err := os.ReadFile(filepath.Join(o.Dir, SpecFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := safefile.WriteBytes(filepath.Join(o.Dir, SpecFile), want); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		old, err := decodeSpec(have, s)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(o.Dir, SpecFile), err)
		}
		if !bytes.Equal(old.canonical(), s.canonical()) {
			return fmt.Errorf("%s holds a study with another spec (%s differs); use a new directory", o.Dir, SpecFile)
		}
	}
	if o.Shards > 1 {
		// A shard of preparation runs only its share of the
		// population's PETS runs; an unsharded prepare then finds them
		// done and builds the rest.
		return prepareRuns(ctx, s, o)
	}
	// Datasets that do not need the population first (models may be
	// trained on them), then the population, then on-policy data and
	// the data that covers it.
	after := afterPopulation(s.Datasets)
	for _, d := range s.Datasets {
		if !after[d.Name] {
			if err := buildDataset(ctx, s, d, task, o.Dir, nil, o.logf); err != nil {
				return err
			}
		}
	}
	members, runs, err := preparePopulation(ctx, s, task, o.Dir, o.Workers, o.logf)
	if err != nil {
		return err
	}
	for _, d := range s.Datasets {
		if after[d.Name] {
			if err := buildDataset(ctx, s, d, task, o.Dir, runs, o.logf); err != nil {
				return err
			}
		}
	}
	if len(members) == 0 {
		return errors.New("study: the population is empty")
	}
	o.logf("population: %d models", len(members))
	return writePopulation(o.Dir, members)
}

// afterPopulation names the datasets built from the population's runs:
// on-policy data, and data covering a dataset built after the population
// (Cover names only earlier datasets, so one pass in order finds them).
func afterPopulation(ds []DatasetSpec) map[string]bool {
	after := map[string]bool{}
	for _, d := range ds {
		after[d.Name] = d.Kind == "on-policy" || (d.Cover != "" && after[d.Cover])
	}
	return after
}

func prepareRuns(ctx context.Context, s Spec, o Options) error {
	if s.Population.Kind != "pets" {
		return fmt.Errorf("study: only a pets population's runs are prepared in shards (this one is %q)", s.Population.Kind)
	}
	if o.Shard < 0 || o.Shard >= o.Shards {
		return fmt.Errorf("study: shard %d of %d", o.Shard, o.Shards)
	}
	for r := o.Shard; r < s.Population.Runs; r += o.Shards {
		cfg := petsRunConfig(s, r)
		o.logf("population: PETS run %d of %d (shard %d of %d)", r+1, s.Population.Runs, o.Shard, o.Shards)
		if _, err := pets.Run(ctx, cfg, pets.Options{Dir: filepath.Join(o.Dir, runDir(r)), Progress: runProgress(o.logf, r)}); err != nil {
			return fmt.Errorf("population run %d: %w", r, err)
		}
	}
	return nil
}

// LoadSpec reads a prepared study's spec.
func LoadSpec(dir string) (Spec, error) {
	path := filepath.Join(dir, SpecFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	s, err := decodeSpec(raw, Spec{})
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%s: invalid study spec:\n%w", path, err)
	}
	return s, nil
}

// decodeSpec reads a spec written by this or an earlier version over
// base: keys it lacks keep base's values.
func decodeSpec(raw []byte, base Spec) (Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return Spec{}, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return Spec{}, errors.New("not a study spec")
	}
	// Earlier versions wrote population.train.reweight, which only PETS's
	// training has.
	if pop := mapValue(doc.Content[0], "population"); pop != nil {
		if train := mapValue(pop, "train"); train != nil {
			dropKey(train, "reweight")
		}
	}
	s := base
	s.Datasets = nil
	if err := doc.Decode(&s); err != nil {
		return Spec{}, err
	}
	// Decode is not strict about unknown keys; a second pass is.
	fixed, err := yaml.Marshal(&doc)
	if err != nil {
		return Spec{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(fixed))
	dec.KnownFields(true)
	probe := base
	probe.Datasets = nil
	if err := dec.Decode(&probe); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func dropKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// canonical is s as YAML with the planner settings each optimiser ignores
// left out: two specs describe the same study exactly when these agree.
func (s Spec) canonical() []byte {
	s.Datasets = slices.Clone(s.Datasets)
	for i := range s.Datasets {
		s.Datasets[i].Planner = s.Datasets[i].Planner.Used()
	}
	s.Population.PETS.Planner = s.Population.PETS.Planner.Used()
	if s.Population.Kind != "pets" {
		// Unused; earlier versions wrote it out, empty but for defaults.
		s.Population.PETS = pets.Config{}
	}
	if s.Population.Kind == "epochs" && s.Population.Seeds == 0 {
		s.Population.Seeds = 1 // both say one model; earlier versions wrote 0
	}
	s.Metrics = nil // ranked after the cells; they do not change them
	s.Evaluation.Planner = s.Evaluation.Planner.Used()
	b, _ := yaml.Marshal(s)
	return b
}

// RunCells evaluates the prepared study's cells of this process's shard
// that are not yet done, on a pool of workers, writing each as it finishes.
func RunCells(ctx context.Context, o Options) error {
	s, err := LoadSpec(o.Dir)
	if err != nil {
		return err
	}
	task, err := env.Lookup(s.Task)
	if err != nil {
		return err
	}
	members, err := readPopulation(o.Dir)
	if err != nil {
		return fmt.Errorf("study not prepared: %w", err)
	}
	if o.Shards > 1 && (o.Shard < 0 || o.Shard >= o.Shards) {
		return fmt.Errorf("study: shard %d of %d", o.Shard, o.Shards)
	}
	// Shards share the directory; two processes on one shard do not.
	lock, err := dirlock.Acquire(o.Dir, fmt.Sprintf("cells-%d-of-%d", max(o.Shard, 0), max(o.Shards, 1)))
	if err != nil {
		return err
	}
	defer lock.Release()
	if o.Shards > 1 {
		if err := writeShards(o.Dir, o.Shards); err != nil {
			return err
		}
	}
	var todo []Member
	for i, m := range members {
		if o.Shards > 1 && i%o.Shards != o.Shard {
			continue
		}
		if _, err := os.Stat(CellPath(o.Dir, m.ID)); err == nil {
			continue
		}
		if err := safefile.CleanFor(CellPath(o.Dir, m.ID)); err != nil {
			return err
		}
		todo = append(todo, m)
	}
	if len(todo) == 0 {
		return nil
	}
	ev, err := newEvaluator(s, task, o.Dir)
	if err != nil {
		return err
	}
	workers := o.Workers
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	o.logf("evaluating %d cells on %d workers", len(todo), workers)
	pool := parallel.New(workers)
	defer pool.Close()
	var mu sync.Mutex
	var firstErr error
	done := 0
	pool.Run(len(todo), func(_, i int) {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			return
		}
		m := todo[i]
		c, err := ev.evaluate(ctx, m)
		if err == nil {
			err = writeCell(o.Dir, c)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("cell %s: %w", m.ID, err)
			}
			return
		}
		done++
		if o.Progress != nil {
			o.Progress(done, len(todo), c)
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

// Run prepares the study, evaluates its cells and analyses them.
func Run(ctx context.Context, s Spec, o Options) (*Results, error) {
	t0 := time.Now()
	if err := Prepare(ctx, s, o); err != nil {
		return nil, err
	}
	o.logf("prepared in %s", time.Since(t0).Round(time.Second))
	if err := RunCells(ctx, o); err != nil {
		return nil, err
	}
	res, err := Analyse(o.Dir)
	if err != nil || len(s.Metrics) == 0 {
		return res, err
	}
	if _, err := Metrics(ctx, o.Dir, MetricsOptions{Names: s.Metrics, Workers: o.Workers, Log: o.Log}); err != nil {
		return nil, err
	}
	return res, nil
}
