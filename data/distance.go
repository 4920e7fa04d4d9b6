package data

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/internal/parallel"
)

// Scale returns the standard deviation of each observation and action
// dimension of b (1 where a dimension is constant), the units distances
// between transitions are measured in.
func Scale(b *Buffer) []float64 {
	w := b.ObsDim + b.ActDim
	s := make([]float64, w)
	mean := make([]float64, w)
	n := float64(b.Len())
	for i := 0; i < b.Len(); i++ {
		for j := 0; j < w; j++ {
			v := b.value(i, j)
			mean[j] += v / n
		}
	}
	for i := 0; i < b.Len(); i++ {
		for j := 0; j < w; j++ {
			d := b.value(i, j) - mean[j]
			s[j] += d * d / n
		}
	}
	for j := range s {
		s[j] = math.Sqrt(s[j])
		if s[j] < 1e-12 {
			s[j] = 1
		}
	}
	return s
}

// value is dimension j of transition i's state-action vector.
func (b *Buffer) value(i, j int) float64 {
	if j < b.ObsDim {
		return float64(b.Obs[i*b.ObsDim+j])
	}
	return float64(b.Act[i*b.ActDim+j-b.ObsDim])
}

// points writes transitions' state-action vectors divided by scale.
func (b *Buffer) points(dst []float32, lo, hi int, scale []float64) {
	w := b.ObsDim + b.ActDim
	for i := lo; i < hi; i++ {
		for j := 0; j < w; j++ {
			dst[(i-lo)*w+j] = float32(b.value(i, j) / scale[j])
		}
	}
}

// distChunk is the number of transitions whose distances one matrix
// product computes.
const distChunk = 2048

// Distances sets dst[i] to the Euclidean distance from transition i of b
// to the nearest transition of traj, in the space of observation and action
// scaled by scale. It computes |a|² + |b|² − 2a·b with matrix products on
// workers goroutines (< 1: one per CPU), so millions of transitions take
// a moment.
func Distances(dst []float64, b, traj *Buffer, scale []float64, workers int) error {
	w := b.ObsDim + b.ActDim
	if traj.ObsDim != b.ObsDim || traj.ActDim != b.ActDim || len(scale) != w || len(dst) < b.Len() {
		return fmt.Errorf("data: distances of %d/%d transitions to a %d/%d trajectory with %d scales", b.ObsDim, b.ActDim, traj.ObsDim, traj.ActDim, len(scale))
	}
	T := traj.Len()
	if T == 0 {
		return fmt.Errorf("data: distance to an empty trajectory")
	}
	tp := make([]float32, T*w)
	traj.points(tp, 0, T, scale)
	tn := make([]float32, T)
	for t := 0; t < T; t++ {
		for _, v := range tp[t*w : (t+1)*w] {
			tn[t] += v * v
		}
	}
	pool := parallel.New(workers)
	defer pool.Close()
	type scratch struct{ pts, dot []float32 }
	bufs := make([]scratch, pool.Workers())
	for i := range bufs {
		bufs[i] = scratch{make([]float32, distChunk*w), make([]float32, distChunk*T)}
	}
	chunks := (b.Len() + distChunk - 1) / distChunk
	pool.Run(chunks, func(worker, c int) {
		pts, dot := bufs[worker].pts, bufs[worker].dot
		lo, hi := c*distChunk, min((c+1)*distChunk, b.Len())
		n := hi - lo
		b.points(pts, lo, hi, scale)
		kernel.Sgemm(false, true, n, T, w, 1, pts, w, tp, w, 0, dot, T)
		for i := 0; i < n; i++ {
			var pn float32
			for _, v := range pts[i*w : (i+1)*w] {
				pn += v * v
			}
			best := float32(math.Inf(1))
			row := dot[i*T : (i+1)*T]
			for t, d := range row {
				best = min(best, pn+tn[t]-2*d)
			}
			dst[lo+i] = math.Sqrt(math.Max(float64(best), 0))
		}
	})
	return nil
}

// Weighting names a weight function of re-weighted training.
type Weighting string

// The weight functions.
const (
	Linear      Weighting = "linear"
	Exponential Weighting = "exponential"
	Cosine      Weighting = "cosine"
)

// Weightings lists the weight functions.
var Weightings = []Weighting{Linear, Exponential, Cosine}

// ParseWeighting returns the weighting named s.
func ParseWeighting(s string) (Weighting, error) {
	w := Weighting(strings.ToLower(s))
	if slices.Contains(Weightings, w) {
		return w, nil
	}
	return "", fmt.Errorf("unknown weighting %q (want linear, exponential or cosine)", s)
}

// UnmarshalText reads a weighting's name; the empty text is no weighting.
func (w *Weighting) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*w = ""
		return nil
	}
	v, err := ParseWeighting(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// Weight maps a distance d to a weight in [0, 1] that is 1 at d = 0 and
// falls monotonically to 0 at d = edge (and stays 0 beyond):
//
//	linear:       1 − d/edge
//	exponential:  (e^(−5d/edge) − e^(−5)) / (1 − e^(−5))
//	cosine:       cos²(π/2 · d/edge)
func Weight(kind Weighting, d, edge float64) (float64, error) {
	if !(edge > 0) {
		return 0, fmt.Errorf("data: weighting edge %g, want a positive distance", edge)
	}
	x := math.Min(math.Max(d/edge, 0), 1)
	switch kind {
	case Linear:
		return 1 - x, nil
	case Exponential:
		const k = 5
		return (math.Exp(-k*x) - math.Exp(-k)) / (1 - math.Exp(-k)), nil
	case Cosine:
		c := math.Cos(math.Pi / 2 * x)
		return c * c, nil
	}
	return 0, fmt.Errorf("data: unknown weighting %q (want linear, exponential or cosine)", string(kind))
}

// Weights computes the weight of every transition of b from its distance
// to traj, with the edge at the largest distance in b.
func Weights(kind Weighting, b, traj *Buffer, workers int) ([]float32, error) {
	d := make([]float64, b.Len())
	if err := Distances(d, b, traj, Scale(b), workers); err != nil {
		return nil, err
	}
	edge := 0.0
	for _, v := range d {
		edge = math.Max(edge, v)
	}
	if edge == 0 {
		edge = 1
	}
	w := make([]float32, len(d))
	for i, v := range d {
		x, err := Weight(kind, v, edge)
		if err != nil {
			return nil, err
		}
		w[i] = float32(x)
	}
	return w, nil
}
