package metrics

import (
	"math"
	"slices"
	"strings"

	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// Stat is a correlation with its bootstrap interval.
type Stat struct {
	Value    float64
	Defined  bool
	Interval stats.Interval
	HasCI    bool
}

// Row is one column's standing: how well its values predict the models'
// closed-loop rewards.
type Row struct {
	Column                     string
	Models                     int // with a finite value and reward
	Pearson, Spearman, Kendall Stat
	// Baseline is the likelihood column it is compared with (the NLL on
	// the same dataset); VsBaseline is |Spearman| minus the baseline's
	// |Spearman| on the same models, with a paired bootstrap interval
	// (resampling models): above zero, the column predicts reward better.
	Baseline   string
	VsBaseline Stat
	Seconds    float64 // mean cost per model of the metric that made it
}

// RankOptions are the bootstrap's settings.
type RankOptions struct {
	Resamples int     // 0: no intervals
	Level     float64 // for example 0.95
	Seed      uint64
}

// Rank correlates every column of values (a value per model, NaN where
// missing) with the models' rewards, compares each with the NLL on its
// dataset, and sorts the rows by |Spearman|, best first (undefined last).
// seconds gives each column's cost per model, if known.
func Rank(values map[string][]float64, rewards []float64, seconds map[string]float64, o RankOptions) []Row {
	var cols []string
	for c := range values {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	src := rng.New(o.Seed)
	var rows []Row
	for _, c := range cols {
		x, y := pairs(values[c], rewards)
		r := Row{Column: c, Models: len(x), Seconds: seconds[c]}
		seed := src.Named(c).Uint64()
		r.Pearson = stat(stats.Pearson, x, y, o, seed+1)
		r.Spearman = stat(stats.Spearman, x, y, o, seed+2)
		r.Kendall = stat(stats.Kendall, x, y, o, seed+3)
		if _, ds, ok := strings.Cut(c, "@"); ok {
			if base := Column("nll", ds); base != c && values[base] != nil {
				r.Baseline = base
				r.VsBaseline = pairedSpearman(values[c], values[base], rewards, o, seed+4)
			}
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b Row) int {
		switch {
		case a.Spearman.Defined != b.Spearman.Defined:
			if a.Spearman.Defined {
				return -1
			}
			return 1
		case !a.Spearman.Defined:
			return 0
		}
		d := math.Abs(b.Spearman.Value) - math.Abs(a.Spearman.Value)
		switch {
		case d < 0:
			return -1
		case d > 0:
			return 1
		}
		return 0
	})
	return rows
}

// pairs keeps the models where both the value and the reward are finite.
func pairs(v, rew []float64) (x, y []float64) {
	for i := range v {
		if finite(v[i]) && i < len(rew) && finite(rew[i]) {
			x, y = append(x, v[i]), append(y, rew[i])
		}
	}
	return x, y
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func stat(f func(x, y []float64) (float64, error), x, y []float64, o RankOptions, seed uint64) Stat {
	v, err := f(x, y)
	if err != nil {
		return Stat{}
	}
	s := Stat{Value: v, Defined: true}
	if o.Resamples > 0 {
		if iv, err := stats.Bootstrap(f, x, y, o.Resamples, o.Level, seed); err == nil {
			s.Interval, s.HasCI = iv, true
		}
	}
	return s
}

// pairedSpearman is |ρ(a, reward)| − |ρ(b, reward)| over the models where
// a, b and the reward are all finite, with a percentile interval from
// resampling those models (the same resample for both, so that what the
// two columns share cancels).
func pairedSpearman(a, b, rew []float64, o RankOptions, seed uint64) Stat {
	var idx []int
	for i := range a {
		if i < len(b) && i < len(rew) && finite(a[i]) && finite(b[i]) && finite(rew[i]) {
			idx = append(idx, i)
		}
	}
	diff := func(sel []int) (float64, bool) {
		xa, xb, y := make([]float64, len(sel)), make([]float64, len(sel)), make([]float64, len(sel))
		for k, i := range sel {
			xa[k], xb[k], y[k] = a[i], b[i], rew[i]
		}
		ra, err1 := stats.Spearman(xa, y)
		rb, err2 := stats.Spearman(xb, y)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return math.Abs(ra) - math.Abs(rb), true
	}
	v, ok := diff(idx)
	if !ok {
		return Stat{}
	}
	s := Stat{Value: v, Defined: true}
	if o.Resamples <= 0 {
		return s
	}
	src := rng.New(seed)
	sel := make([]int, len(idx))
	var vals []float64
	for r := 0; r < o.Resamples; r++ {
		for k := range sel {
			sel[k] = idx[src.IntN(len(idx))]
		}
		if d, ok := diff(sel); ok {
			vals = append(vals, d)
		}
	}
	if len(vals) < o.Resamples/2 || len(vals) == 0 {
		return s
	}
	s.Interval, s.HasCI = stats.Percentiles(vals, o.Level), true
	return s
}
