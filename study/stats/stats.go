// Package stats holds the statistics of the objective-mismatch studies:
// the Pearson, Spearman and Kendall correlations between a model metric
// and reward, bootstrap confidence intervals for them, total-least-squares
// trend lines, and the mean and standard deviation of episode rewards.
package stats

import (
	"cmp"
	"errors"
	"math"
	"slices"

	"github.com/mismatch-rl/mismatch/rng"
)

// ErrUndefined is returned by a statistic that has no value for its data:
// a correlation of a constant series, or of fewer than three pairs.
var ErrUndefined = errors.New("undefined")

func checkPairs(x, y []float64) error {
	if len(x) != len(y) {
		return errors.New("stats: series of different lengths")
	}
	if len(x) < 3 {
		return ErrUndefined
	}
	for i := range x {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) || math.IsInf(x[i], 0) || math.IsInf(y[i], 0) {
			return errors.New("stats: non-finite value in a correlated series")
		}
	}
	return nil
}

// Pearson returns the Pearson correlation of x and y.
func Pearson(x, y []float64) (float64, error) {
	if err := checkPairs(x, y); err != nil {
		return 0, err
	}
	_, _, sxx, syy, sxy := centred(x, y)
	if sxx == 0 || syy == 0 {
		return 0, ErrUndefined
	}
	return sxy / math.Sqrt(sxx*syy), nil
}

// centred returns the means of x and y and their sums of squares and of
// products about those means.
func centred(x, y []float64) (mx, my, sxx, syy, sxy float64) {
	mx, my = Mean(x), Mean(y)
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	return mx, my, sxx, syy, sxy
}

// Spearman returns Spearman's rank correlation: the Pearson correlation of
// the ranks, tied values sharing their average rank.
func Spearman(x, y []float64) (float64, error) {
	if err := checkPairs(x, y); err != nil {
		return 0, err
	}
	return Pearson(ranks(x), ranks(y))
}

// ranks returns the 1-based ranks of x, ties averaged.
func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	// The values are finite (checkPairs), so cmp.Compare is plain order.
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(x[a], x[b]) })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}

// Kendall returns Kendall's tau-b, which corrects for ties in either series.
// It counts pairs directly, O(n²): fine for the thousands of models of a
// study.
func Kendall(x, y []float64) (float64, error) {
	if err := checkPairs(x, y); err != nil {
		return 0, err
	}
	var conc, disc, tx, ty float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			dx, dy := sign(x[i]-x[j]), sign(y[i]-y[j])
			switch {
			case dx == 0 && dy == 0:
			case dx == 0:
				tx++
			case dy == 0:
				ty++
			case dx == dy:
				conc++
			default:
				disc++
			}
		}
	}
	d := math.Sqrt((conc + disc + tx) * (conc + disc + ty))
	if d == 0 {
		return 0, ErrUndefined
	}
	return (conc - disc) / d, nil
}

func sign(v float64) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// Mean is the arithmetic mean of x (NaN for none).
func Mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// Interval is a bootstrap confidence interval.
type Interval struct{ Low, High float64 }

// Bootstrap returns the percentile confidence interval at the given level
// (for example 0.95) of stat over resamples of the pairs (x, y), drawn from
// seed. Resamples on which stat is undefined are skipped; if most are, the
// interval is undefined.
func Bootstrap(stat func(x, y []float64) (float64, error), x, y []float64, resamples int, level float64, seed uint64) (Interval, error) {
	if err := checkPairs(x, y); err != nil {
		return Interval{}, err
	}
	src := rng.New(seed)
	n := len(x)
	bx, by := make([]float64, n), make([]float64, n)
	vals := make([]float64, 0, resamples)
	for b := 0; b < resamples; b++ {
		for i := range bx {
			k := src.IntN(n)
			bx[i], by[i] = x[k], y[k]
		}
		if v, err := stat(bx, by); err == nil {
			vals = append(vals, v)
		}
	}
	if len(vals) < resamples/2 || len(vals) == 0 {
		return Interval{}, ErrUndefined
	}
	return Percentiles(vals, level), nil
}

// ClusterMean is the mean of every value of groups (for example, per
// training seed, the paired reward differences of its episodes) with the
// percentile interval at level of a two-level bootstrap: groups are drawn
// with replacement, then values within each drawn group, so that the
// interval holds the variation between groups as well as within them.
// Empty groups are ignored; with none left, the mean is undefined.
func ClusterMean(groups [][]float64, resamples int, level float64, seed uint64) (float64, Interval, error) {
	var gs [][]float64
	var sum float64
	var n int
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		for _, v := range g {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, Interval{}, errors.New("stats: non-finite value in a mean")
			}
			sum += v
		}
		gs, n = append(gs, g), n+len(g)
	}
	if n == 0 {
		return 0, Interval{}, ErrUndefined
	}
	mean := sum / float64(n)
	if resamples < 1 {
		return mean, Interval{}, ErrUndefined
	}
	src := rng.New(seed)
	vals := make([]float64, resamples)
	for b := range vals {
		var s float64
		var k int
		for range gs {
			g := gs[src.IntN(len(gs))]
			for range g {
				s += g[src.IntN(len(g))]
			}
			k += len(g)
		}
		vals[b] = s / float64(k)
	}
	return mean, Percentiles(vals, level), nil
}

// Percentiles is the central interval holding the fraction level of
// vals (linear interpolation between order statistics); it sorts vals.
// vals must not be empty.
func Percentiles(vals []float64, level float64) Interval {
	slices.Sort(vals)
	q := func(p float64) float64 {
		pos := p * float64(len(vals)-1)
		lo := int(math.Floor(pos))
		hi := min(lo+1, len(vals)-1)
		return vals[lo] + (pos-float64(lo))*(vals[hi]-vals[lo])
	}
	a := (1 - level) / 2
	return Interval{q(a), q(1 - a)}
}

// Line is y = Slope·x + Intercept.
type Line struct{ Slope, Intercept float64 }

// TLS fits a line by total least squares: it minimises the perpendicular
// distances of the points to the line (the principal axis of their
// covariance), treating x and y alike, as a trend between two noisy
// measures should. A vertical line, or constant data, is undefined.
func TLS(x, y []float64) (Line, error) {
	if err := checkPairs(x, y); err != nil {
		return Line{}, err
	}
	mx, my, sxx, syy, sxy := centred(x, y)
	if sxx == 0 && syy == 0 {
		return Line{}, ErrUndefined
	}
	// Direction of the largest eigenvector of [[sxx sxy] [sxy syy]].
	if sxy == 0 {
		if sxx >= syy {
			return Line{0, my}, nil
		}
		return Line{}, ErrUndefined
	}
	lambda := (sxx + syy + math.Sqrt((sxx-syy)*(sxx-syy)+4*sxy*sxy)) / 2
	slope := (lambda - sxx) / sxy
	return Line{slope, my - slope*mx}, nil
}

// MeanStd returns the mean of x and its sample standard deviation (n − 1
// in the denominator; 0 for one value; NaN for none).
func MeanStd(x []float64) (float64, float64) {
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	m := Mean(x)
	if len(x) < 2 {
		return m, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return m, math.Sqrt(ss / float64(len(x)-1))
}
