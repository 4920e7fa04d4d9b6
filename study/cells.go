package study

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// Cell is a member's evaluation: its scores on every dataset and the
// rewards of its MPC episodes. A model that fails numerically (NaN
// predictions, a planner that finds no finite return) gets its Error
// recorded instead of poisoning the study.
type Cell struct {
	ID         string             `json:"id"`
	NLL        map[string]float64 `json:"nll"` // per dataset, nats per transition
	MixtureNLL map[string]float64 `json:"mixture_nll"`
	MSE        map[string]float64 `json:"mse"`
	Rewards    []float64          `json:"rewards"`
	RewardMean float64            `json:"reward_mean"`
	RewardStd  float64            `json:"reward_std"`
	Seconds    float64            `json:"seconds"`
	Error      string             `json:"error,omitempty"`
}

// CellPath is where a cell's result is kept.
func CellPath(dir, id string) string { return filepath.Join(dir, "cells", id+".json") }

// evaluator scores members; it holds the datasets, loaded once.
type evaluator struct {
	spec     Spec
	task     env.Task
	dir      string
	datasets map[string]*data.Buffer
	names    []string
}

func newEvaluator(s Spec, task env.Task, dir string) (*evaluator, error) {
	ev := &evaluator{spec: s, task: task, dir: dir, datasets: map[string]*data.Buffer{}}
	for _, d := range s.Datasets {
		b, err := data.ReadNPZ(DatasetPath(dir, d.Name))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoData, err)
		}
		ev.datasets[d.Name] = b
		ev.names = append(ev.names, d.Name)
	}
	return ev, nil
}

// evaluate scores one member on one goroutine. Only failures of the study
// itself (a missing checkpoint, cancellation) are errors; a model's own
// numerical failure is recorded in the cell.
func (ev *evaluator) evaluate(ctx context.Context, m Member) (Cell, error) {
	t0 := time.Now()
	c := Cell{ID: m.ID, NLL: map[string]float64{}, MixtureNLL: map[string]float64{}, MSE: map[string]float64{}}
	path := m.Model
	if !filepath.IsAbs(path) {
		path = filepath.Join(ev.dir, path)
	}
	model, err := dynamics.Load(path, ev.task)
	if err != nil {
		return c, err
	}
	var faults []error
	for _, name := range ev.names {
		met, err := model.Evaluate(ev.datasets[name], 1)
		if err != nil {
			faults = append(faults, fmt.Errorf("dataset %s: %w", name, err))
			c.NLL[name], c.MixtureNLL[name], c.MSE[name] = math.NaN(), math.NaN(), math.NaN()
			continue
		}
		c.NLL[name], c.MixtureNLL[name], c.MSE[name] = met.NLL, met.MixtureNLL, met.MSE
	}
	eps, err := ScoreEpisodes(ctx, ev.task, model, ev.spec.Evaluation, rng.New(ev.spec.Seed).Named(m.ID).Uint64(), ev.spec.Seed, 1)
	if err != nil {
		return c, err
	}
	if eps.Faults != nil {
		faults = append(faults, eps.Faults)
	}
	c.Rewards = eps.Rewards
	c.RewardMean, c.RewardStd = stats.MeanStd(c.Rewards)
	if err := errors.Join(faults...); err != nil {
		c.Error = err.Error()
	}
	c.Seconds = time.Since(t0).Seconds()
	return c, nil
}

func writeCell(dir string, c Cell) error {
	b, err := json.MarshalIndent(jsonSafe(c), "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(CellPath(dir, c.ID), append(b, '\n'))
}

// jsonSafe replaces NaN, which JSON cannot hold, by null in a copy.
func jsonSafe(c Cell) map[string]any {
	num := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	mp := func(m map[string]float64) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = num(v)
		}
		return out
	}
	rs := make([]any, len(c.Rewards))
	for i, r := range c.Rewards {
		rs[i] = num(r)
	}
	out := map[string]any{"id": c.ID, "nll": mp(c.NLL), "mixture_nll": mp(c.MixtureNLL), "mse": mp(c.MSE),
		"rewards": rs, "reward_mean": num(c.RewardMean), "reward_std": num(c.RewardStd), "seconds": c.Seconds}
	if c.Error != "" {
		out["error"] = c.Error
	}
	return out
}

// readCell reads a cell file; nulls come back as NaN.
func readCell(dir, id string) (Cell, error) {
	raw, err := os.ReadFile(CellPath(dir, id))
	if err != nil {
		return Cell{}, err
	}
	var v struct {
		ID         string              `json:"id"`
		NLL        map[string]*float64 `json:"nll"`
		MixtureNLL map[string]*float64 `json:"mixture_nll"`
		MSE        map[string]*float64 `json:"mse"`
		Rewards    []*float64          `json:"rewards"`
		RewardMean *float64            `json:"reward_mean"`
		RewardStd  *float64            `json:"reward_std"`
		Seconds    float64             `json:"seconds"`
		Error      string              `json:"error"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return Cell{}, fmt.Errorf("cell %s: %w", id, err)
	}
	if v.ID != id {
		return Cell{}, fmt.Errorf("cell file %s holds cell %q", CellPath(dir, id), v.ID)
	}
	f := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	mp := func(m map[string]*float64) map[string]float64 {
		out := map[string]float64{}
		for k, p := range m {
			out[k] = f(p)
		}
		return out
	}
	c := Cell{ID: v.ID, NLL: mp(v.NLL), MixtureNLL: mp(v.MixtureNLL), MSE: mp(v.MSE), RewardMean: f(v.RewardMean),
		RewardStd: f(v.RewardStd), Seconds: v.Seconds, Error: v.Error}
	for _, r := range v.Rewards {
		c.Rewards = append(c.Rewards, f(r))
	}
	return c, nil
}
