package study

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/report"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// paperCorrelations are the objective-mismatch paper's Pearson
// correlations between log-likelihood and reward, by task and dataset
// kind (its half-cheetah "sampled" set is our uniform kind), shown beside
// a study's for comparison.
var paperCorrelations = map[[2]string]float64{
	{"cartpole-swingup", "expert"}: 0.59, {"cartpole-swingup", "on-policy"}: 0.34, {"cartpole-swingup", "grid"}: -0.06,
	{"halfcheetah", "expert"}: 0.07, {"halfcheetah", "on-policy"}: 0.46, {"halfcheetah", "uniform"}: 0.19,
}

// PaperCorrelation is the paper's Pearson correlation between
// log-likelihood and reward on a task's dataset of a kind (expert,
// on-policy, grid, uniform), if the paper gives one; the half-cheetah's
// for its fine variant, the same task at a finer timestep.
func PaperCorrelation(task, kind string) (float64, bool) {
	v, ok := paperCorrelations[[2]string{env.Base(task), kind}]
	return v, ok
}

// paperRho is the paper's correlation for a dataset of the study.
func paperRho(s Spec, dataset string) (float64, bool) {
	for _, d := range s.Datasets {
		if d.Name == dataset {
			return PaperCorrelation(s.Task, d.Kind)
		}
	}
	return 0, false
}

func hasPaperRho(s Spec) bool {
	for _, d := range s.Datasets {
		if _, ok := paperRho(s, d.Name); ok {
			return true
		}
	}
	return false
}

// Report writes a study's figures (PNG and SVG in figures/) and its
// self-contained report.html.
func Report(dir string, r *Results) error {
	figDir := filepath.Join(dir, "figures")
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return err
	}
	page := &report.Page{Title: fmt.Sprintf("Objective-mismatch study: %s on %s", r.Spec.Kind, r.Spec.Task)}
	page.Paragraph(fmt.Sprintf("%d models, %d MPC episodes each, datasets: %v.", len(r.Members), r.Spec.Evaluation.Episodes, r.Datasets))
	if len(r.Failed) > 0 {
		page.Paragraph(fmt.Sprintf("%d models failed numerically and are left out of correlations: %v.", len(r.Failed), r.Failed))
	}
	var figs []report.Figure
	var captions []string
	if r.Spec.Kind == Reweight {
		fs, cs, summary, err := reweightFigures(r)
		if err != nil {
			return err
		}
		page.Paragraph(summary)
		figs, captions = fs, cs
	} else if r.Spec.Kind == LikelihoodReward {
		page.Heading("Correlation of log-likelihood and reward")
		page.Table(correlationHeader(r), correlationRows(r))
		for _, d := range r.Datasets {
			f, cap, err := scatter(r, d)
			if err != nil {
				return err
			}
			figs, captions = append(figs, f), append(captions, cap)
		}
	} else {
		page.Heading("Best reward against lowest loss")
		page.Table(epochHeader(r), epochRows(r))
		fs, cs, err := epochFigures(r)
		if err != nil {
			return err
		}
		figs, captions = fs, cs
	}
	page.Heading("Figures")
	for i, f := range figs {
		if err := f.Write(figDir); err != nil {
			return err
		}
		page.Figure(f, captions[i])
	}
	page.Heading("Models")
	page.Table(modelHeader(r), modelRows(r))
	if spec, err := os.ReadFile(filepath.Join(dir, SpecFile)); err == nil {
		page.Heading("Spec")
		page.Pre(string(spec))
	}
	page.Provenance(dir)
	return page.Write(filepath.Join(dir, "report.html"))
}

func correlationHeader(r *Results) []string {
	h := []string{"dataset", "models", "group", "Pearson ρ", "95% interval", "Spearman", "Kendall τ"}
	if hasPaperRho(r.Spec) {
		h = append(h, "paper's ρ")
	}
	return h
}

func interval(s Stat) string {
	if !s.HasCI {
		return "undefined"
	}
	return fmt.Sprintf("[%.3f, %.3f]", s.Interval.Low, s.Interval.High)
}

func correlationRows(r *Results) [][]string {
	var rows [][]string
	for _, c := range r.Correlations {
		row := []string{c.Dataset, strconv.Itoa(c.N), c.Group, FormatStat(c.Pearson), interval(c.Pearson), FormatStat(c.Spearman), FormatStat(c.Kendall)}
		if hasPaperRho(r.Spec) {
			p, ok := paperRho(r.Spec, c.Dataset)
			row = append(row, map[bool]string{true: strconv.FormatFloat(p, 'f', 2, 64), false: "–"}[ok && c.Group == "all"])
		}
		rows = append(rows, row)
	}
	return rows
}

func scatter(r *Results, dataset string) (report.Figure, string, error) {
	// Models far below the others in likelihood (an early model
	// extrapolating wildly) would squeeze the rest into a sliver: they are
	// left off the axis and counted; the statistics keep them.
	var xs []float64
	for i := range r.Members {
		if v := -r.Cells[i].NLL[dataset]; !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	fence := lowFence(xs)
	var groups []report.Group
	off := 0
	for i, m := range r.Members {
		x := -r.Cells[i].NLL[dataset]
		if x < fence {
			off++
			continue
		}
		j := slices.IndexFunc(groups, func(g report.Group) bool { return g.Name == m.Class })
		if j < 0 {
			groups = append(groups, report.Group{Name: m.Class})
			j = len(groups) - 1
		}
		groups[j].X = append(groups[j].X, x)
		groups[j].Y = append(groups[j].Y, r.Cells[i].RewardMean)
	}
	var all Correlation
	for _, c := range r.Correlations {
		if c.Dataset == dataset && c.Group == "all" {
			all = c
		}
	}
	var trend *[2]float64
	if all.TrendDefined {
		trend = &[2]float64{all.Trend.Slope, all.Trend.Intercept}
	}
	title := fmt.Sprintf("%s data: Pearson ρ = %s, Spearman %s", dataset, FormatStat(all.Pearson), FormatStat(all.Spearman))
	f, err := report.ScatterPlot("likelihood-reward-"+dataset, title, "log-likelihood per transition (nats)", "mean episode reward", groups, trend)
	cap := fmt.Sprintf("Reward against log-likelihood on the %s data, one point per model; ρ %s, 95%% interval %s.", dataset, FormatStat(all.Pearson), interval(all.Pearson))
	if off > 0 {
		cap += fmt.Sprintf(" %d models with log-likelihood below %.3g are off the axis: they count in the correlations, not in the trend line.", off, fence)
	}
	return f, cap, err
}

// epochFigures are the loss-vs-reward figures: reward per checkpoint with
// its spread, and the losses, each marked with the epoch of best reward and
// of lowest loss; one series per training seed.
func epochFigures(r *Results) ([]report.Figure, []string, error) {
	sums := r.Epochs()
	var rewards, losses []report.Series
	var markers []report.Marker
	for _, e := range sums {
		label := func(what string) string {
			if len(sums) == 1 {
				return what
			}
			return fmt.Sprintf("%s, seed %d", what, e.Seed)
		}
		var x, rew, lo, hi, train []float64
		nll := map[string][]float64{}
		for i, m := range r.Members {
			if m.Seed != e.Seed {
				continue
			}
			c := r.Cells[i]
			x = append(x, float64(m.Epoch))
			rew = append(rew, c.RewardMean)
			lo, hi = append(lo, c.RewardMean-c.RewardStd), append(hi, c.RewardMean+c.RewardStd)
			train = append(train, m.TrainLoss)
			for _, d := range r.Datasets {
				nll[d] = append(nll[d], c.NLL[d])
			}
		}
		rewards = append(rewards, report.Series{Name: label("mean reward"), X: x, Y: rew, Points: true})
		if len(sums) == 1 {
			rewards = append(rewards, report.Series{Name: "± 1 s.d.", X: x, Y: lo, Dashed: true}, report.Series{Name: "", X: x, Y: hi, Dashed: true})
		}
		losses = append(losses, report.Series{Name: label("training loss"), X: x, Y: train, Points: true})
		markers = append(markers, report.Marker{Name: label(fmt.Sprintf("best reward (epoch %d)", e.BestEpoch)), X: float64(e.BestEpoch)})
		for _, d := range r.Datasets {
			losses = append(losses, report.Series{Name: label("NLL on " + d), X: x, Y: nll[d], Points: true})
			if ep, ok := e.LowestNLLEpoch[d]; ok {
				markers = append(markers, report.Marker{Name: label(fmt.Sprintf("lowest %s NLL (epoch %d)", d, ep)), X: float64(ep)})
			}
		}
	}
	rf, err := report.LinePlot("reward-per-epoch", "Reward of each epoch's model", "epoch", "mean episode reward", rewards, markers)
	if err != nil {
		return nil, nil, err
	}
	lf, err := report.LinePlot("loss-per-epoch", "Losses of each epoch's model", "epoch", "loss (nats per transition)", losses, markers)
	if err != nil {
		return nil, nil, err
	}
	spread := "; dashed: one standard deviation over episodes"
	if len(sums) > 1 {
		spread = fmt.Sprintf(", one line per training seed (%d)", len(sums))
	}
	return []report.Figure{rf, lf}, []string{
		"Mean MPC reward of the model saved at each epoch" + spread + ".",
		"Training loss and NLL on each dataset; vertical lines mark the epoch of best reward and of lowest NLL per dataset.",
	}, nil
}

// epochHeader and epochRows tabulate r.Epochs: per seed, the epoch of best
// reward and, per dataset, the epoch a likelihood-based stop would keep and
// the reward it gives up.
func epochHeader(r *Results) []string {
	h := []string{"seed", "best reward", "at epoch"}
	for _, d := range r.Datasets {
		h = append(h, "lowest NLL on "+d+": epoch", "its reward")
	}
	return h
}

func epochRows(r *Results) [][]string {
	var rows [][]string
	for _, e := range r.Epochs() {
		row := []string{strconv.Itoa(e.Seed), report.Number(e.BestReward), strconv.Itoa(e.BestEpoch)}
		for _, d := range r.Datasets {
			if ep, ok := e.LowestNLLEpoch[d]; ok {
				row = append(row, strconv.Itoa(ep), report.Number(e.RewardAtLowest[d]))
			} else {
				row = append(row, "–", "–")
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func modelHeader(r *Results) []string {
	h := []string{"model", "class", "epoch", "train reward", "reward", "s.d."}
	for _, d := range r.Datasets {
		h = append(h, "log-lik "+d)
	}
	return append(h, "error")
}

func modelRows(r *Results) [][]string {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	var rows [][]string
	for i, m := range r.Members {
		c := r.Cells[i]
		row := []string{m.ID, m.Class, strconv.Itoa(m.Epoch), f(m.TrainReward), f(c.RewardMean), f(c.RewardStd)}
		for _, d := range r.Datasets {
			row = append(row, f(-c.NLL[d]))
		}
		rows = append(rows, append(row, c.Error))
	}
	return rows
}

func mean64(x []float64) float64 { return stats.Mean(x) }

func reweightFigures(r *Results) ([]report.Figure, []string, string, error) {
	g := r.Grid()
	var xs, ys []string
	for _, n := range g.Sizes {
		xs = append(xs, strconv.Itoa(n))
	}
	for _, b := range g.Bounds {
		ys = append(ys, strconv.FormatFloat(b, 'g', 3, 64))
	}
	scale := func(m map[bool][][]float64) (float64, float64) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, z := range m {
			for _, row := range z {
				for _, v := range row {
					if !math.IsNaN(v) {
						lo, hi = math.Min(lo, v), math.Max(hi, v)
					}
				}
			}
		}
		return lo, hi
	}
	var figs []report.Figure
	var caps []string
	for _, q := range []struct {
		what string
		m    map[bool][][]float64
	}{{"mean reward", g.Mean}, {"reward spread (s.d.)", g.Spread}} {
		lo, hi := scale(q.m)
		for _, w := range []bool{false, true} {
			label := map[bool]string{false: "unweighted", true: "weighted"}[w]
			name := strings.ReplaceAll(fmt.Sprintf("reweight-%s-%s", strings.Fields(q.what)[1], label), " ", "-")
			f, err := report.HeatMap(name, fmt.Sprintf("%s, %s", q.what, label), "tuples in the dataset", "distance bound ε", xs, ys, q.m[w], lo, hi)
			if err != nil {
				return nil, nil, "", err
			}
			figs = append(figs, f)
			caps = append(caps, fmt.Sprintf("%s of models trained %s on tuples within ε of the expert trajectory (one colour scale for both).", q.what, label))
		}
	}
	// At the smallest size, does weighting help? Each bound's paired
	// difference with its interval says.
	var parts []string
	for bi, b := range g.Bounds {
		if math.IsNaN(g.Diff[bi][0]) {
			continue
		}
		iv := "no interval"
		if g.DiffDefined[bi][0] {
			iv = fmt.Sprintf("[%.1f, %.1f]", g.DiffInterval[bi][0].Low, g.DiffInterval[bi][0].High)
		}
		parts = append(parts, fmt.Sprintf("ε=%g: %.1f → %.1f, difference %+.1f %s", b, g.Mean[false][bi][0], g.Mean[true][bi][0], g.Diff[bi][0], iv))
	}
	pairs, helps, hurts := g.Signs(0)
	summary := fmt.Sprintf("At the smallest dataset (%d tuples), weighting raised the reward with an interval above zero for %d of %d bounds and lowered it with one below zero for %d (weighted − unweighted on the same start states, %.0f%% intervals over seeds and episodes: %s).",
		g.Sizes[0], helps, pairs, hurts, 100*r.Spec.Evaluation.Level, strings.Join(parts, "; "))
	return figs, caps, summary, nil
}
