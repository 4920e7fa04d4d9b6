package planning

import (
	"context"
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/internal/fields"

	"github.com/mismatch-rl/mismatch/rng"
)

// ICEMConfig holds the settings of the improved cross-entropy method of
// Pinneri et al. (2020).
type ICEMConfig struct {
	Horizon    int
	Population int // of the first iteration
	Elites     int
	Iterations int
	Alpha      float64 // momentum of mean and standard deviation
	// NoiseBeta is the exponent of the sampling noise's power spectrum
	// 1/f^β along time: 0 is white noise, 2 is smooth (brown) noise.
	NoiseBeta float64
	// PopDecay shrinks the population each iteration: N_i = N·PopDecay^−i,
	// never below twice the elites.
	PopDecay float64
	// KeepElites is the fraction of the elites carried into the next
	// iteration and, shifted by a step, into the next call.
	KeepElites float64
	// NoMeanLast leaves out the mean, which iCEM adds as a sample in the
	// last iteration.
	NoMeanLast bool
}

func (c ICEMConfig) validate() error {
	var errs fields.Errors
	checkCommon(&errs, c.Horizon, c.Population)
	checkElites(&errs, c.Elites, c.Population)
	checkIterations(&errs, c.Iterations)
	checkAlpha(&errs, c.Alpha)
	if !(c.NoiseBeta >= 0 && c.NoiseBeta <= 4) {
		errs.Add("noise_beta", "is %g, want it in [0, 4]", c.NoiseBeta)
	}
	if !(c.PopDecay >= 1) || math.IsInf(c.PopDecay, 0) {
		errs.Add("pop_decay", "is %g, want a finite number ≥ 1", c.PopDecay)
	}
	if !(c.KeepElites >= 0 && c.KeepElites <= 1) {
		errs.Add("keep_elites", "is %g, want it in [0, 1]", c.KeepElites)
	}
	return errs.Err()
}

// ICEM samples coloured noise, shrinks its population over iterations,
// carries elites across iterations and calls, and returns the best sequence
// it has seen.
type ICEM struct {
	cfg     ICEMConfig
	b       Bounds
	src     *rng.Source
	mean    []float32
	std     []float64
	samples []float32
	returns []float64
	order   []int
	kept    []float32 // elites carried over
	nKept   int
	best    []float32
	noise   []float64
}

// NewICEM returns an iCEM optimiser for actions in b.
func NewICEM(cfg ICEMConfig, b Bounds, seed uint64) (*ICEM, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("planning: invalid iCEM config:\n%w", err)
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	n := cfg.Horizon * b.dim()
	maxPop := cfg.Population + cfg.Elites + 1
	return &ICEM{cfg: cfg, b: b, src: rng.New(seed), mean: make([]float32, n), std: make([]float64, n),
		samples: make([]float32, maxPop*n), returns: make([]float64, maxPop), order: make([]int, maxPop),
		kept: make([]float32, cfg.Elites*n), best: make([]float32, n), noise: make([]float64, cfg.Horizon)}, nil
}

// Horizon is the planning horizon.
func (c *ICEM) Horizon() int { return c.cfg.Horizon }

// Reset drops the elites kept from the last call.
func (c *ICEM) Reset() { c.nKept = 0 }

func (c *ICEM) keepCount() int {
	return int(math.Round(c.cfg.KeepElites * float64(c.cfg.Elites)))
}

// Optimize runs iCEM from the mean init.
func (c *ICEM) Optimize(ctx context.Context, plan []float32, obj Objective, init []float32) error {
	d := c.b.dim()
	H := c.cfg.Horizon
	n := H * d
	if err := checkPlan(plan, init, n, obj, H); err != nil {
		return err
	}
	copy(c.mean, init)
	for i := range c.std {
		c.std[i] = float64(c.b.High[i%d]-c.b.Low[i%d]) / 4
	}
	// Elites kept from the last call move one step earlier, their last
	// step filled with the box's middle.
	mid := c.b.Mid()
	for e := 0; e < c.nKept; e++ {
		s := c.kept[e*n : (e+1)*n]
		copy(s, s[d:])
		copy(s[n-d:], mid)
	}
	bestRet := math.Inf(-1)
	K := c.cfg.Elites
	for it := 0; it < c.cfg.Iterations; it++ {
		N := max(int(float64(c.cfg.Population)*math.Pow(c.cfg.PopDecay, -float64(it))), 2*K)
		N = min(N, c.cfg.Population)
		for p := 0; p < N; p++ {
			s := c.samples[p*n : (p+1)*n]
			for j := 0; j < d; j++ {
				coloredNoise(c.noise, c.cfg.NoiseBeta, c.src)
				for t := 0; t < H; t++ {
					i := t*d + j
					s[i] = float32(float64(c.mean[i]) + c.std[i]*c.noise[t])
				}
			}
		}
		c.b.clip(c.samples[:N*n])
		total := N
		for e := 0; e < c.nKept; e++ {
			copy(c.samples[total*n:(total+1)*n], c.kept[e*n:(e+1)*n])
			total++
		}
		if it == c.cfg.Iterations-1 && !c.cfg.NoMeanLast {
			copy(c.samples[total*n:(total+1)*n], c.mean)
			c.b.clip(c.samples[total*n : (total+1)*n])
			total++
		}
		rets := c.returns[:total]
		if err := obj.Evaluate(ctx, rets, c.samples[:total*n], total); err != nil {
			return err
		}
		sanitize(rets)
		order := c.order[:total]
		rank(order, rets)
		if math.IsInf(rets[order[0]], -1) {
			return errAllFailed
		}
		if rets[order[0]] > bestRet {
			bestRet = rets[order[0]]
			copy(c.best, c.samples[order[0]*n:(order[0]+1)*n])
		}
		k := min(K, total)
		for i := 0; i < n; i++ {
			var s, ss float64
			for _, p := range order[:k] {
				v := float64(c.samples[p*n+i])
				s += v
				ss += v * v
			}
			em := s / float64(k)
			es := math.Sqrt(math.Max(ss/float64(k)-em*em, 0))
			c.mean[i] = float32(c.cfg.Alpha*float64(c.mean[i]) + (1-c.cfg.Alpha)*em)
			c.std[i] = c.cfg.Alpha*c.std[i] + (1-c.cfg.Alpha)*es
		}
		// Carry the best fraction of the elites into the next iteration.
		c.nKept = min(c.keepCount(), k)
		for e := 0; e < c.nKept; e++ {
			copy(c.kept[e*n:(e+1)*n], c.samples[order[e]*n:(order[e]+1)*n])
		}
	}
	copy(plan, c.best)
	return nil
}

// coloredNoise fills x with Gaussian noise of unit variance whose power
// spectrum falls as 1/f^β: random Fourier coefficients with amplitudes
// f^(−β/2) (the lowest frequency standing in for f = 0), transformed back
// to time by an inverse real DFT and divided by the result's exact standard
// deviation, which is the same at every step. Planning horizons are short,
// so the direct transform costs no more than an FFT would.
func coloredNoise(x []float64, beta float64, src *rng.Source) {
	H := len(x)
	half := H / 2
	if H == 1 || beta == 0 || half > maxNoiseHalf {
		for t := range x {
			x[t] = src.Normal()
		}
		return
	}
	even := H%2 == 0
	var re, im [maxNoiseHalf + 1]float64
	var variance float64
	for k := 0; k <= half; k++ {
		s := math.Pow(float64(max(k, 1))/float64(H), -beta/2)
		real := k == 0 || (even && k == half)
		re[k] = s * src.Normal()
		if real {
			// A real coefficient appears once in the sum below, the
			// others twice (with their conjugates).
			variance += s * s
		} else {
			im[k] = s * src.Normal()
			variance += 4 * s * s
		}
	}
	sd := math.Sqrt(variance)
	for t := range x {
		v := re[0]
		for k := 1; k <= half; k++ {
			if even && k == half {
				v += re[k] * float64(1-2*(t%2))
				continue
			}
			sin, cos := math.Sincos(2 * math.Pi * float64(k*t) / float64(H))
			v += 2 * (re[k]*cos - im[k]*sin)
		}
		x[t] = v / sd
	}
}

// maxNoiseHalf bounds the horizons that get coloured noise (2·128 steps);
// longer ones get white noise.
const maxNoiseHalf = 128
