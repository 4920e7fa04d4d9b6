package study

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// Results are a study's merged table and its correlations.
type Results struct {
	Spec     Spec
	Members  []Member
	Cells    []Cell // in population order
	Datasets []string
	// Correlations between log-likelihood and mean reward, for every
	// dataset, over all models and over each class.
	Correlations []Correlation
	Failed       []string // cells whose model failed numerically
}

// Stat is a statistic with its bootstrap interval; Defined is false when
// the data cannot give it (constant values, fewer than three models).
type Stat struct {
	Value    float64
	Interval stats.Interval
	Defined  bool
	HasCI    bool
}

// Correlation relates log-likelihood on one dataset to reward.
type Correlation struct {
	Dataset                    string
	Group                      string // "all" or a class
	N                          int
	Pearson, Spearman, Kendall Stat
	// Trend is the total-least-squares line of reward on log-likelihood,
	// fitted to standardised values and mapped back, leaving out the
	// Outliers models far below the rest in likelihood.
	Trend        stats.Line
	TrendDefined bool
	Outliers     int
}

// TableFile and CorrelationFile are the analysis outputs.
const (
	TableFile       = "table.csv"
	CorrelationFile = "correlations.csv"
)

// MissingCell is a member of the population whose cell is not done.
type MissingCell struct {
	ID       string
	Position int // its row in population.csv, from 0
	Shard    int // the shard that evaluates it (Position mod Shards), -1 when the cells were not sharded
}

// MissingCells is Analyse's error when cells are not done. Cells are
// sharded by position: the cell at row p of population.csv (from 0)
// belongs to shard p mod N.
type MissingCells struct {
	Dir    string
	Total  int
	Shards int // the shard count the cells were last evaluated in; 0 if never sharded
	Cells  []MissingCell
}

// RerunShards are the shards that would complete the study, in order.
func (e *MissingCells) RerunShards() []int {
	var s []int
	for _, c := range e.Cells {
		if c.Shard >= 0 && !slices.Contains(s, c.Shard) {
			s = append(s, c.Shard)
		}
	}
	slices.Sort(s)
	return s
}

func (e *MissingCells) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "study %s: %d of %d cells are not done:", e.Dir, len(e.Cells), e.Total)
	const shown = 20
	for i, c := range e.Cells {
		if i == shown {
			fmt.Fprintf(&b, "\n  and %d more", len(e.Cells)-shown)
			break
		}
		fmt.Fprintf(&b, "\n  %s: row %d of %s (from 0)", c.ID, c.Position, PopulationFile)
		if c.Shard >= 0 {
			fmt.Fprintf(&b, ", shard %d of %d", c.Shard, e.Shards)
		}
	}
	if e.Shards > 1 {
		var shards []string
		for _, s := range e.RerunShards() {
			shards = append(shards, strconv.Itoa(s))
		}
		fmt.Fprintf(&b, "\nthe cell at row p belongs to shard p mod %d; shards to rerun: %s", e.Shards, strings.Join(shards, ","))
	}
	return b.String()
}

// shardsFile records the shard count of the latest sharded evaluation.
const shardsFile = "shards.json"

func readShards(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "cells", shardsFile))
	if err != nil {
		return 0
	}
	var v struct {
		Shards int `json:"shards"`
	}
	if json.Unmarshal(b, &v) != nil || v.Shards < 2 {
		return 0
	}
	return v.Shards
}

func writeShards(dir string, n int) error {
	return safefile.WriteBytes(filepath.Join(dir, "cells", shardsFile), []byte(fmt.Sprintf("{\"shards\": %d}\n", n)))
}

// Analyse merges a study's cells; it needs every cell of the population
// (sharded or not) and writes the table and the correlations.
// Cells not done are reported as a *MissingCells error.
func Analyse(dir string) (*Results, error) {
	s, err := LoadSpec(dir)
	if err != nil {
		return nil, err
	}
	members, err := readPopulation(dir)
	if err != nil {
		return nil, err
	}
	r := &Results{Spec: s, Members: members}
	for _, d := range s.Datasets {
		r.Datasets = append(r.Datasets, d.Name)
	}
	var missing []MissingCell
	for i, m := range members {
		c, err := readCell(dir, m.ID)
		if err != nil {
			missing = append(missing, MissingCell{ID: m.ID, Position: i})
			continue
		}
		if c.Error != "" {
			r.Failed = append(r.Failed, m.ID)
		}
		r.Cells = append(r.Cells, c)
	}
	if len(missing) > 0 {
		e := &MissingCells{Dir: dir, Total: len(members), Cells: missing, Shards: readShards(dir)}
		for i := range missing {
			missing[i].Shard = -1
			if e.Shards > 1 {
				missing[i].Shard = missing[i].Position % e.Shards
			}
		}
		return nil, e
	}
	groups := []string{"all"}
	for _, m := range members {
		if !slices.Contains(groups, m.Class) {
			groups = append(groups, m.Class)
		}
	}
	if len(groups) == 2 {
		groups = groups[:1] // one class: "all" says it
	}
	for _, d := range r.Datasets {
		for _, g := range groups {
			r.Correlations = append(r.Correlations, correlate(s, members, r.Cells, d, g))
		}
	}
	if err := safefile.Write(filepath.Join(dir, TableFile), r.writeTable); err != nil {
		return nil, err
	}
	if err := safefile.Write(filepath.Join(dir, CorrelationFile), r.writeCorrelations); err != nil {
		return nil, err
	}
	if s.Kind == Reweight {
		if err := safefile.Write(filepath.Join(dir, ReweightFile), r.writeReweight); err != nil {
			return nil, err
		}
	}
	if s.Kind == LossReward {
		if err := safefile.Write(filepath.Join(dir, EpochsFile), r.writeEpochs); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func correlate(s Spec, ms []Member, cells []Cell, dataset, group string) Correlation {
	c := Correlation{Dataset: dataset, Group: group}
	var x, y []float64
	for i, m := range ms {
		if group != "all" && m.Class != group {
			continue
		}
		ll, rw := -cells[i].NLL[dataset], cells[i].RewardMean
		if math.IsNaN(ll) || math.IsInf(ll, 0) || math.IsNaN(rw) {
			continue
		}
		x, y = append(x, ll), append(y, rw)
	}
	c.N = len(x)
	seed := rng.New(s.Seed).Named("bootstrap " + dataset + "/" + group).Uint64()
	stat := func(f func(x, y []float64) (float64, error), k uint64) Stat {
		v, err := f(x, y)
		if err != nil {
			return Stat{}
		}
		st := Stat{Value: v, Defined: true}
		if s.Evaluation.Resamples > 0 {
			if iv, err := stats.Bootstrap(f, x, y, s.Evaluation.Resamples, s.Evaluation.Level, seed+k); err == nil {
				st.Interval, st.HasCI = iv, true
			}
		}
		return st
	}
	c.Pearson, c.Spearman, c.Kendall = stat(stats.Pearson, 1), stat(stats.Spearman, 2), stat(stats.Kendall, 3)
	// The trend is fitted to the models within the fence: a model whose
	// likelihood is orders of magnitude below the rest (an early model
	// extrapolating wildly) would otherwise set the line alone.
	fence := lowFence(x)
	var tx, ty []float64
	for i := range x {
		if x[i] >= fence {
			tx, ty = append(tx, x[i]), append(ty, y[i])
		}
	}
	if l, err := standardTLS(tx, ty); err == nil {
		c.Trend, c.TrendDefined = l, true
	}
	c.Outliers = len(x) - len(tx)
	return c
}

// lowFence is 5 interquartile ranges below the first quartile of x: the
// likelihoods below it are far outliers (−Inf for fewer than 8 values).
func lowFence(x []float64) float64 {
	if len(x) < 8 {
		return math.Inf(-1)
	}
	s := slices.Sorted(slices.Values(x))
	q1, q3 := s[len(s)/4], s[3*len(s)/4]
	return q1 - 5*math.Max(q3-q1, 1e-9)
}

// standardTLS fits a total-least-squares line to z-scored data (so the
// axes' units do not decide the fit) and expresses it in the data's units.
func standardTLS(x, y []float64) (stats.Line, error) {
	if len(x) < 3 {
		return stats.Line{}, stats.ErrUndefined
	}
	mx, sx := stats.MeanStd(x)
	my, sy := stats.MeanStd(y)
	if sx == 0 || sy == 0 {
		return stats.Line{}, stats.ErrUndefined
	}
	zx, zy := make([]float64, len(x)), make([]float64, len(y))
	for i := range x {
		zx[i], zy[i] = (x[i]-mx)/sx, (y[i]-my)/sy
	}
	l, err := stats.TLS(zx, zy)
	if err != nil {
		return stats.Line{}, err
	}
	slope := l.Slope * sy / sx
	return stats.Line{Slope: slope, Intercept: my + sy*l.Intercept - slope*mx}, nil
}

func (r *Results) writeTable(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"id", "class", "run", "trial", "train_reward", "seed", "epoch", "train_loss", "size", "bound", "weighted", "reward_mean", "reward_std", "episodes"}
	for _, d := range r.Datasets {
		head = append(head, "loglik_"+d, "nll_"+d, "mixture_nll_"+d, "mse_"+d)
	}
	head = append(head, "seconds", "error")
	cw.Write(head)
	for i, m := range r.Members {
		c := r.Cells[i]
		row := []string{m.ID, m.Class, m.Run, strconv.Itoa(m.Trial), fmtNum(m.TrainReward), strconv.Itoa(m.Seed),
			strconv.Itoa(m.Epoch), fmtNum(m.TrainLoss), strconv.Itoa(m.Size), fmtNum(m.Bound), strconv.FormatBool(m.Weighted),
			fmtNum(c.RewardMean), fmtNum(c.RewardStd), strconv.Itoa(len(c.Rewards))}
		for _, d := range r.Datasets {
			row = append(row, fmtNum(-c.NLL[d]), fmtNum(c.NLL[d]), fmtNum(c.MixtureNLL[d]), fmtNum(c.MSE[d]))
		}
		row = append(row, strconv.FormatFloat(c.Seconds, 'f', 1, 64), c.Error)
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// FormatStat writes a statistic, or "undefined".
func FormatStat(s Stat) string {
	if !s.Defined {
		return "undefined"
	}
	return strconv.FormatFloat(s.Value, 'f', 3, 64)
}

func (r *Results) writeCorrelations(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"dataset", "group", "models", "pearson", "pearson_low", "pearson_high", "spearman", "spearman_low", "spearman_high",
		"kendall", "kendall_low", "kendall_high", "trend_slope", "trend_intercept", "trend_outliers_left_out"})
	ci := func(s Stat) (string, string) {
		if !s.HasCI {
			return "undefined", "undefined"
		}
		return strconv.FormatFloat(s.Interval.Low, 'f', 3, 64), strconv.FormatFloat(s.Interval.High, 'f', 3, 64)
	}
	for _, c := range r.Correlations {
		pl, ph := ci(c.Pearson)
		sl, sh := ci(c.Spearman)
		kl, kh := ci(c.Kendall)
		slope, icpt := "undefined", "undefined"
		if c.TrendDefined {
			slope, icpt = strconv.FormatFloat(c.Trend.Slope, 'g', 6, 64), strconv.FormatFloat(c.Trend.Intercept, 'g', 6, 64)
		}
		cw.Write([]string{c.Dataset, c.Group, strconv.Itoa(c.N), FormatStat(c.Pearson), pl, ph, FormatStat(c.Spearman), sl, sh,
			FormatStat(c.Kendall), kl, kh, slope, icpt, strconv.Itoa(c.Outliers)})
	}
	cw.Flush()
	return cw.Error()
}
