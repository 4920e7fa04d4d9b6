package study

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/dirlock"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/metrics"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/rng"
)

// MetricsFile is the leaderboard of model metrics.
const MetricsFile = "metrics.csv"

// MetricsPath is where a member's metric values are kept, beside its cell.
func MetricsPath(dir, id string) string { return filepath.Join(dir, "cells", id+".metrics.json") }

// memberMetrics is a member's cached metric values: per metric, its
// columns and what it cost.
type memberMetrics map[string]struct {
	Values  map[string]*float64 `json:"values"` // null for NaN
	Seconds float64             `json:"seconds"`
}

// MetricsOptions say which metrics to compute and how.
type MetricsOptions struct {
	Names   []string // registered metrics; empty: all
	Workers int      // members scored at once; 0: one per CPU
	Log     func(format string, args ...any)
}

// Leaderboard is the ranking of every metric column of a study's models
// by how well it predicts their closed-loop reward.
type Leaderboard struct {
	Rows    []metrics.Row
	Models  int      // members with a reward
	Skipped []string // members left out: failed cells
	// Accuracy is where the best and the worst controllers are accurate:
	// prediction error by distance to the expert's trajectory.
	Accuracy []AccuracyBin
	// Values holds every column's value per scored model (NaN where
	// missing), in the order of Rewards.
	Values  map[string][]float64
	Rewards []float64
}

// AccuracyFile holds the leaderboard's Accuracy.
const AccuracyFile = "accuracy.csv"

// AccuracyBin is the one-step error of the top and the bottom quartile of
// models by closed-loop reward on the transitions of a dataset whose
// distance to the expert's trajectory (the distance re-weighting uses)
// lies in [Low, High]: each bin holds a fifth of the dataset.
type AccuracyBin struct {
	Dataset     string
	Bin         int
	Low, High   float64
	Transitions int
	Top, Bottom float64 // mean squared error of the ensemble mean, averaged over the quartile's models
}

// accuracyBins is how many distance bins each dataset is split into.
const accuracyBins = 5

// Metrics scores every member of a finished study with the chosen metrics
// (computing only what is not cached beside its cell, so a rerun or a new
// metric costs only what is new), ranks the columns against the members'
// closed-loop rewards from the cells, and writes metrics.csv. The rewards
// are not measured again.
func Metrics(ctx context.Context, dir string, o MetricsOptions) (*Leaderboard, error) {
	s, err := LoadSpec(dir)
	if err != nil {
		return nil, err
	}
	task, err := env.Lookup(s.Task)
	if err != nil {
		return nil, err
	}
	members, err := readPopulation(dir)
	if err != nil {
		return nil, fmt.Errorf("study not prepared: %w", err)
	}
	names := o.Names
	if len(names) == 0 {
		names = metrics.Names()
	}
	var ms []metrics.Metric
	for _, n := range names {
		m, err := metrics.Lookup(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	lock, err := dirlock.Acquire(dir, "metrics")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	d := &metrics.Data{Task: task, Horizon: s.Evaluation.Planner.Horizon, Planner: s.Evaluation.Planner, Seed: s.Seed, Threads: 1}
	defer d.Close()
	for _, ds := range s.Datasets {
		b, err := data.ReadNPZ(DatasetPath(dir, ds.Name))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoData, err)
		}
		d.Datasets = append(d.Datasets, metrics.Dataset{Name: ds.Name, Buf: b})
		if ds.Kind == "expert" && d.Expert == nil {
			d.Expert, d.ExpertName = b, ds.Name
		}
	}
	lb := &Leaderboard{}
	var rewards []float64
	var scored []Member
	for _, m := range members {
		c, err := readCell(dir, m.ID)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("study: cell %s is not done; finish the study first", m.ID)
		case err != nil:
			return nil, err
		case c.Error != "" || math.IsNaN(c.RewardMean):
			lb.Skipped = append(lb.Skipped, m.ID)
			continue
		}
		rewards = append(rewards, c.RewardMean)
		scored = append(scored, m)
	}
	lb.Models = len(scored)
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	all := make([]memberMetrics, len(scored))
	pool := parallel.New(o.Workers)
	defer pool.Close()
	var mu sync.Mutex
	var firstErr error
	done := 0
	pool.Run(len(scored), func(_, i int) {
		mm, err := scoreMember(ctx, dir, scored[i], ms, d)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("member %s: %w", scored[i].ID, err)
			}
			return
		}
		all[i] = mm
		done++
		logf("metrics: %d/%d %s", done, len(scored), scored[i].ID)
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	values := map[string][]float64{}
	seconds := map[string]float64{}
	for i, mm := range all {
		for _, m := range ms {
			r := mm[m.Name()]
			for col, v := range r.Values {
				if values[col] == nil {
					values[col] = nanSlice(len(all))
				}
				if v != nil {
					values[col][i] = *v
				}
				seconds[col] += r.Seconds / float64(len(all))
			}
		}
	}
	lb.Values, lb.Rewards = values, rewards
	lb.Rows = metrics.Rank(values, rewards, seconds, metrics.RankOptions{
		Resamples: s.Evaluation.Resamples, Level: s.Evaluation.Level, Seed: rng.New(s.Seed).Named("metrics").Uint64()})
	if lb.Accuracy, err = accuracy(d, dir, scored, rewards); err != nil {
		return nil, err
	}
	if err := writeLeaderboard(dir, lb); err != nil {
		return nil, err
	}
	if err := writeMetricsReport(dir, s, lb); err != nil {
		return nil, err
	}
	return lb, nil
}

// MetricsReport is the leaderboard's page.
const MetricsReport = "metrics.html"

// writeMetricsReport writes metrics.html: the ranked table, a scatter of
// reward against each metric family on the dataset where it ranks best,
// and the accuracy figure.
func writeMetricsReport(dir string, s Spec, lb *Leaderboard) error {
	figDir := filepath.Join(dir, "figures")
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return err
	}
	p := &report.Page{Title: fmt.Sprintf("Which model metric predicts control? %s on %s", s.Kind, s.Task)}
	p.Paragraph(fmt.Sprintf("%d models ranked by how well each metric column predicts their mean closed-loop reward (%d left out: failed cells). "+
		"\"vs NLL\" is |Spearman| minus the NLL's |Spearman| on the same dataset and models, with a paired bootstrap interval (%.0f%%): "+
		"an interval above zero means the column predicts reward better than likelihood does.", lb.Models, len(lb.Skipped), 100*s.Evaluation.Level))
	ci := func(st metrics.Stat) string {
		if !st.Defined {
			return "undefined"
		}
		if !st.HasCI {
			return report.Number(st.Value)
		}
		return fmt.Sprintf("%s [%s, %s]", report.Number(st.Value), report.Number(st.Interval.Low), report.Number(st.Interval.High))
	}
	var rows [][]string
	for i, r := range lb.Rows {
		vs := ""
		if r.Baseline != "" {
			vs = ci(r.VsBaseline)
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), r.Column, strconv.Itoa(r.Models), ci(r.Spearman), ci(r.Pearson), ci(r.Kendall), vs, report.Number(r.Seconds)})
	}
	p.Heading("Leaderboard")
	p.Table([]string{"rank", "column", "models", "Spearman", "Pearson", "Kendall", "vs NLL", "seconds per model"}, rows)
	// One scatter per metric family, on its best dataset.
	seen := map[string]bool{}
	for _, r := range lb.Rows {
		family, _, _ := strings.Cut(r.Column, "@")
		if seen[family] || !r.Spearman.Defined {
			continue
		}
		seen[family] = true
		var g report.Group
		g.Name = "models"
		for i, v := range lb.Values[r.Column] {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				g.X, g.Y = append(g.X, v), append(g.Y, lb.Rewards[i])
			}
		}
		name := "metric-" + strings.NewReplacer("@", "-", "/", "-").Replace(r.Column)
		f, err := report.ScatterPlot(name, fmt.Sprintf("%s: Spearman %s", r.Column, report.Number(r.Spearman.Value)), r.Column, "mean episode reward", []report.Group{g}, nil)
		if err != nil {
			return err
		}
		if err := f.Write(figDir); err != nil {
			return err
		}
		p.Figure(f, fmt.Sprintf("Reward against %s, each point a model.", r.Column))
	}
	if len(lb.Accuracy) > 0 {
		var series []report.Series
		for _, ds := range s.Datasets {
			var top, bottom report.Series
			top.Name, bottom.Name = ds.Name+": top quartile", ds.Name+": bottom quartile"
			top.Points, bottom.Points, bottom.Dashed = true, true, true
			for _, b := range lb.Accuracy {
				if b.Dataset == ds.Name {
					top.X, top.Y = append(top.X, float64(b.Bin)), append(top.Y, math.Log10(b.Top))
					bottom.X, bottom.Y = append(bottom.X, float64(b.Bin)), append(bottom.Y, math.Log10(b.Bottom))
				}
			}
			series = append(series, top, bottom)
		}
		f, err := report.LinePlot("accuracy-by-distance", "Where the good controllers are accurate", "distance to the expert trajectory (quintile, 1 = nearest)", "log10 one-step MSE", series, nil)
		if err != nil {
			return err
		}
		if err := f.Write(figDir); err != nil {
			return err
		}
		p.Heading("Where the good models are accurate")
		p.Figure(f, "One-step error of the best and the worst quarter of models by reward, by distance to the expert's trajectory (accuracy.csv).")
	}
	p.Provenance(dir)
	return p.Write(filepath.Join(dir, MetricsReport))
}

// accuracy measures, on every dataset, the error of the top and bottom
// quartile of models by reward in bins of distance to the expert's
// trajectory. It needs an expert dataset and at least four models.
func accuracy(d *metrics.Data, dir string, scored []Member, rewards []float64) ([]AccuracyBin, error) {
	q := len(scored) / 4
	if d.Expert == nil || q == 0 {
		return nil, nil
	}
	order := make([]int, len(scored))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpFloat(rewards[b], rewards[a]) })
	groups := [2][]int{order[:q], order[len(order)-q:]} // top, bottom
	var out []AccuracyBin
	for _, ds := range d.Datasets {
		b := ds.Buf
		dist := make([]float64, b.Len())
		if err := data.Distances(dist, b, d.Expert, data.Scale(b), 1); err != nil {
			return nil, err
		}
		idx := make([]int, len(dist))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, c int) int { return cmpFloat(dist[a], dist[c]) })
		bins := make([]AccuracyBin, accuracyBins)
		binOf := make([]int, len(dist))
		for k := range bins {
			lo, hi := k*len(idx)/accuracyBins, (k+1)*len(idx)/accuracyBins
			bins[k] = AccuracyBin{Dataset: ds.Name, Bin: k + 1, Transitions: hi - lo, Low: math.NaN(), High: math.NaN()}
			if hi > lo {
				bins[k].Low, bins[k].High = dist[idx[lo]], dist[idx[hi-1]]
			}
			for _, i := range idx[lo:hi] {
				binOf[i] = k
			}
		}
		for g, members := range groups {
			for _, mi := range members {
				p := scored[mi].Model
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				model, err := dynamics.Load(p, d.Task)
				if err != nil {
					return nil, err
				}
				errs, err := model.Errors(b, 1)
				if err != nil {
					return nil, err
				}
				sum := make([]float64, accuracyBins)
				for i, e := range errs {
					sum[binOf[i]] += e
				}
				for k := range bins {
					if bins[k].Transitions == 0 {
						continue
					}
					v := sum[k] / float64(bins[k].Transitions) / float64(len(members))
					if g == 0 {
						bins[k].Top += v
					} else {
						bins[k].Bottom += v
					}
				}
			}
		}
		out = append(out, bins...)
	}
	return out, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nanSlice(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// scoreMember returns m's metric values, computing and caching those
// missing.
func scoreMember(ctx context.Context, dir string, m Member, ms []metrics.Metric, d *metrics.Data) (memberMetrics, error) {
	path := MetricsPath(dir, m.ID)
	mm := memberMetrics{}
	if raw, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(raw, &mm) != nil {
			mm = memberMetrics{} // damaged: computed again
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var model *dynamics.Model
	changed := false
	for _, met := range ms {
		if _, ok := mm[met.Name()]; ok {
			continue
		}
		if model == nil {
			p := m.Model
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			var err error
			if model, err = dynamics.Load(p, d.Task); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		v, err := met.Score(ctx, model, d)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			// A model's own numerical failure is a missing value, not
			// a failed study.
			v = map[string]float64{}
		}
		r := mm[met.Name()]
		r.Values = map[string]*float64{}
		for k, x := range v {
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				x := x
				r.Values[k] = &x
			} else {
				r.Values[k] = nil
			}
		}
		r.Seconds = time.Since(t0).Seconds()
		mm[met.Name()] = r
		changed = true
	}
	if changed {
		b, err := json.MarshalIndent(mm, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := safefile.WriteBytes(path, append(b, '\n')); err != nil {
			return nil, err
		}
	}
	return mm, nil
}

func writeLeaderboard(dir string, lb *Leaderboard) error {
	head := []string{"rank", "column", "models", "pearson", "pearson_low", "pearson_high", "spearman", "spearman_low", "spearman_high",
		"kendall", "kendall_low", "kendall_high", "baseline", "abs_spearman_minus_baseline", "diff_low", "diff_high", "seconds_per_model"}
	rows := [][]string{head}
	f := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	for i, r := range lb.Rows {
		row := []string{strconv.Itoa(i + 1), r.Column, strconv.Itoa(r.Models)}
		for _, st := range []metrics.Stat{r.Pearson, r.Spearman, r.Kendall} {
			row = append(row, f(st.Value, st.Defined), f(st.Interval.Low, st.HasCI), f(st.Interval.High, st.HasCI))
		}
		row = append(row, r.Baseline, f(r.VsBaseline.Value, r.VsBaseline.Defined), f(r.VsBaseline.Interval.Low, r.VsBaseline.HasCI),
			f(r.VsBaseline.Interval.High, r.VsBaseline.HasCI), f(r.Seconds, true))
		rows = append(rows, row)
	}
	if err := writeCSV(filepath.Join(dir, MetricsFile), rows); err != nil {
		return err
	}
	if len(lb.Accuracy) == 0 {
		return nil
	}
	acc := [][]string{{"dataset", "bin", "distance_low", "distance_high", "transitions", "top_quartile_mse", "bottom_quartile_mse"}}
	for _, b := range lb.Accuracy {
		acc = append(acc, []string{b.Dataset, strconv.Itoa(b.Bin), f(b.Low, !math.IsNaN(b.Low)), f(b.High, !math.IsNaN(b.High)),
			strconv.Itoa(b.Transitions), f(b.Top, true), f(b.Bottom, true)})
	}
	return writeCSV(filepath.Join(dir, AccuracyFile), acc)
}

func writeCSV(path string, rows [][]string) error {
	return safefile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.WriteAll(rows)
		return cw.Error()
	})
}
