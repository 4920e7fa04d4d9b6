package study

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// ReweightGrid is the reweight sweep's reward per distance bound (rows)
// and size (columns): the mean over seeds of each model's mean reward, and
// the standard deviation of all their episodes' rewards.
type ReweightGrid struct {
	Sizes  []int
	Bounds []float64
	Mean   map[bool][][]float64 // by weighted
	Spread map[bool][][]float64
	// Diff is the weighted model's reward minus its unweighted twin's
	// (trained on the same tuples from the same initial weights), episode
	// by episode on the same start states, averaged over seeds and
	// episodes; NaN where no pair finished. DiffInterval is its interval
	// at the study's level from a bootstrap over seeds, then episodes
	// (DiffDefined says where there is one); Pairs counts the seeds.
	Diff         [][]float64
	DiffInterval [][]stats.Interval
	DiffDefined  [][]bool
	Pairs        [][]int
}

// Grid tabulates a reweight study's cells.
func (r *Results) Grid() ReweightGrid {
	g := ReweightGrid{Sizes: r.Spec.Population.Sizes, Bounds: r.Spec.Population.Bounds,
		Mean: map[bool][][]float64{}, Spread: map[bool][][]float64{}}
	for _, w := range []bool{false, true} {
		mean := make([][]float64, len(g.Bounds))
		spread := make([][]float64, len(g.Bounds))
		for bi, b := range g.Bounds {
			mean[bi] = make([]float64, len(g.Sizes))
			spread[bi] = make([]float64, len(g.Sizes))
			for si, n := range g.Sizes {
				var means, all []float64
				for i, m := range r.Members {
					// Sizes are capped by the tuples within a bound, so
					// match the requested size by the ID's prefix.
					if m.Weighted == w && m.Bound == b && strings.HasPrefix(m.ID, fmt.Sprintf("n%05d-", n)) && !math.IsNaN(r.Cells[i].RewardMean) {
						means = append(means, r.Cells[i].RewardMean)
						all = append(all, r.Cells[i].Rewards...)
					}
				}
				mean[bi][si], spread[bi][si] = math.NaN(), math.NaN()
				if len(means) > 0 {
					mean[bi][si] = mean64(means)
					_, spread[bi][si] = stats.MeanStd(all)
				}
			}
		}
		g.Mean[w], g.Spread[w] = mean, spread
	}
	r.pairDifferences(&g)
	return g
}

func (r *Results) pairDifferences(g *ReweightGrid) {
	for bi, b := range g.Bounds {
		g.Diff = append(g.Diff, make([]float64, len(g.Sizes)))
		g.DiffInterval = append(g.DiffInterval, make([]stats.Interval, len(g.Sizes)))
		g.DiffDefined = append(g.DiffDefined, make([]bool, len(g.Sizes)))
		g.Pairs = append(g.Pairs, make([]int, len(g.Sizes)))
		for si, n := range g.Sizes {
			rewards := map[bool]map[int][]float64{false: {}, true: {}}
			for i, m := range r.Members {
				if m.Bound == b && strings.HasPrefix(m.ID, fmt.Sprintf("n%05d-", n)) && r.Cells[i].Error == "" && !math.IsNaN(r.Cells[i].RewardMean) {
					rewards[m.Weighted][m.Seed] = r.Cells[i].Rewards
				}
			}
			var groups [][]float64
			for seed, wr := range rewards[true] {
				ur, ok := rewards[false][seed]
				if !ok {
					continue
				}
				d := make([]float64, min(len(wr), len(ur)))
				for k := range d {
					d[k] = wr[k] - ur[k]
				}
				groups = append(groups, d)
			}
			// Map order would make the bootstrap's draws vary.
			slices.SortFunc(groups, func(a, b []float64) int { return slices.Compare(a, b) })
			g.Pairs[bi][si] = len(groups)
			seed := rng.New(r.Spec.Seed).Named(fmt.Sprintf("reweight difference %g %d", b, n)).Uint64()
			mean, iv, err := stats.ClusterMean(groups, r.Spec.Evaluation.Resamples, r.Spec.Evaluation.Level, seed)
			switch {
			case err == nil:
				g.Diff[bi][si], g.DiffInterval[bi][si], g.DiffDefined[bi][si] = mean, iv, true
			case len(groups) > 0 && errors.Is(err, stats.ErrUndefined) && r.Spec.Evaluation.Resamples < 1:
				g.Diff[bi][si] = mean
			default:
				g.Diff[bi][si] = math.NaN()
			}
		}
	}
}

// Signs counts, at size index si, the bounds with a paired difference and,
// of those, the ones whose interval lies above zero (weighting helps) and
// below it (weighting hurts).
func (g ReweightGrid) Signs(si int) (pairs, above, below int) {
	for bi := range g.Bounds {
		if math.IsNaN(g.Diff[bi][si]) {
			continue
		}
		pairs++
		if g.DiffDefined[bi][si] && g.DiffInterval[bi][si].Low > 0 {
			above++
		}
		if g.DiffDefined[bi][si] && g.DiffInterval[bi][si].High < 0 {
			below++
		}
	}
	return pairs, above, below
}

// ReweightFile is a reweight study's grid, one row per bound and size.
const ReweightFile = "reweight.csv"

func (r *Results) writeReweight(w io.Writer) error {
	g := r.Grid()
	cw := csv.NewWriter(w)
	cw.Write([]string{"bound", "size", "unweighted_reward", "weighted_reward", "difference", "difference_low", "difference_high", "seeds"})
	for bi, b := range g.Bounds {
		for si, n := range g.Sizes {
			lo, hi := "", ""
			if g.DiffDefined[bi][si] {
				lo, hi = fmtNum(g.DiffInterval[bi][si].Low), fmtNum(g.DiffInterval[bi][si].High)
			}
			cw.Write([]string{fmtNum(b), strconv.Itoa(n), fmtNum(g.Mean[false][bi][si]), fmtNum(g.Mean[true][bi][si]),
				fmtNum(g.Diff[bi][si]), lo, hi, strconv.Itoa(g.Pairs[bi][si])})
		}
	}
	cw.Flush()
	return cw.Error()
}
