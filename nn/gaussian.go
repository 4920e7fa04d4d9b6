package nn

import (
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/internal/kernel"
)

// Default soft bounds of a Gaussian head's log-variance (PETS's initial
// values).
const (
	DefaultMaxLogVar = 0.5
	DefaultMinLogVar = -10
)

// Gaussian reads an MLP's 2·Dim outputs per row as a mean (the first Dim)
// and a raw log-variance (the last Dim) that is soft-clamped between
// per-dimension bounds:
//
//	lv = max − softplus(max − raw)
//	lv = min + softplus(lv − min)
//
// The bounds are parameters too: PETS learns them (with BoundPenalty in the
// loss), mbrl-lib keeps them fixed by default.
type Gaussian struct {
	Dim       int
	MaxLogVar []float32
	MinLogVar []float32
}

// NewGaussian returns a head for dim-dimensional targets with the default
// bounds.
func NewGaussian(dim int) *Gaussian {
	g := &Gaussian{Dim: dim, MaxLogVar: make([]float32, dim), MinLogVar: make([]float32, dim)}
	for i := range dim {
		g.MaxLogVar[i] = DefaultMaxLogVar
		g.MinLogVar[i] = DefaultMinLogVar
	}
	return g
}

func (g *Gaussian) check(out []float32, rows int) error {
	if g.Dim < 1 || len(g.MaxLogVar) != g.Dim || len(g.MinLogVar) != g.Dim {
		return fmt.Errorf("nn: Gaussian head of %d dimensions has %d max and %d min bounds", g.Dim, len(g.MaxLogVar), len(g.MinLogVar))
	}
	if rows < 0 || len(out) < rows*2*g.Dim {
		return fmt.Errorf("nn: %d outputs for %d rows of a %d-dimensional Gaussian (want %d)", len(out), rows, g.Dim, rows*2*g.Dim)
	}
	return nil
}

// MeanOutput is the output that holds dimension d's mean.
func (g *Gaussian) MeanOutput(d int) int { return d }

// LogVarOutput is the output that holds dimension d's raw log-variance.
func (g *Gaussian) LogVarOutput(d int) int { return g.Dim + d }

// Split writes the mean and the clamped log-variance of rows output rows
// (rows×2·Dim) into mean and logVar (rows×Dim each).
func (g *Gaussian) Split(mean, logVar, out []float32, rows int) error {
	if err := g.unpack(mean, logVar, out, rows); err != nil {
		return err
	}
	d := g.Dim
	kernel.LogVarBound(logVar[:rows*d], logVar[:rows*d], g.MaxLogVar, g.MinLogVar)
	return nil
}

// Sample writes into sample draws of the Gaussians of rows output rows:
// mean + σ·eps, σ from the log-variance Split clamps, eps rows×Dim standard
// normals; one vectorised pass, reading the output rows as they are.
func (g *Gaussian) Sample(sample, out, eps []float32, rows int) error {
	if err := g.check(out, rows); err != nil {
		return err
	}
	d := g.Dim
	if len(sample) < rows*d {
		return fmt.Errorf("nn: sample buffer shorter than %d×%d", rows, d)
	}
	if len(eps) < rows*d {
		return fmt.Errorf("nn: %d normal draws for %d×%d samples", len(eps), rows, d)
	}
	kernel.GaussianSample(sample[:rows*d], out[:2*rows*d], g.MaxLogVar, g.MinLogVar, eps[:rows*d])
	return nil
}

// unpack copies the means and the raw log-variances of rows output rows
// into mean and logVar.
func (g *Gaussian) unpack(mean, logVar, out []float32, rows int) error {
	if err := g.check(out, rows); err != nil {
		return err
	}
	d := g.Dim
	if len(mean) < rows*d || len(logVar) < rows*d {
		return fmt.Errorf("nn: mean or log-variance buffer shorter than %d×%d", rows, d)
	}
	for r := 0; r < rows; r++ {
		o := out[r*2*d : (r+1)*2*d]
		copy(mean[r*d:(r+1)*d], o[:d])
		copy(logVar[r*d:(r+1)*d], o[d:2*d])
	}
	return nil
}

// bound is the log-variance the raw value raw gets between hi and lo, in
// float64: lo + softplus(hi − softplus(hi − raw) − lo).
func bound(raw, hi, lo float64) float64 { return lo + softplus(hi-softplus(hi-raw)-lo) }

// softplus is log(1 + eˣ), from e^−|x|.
func softplus(x float64) float64 {
	e := math.Exp(-math.Abs(x))
	if x > 0 {
		return x + math.Log1p(e)
	}
	return math.Log1p(e)
}

// Loss returns the Gaussian training loss of a batch, summed over members:
//
//	Σ_e 1/(rows·Dim) Σ_b w_b Σ_d [(μ−y)²·exp(−lv) + lv]
//
// out is Members×rows×2·Dim, y Members×rows×Dim and w Members×rows (nil for
// unit weights). It sets dOut (out's shape) to the loss's gradient and adds
// the gradient with respect to the bounds to dMax and dMin when they are not
// nil. The constant ½ and log 2π terms are left out, as PETS does; NLL gives
// the full density. It is computed in float32 but for the sum
// (kernel.GaussianLoss).
func (g *Gaussian) Loss(out, y, w []float32, members, rows int, dOut, dMax, dMin []float32) (float64, error) {
	d := g.Dim
	n := members * rows
	if err := g.check(out, n); err != nil {
		return 0, err
	}
	if err := checkLossIO(y, w, dOut, members, rows, d, 2*d); err != nil {
		return 0, err
	}
	if (dMax != nil && len(dMax) < d) || (dMin != nil && len(dMin) < d) {
		return 0, fmt.Errorf("nn: bound gradients shorter than %d", d)
	}
	if n == 0 {
		return 0, nil
	}
	if w != nil {
		w = w[:n]
	}
	if dMax != nil {
		dMax = dMax[:d]
	}
	if dMin != nil {
		dMin = dMin[:d]
	}
	// Vectorised in float32 (kernel.GaussianLoss): in float64 with math's
	// exp and log1p per value it took a fifth of a half-cheetah model's
	// training epoch.
	return kernel.GaussianLoss(dOut[:n*2*d], dMax, dMin, out[:n*2*d], y[:n*d], w, g.MaxLogVar, g.MinLogVar, 1/float64(rows*d)), nil
}

// BoundPenalty returns coef·(Σ max − Σ min), PETS's term that keeps learned
// bounds tight, and adds its gradient to dMax and dMin.
func (g *Gaussian) BoundPenalty(coef float32, dMax, dMin []float32) float64 {
	var s float64
	for j := 0; j < g.Dim; j++ {
		s += float64(g.MaxLogVar[j]) - float64(g.MinLogVar[j])
		dMax[j] += coef
		dMin[j] -= coef
	}
	return float64(coef) * s
}

// log2Pi is log(2π), the Gaussian density's constant.
var log2Pi = math.Log(2 * math.Pi)

// NLL writes into dst each row's negative log-likelihood of y in nats under
// the full Gaussian density, ½ Σ_d [(μ−y)²·exp(−lv) + lv + log 2π], for rows
// output rows (rows×2·Dim) and targets (rows×Dim).
func (g *Gaussian) NLL(dst []float64, out, y []float32, rows int) error {
	d := g.Dim
	if err := g.check(out, rows); err != nil {
		return err
	}
	if len(y) < rows*d || len(dst) < rows {
		return fmt.Errorf("nn: NLL needs %d targets and %d results, got %d and %d", rows*d, rows, len(y), len(dst))
	}
	for i := 0; i < rows; i++ {
		o := out[i*2*d : (i+1)*2*d]
		var s float64
		for j := 0; j < d; j++ {
			lv := bound(float64(o[d+j]), float64(g.MaxLogVar[j]), float64(g.MinLogVar[j]))
			e := float64(o[j]) - float64(y[i*d+j])
			s += e*e*math.Exp(-lv) + lv + log2Pi
		}
		dst[i] = 0.5 * s
	}
	return nil
}

// MSE returns the squared-error loss of a batch summed over members,
//
//	Σ_e 1/(rows·dim) Σ_b w_b Σ_d (μ−y)²,
//
// for out and y of Members×rows×dim and w of Members×rows (nil for unit
// weights), and sets dOut (out's shape) to its gradient. It is the loss of
// deterministic models.
func MSE(out, y, w []float32, members, rows, dim int, dOut []float32) (float64, error) {
	n := members * rows
	if dim < 1 || len(out) < n*dim {
		return 0, fmt.Errorf("nn: %d outputs for %d rows of width %d", len(out), n, dim)
	}
	if err := checkLossIO(y, w, dOut, members, rows, dim, dim); err != nil {
		return 0, err
	}
	c := 1 / float64(rows*dim)
	var loss float64
	for i := 0; i < n; i++ {
		wi := 1.0
		if w != nil {
			wi = float64(w[i])
		}
		for j := i * dim; j < (i+1)*dim; j++ {
			e := float64(out[j]) - float64(y[j])
			loss += c * wi * e * e
			dOut[j] = float32(c * wi * 2 * e)
		}
	}
	return loss, nil
}

func checkLossIO(y, w, dOut []float32, members, rows, dim, outWidth int) error {
	n := members * rows
	if members < 1 || rows < 1 {
		return fmt.Errorf("nn: loss of %d members × %d rows", members, rows)
	}
	if len(y) < n*dim {
		return fmt.Errorf("nn: %d targets, want %d×%d×%d", len(y), members, rows, dim)
	}
	if w != nil && len(w) < n {
		return fmt.Errorf("nn: %d weights, want %d×%d", len(w), members, rows)
	}
	if len(dOut) < n*outWidth {
		return fmt.Errorf("nn: output gradient has %d elements, want %d", len(dOut), n*outWidth)
	}
	return nil
}
