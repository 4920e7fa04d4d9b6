// Package attack is the objective-mismatch paper's adversarial model
// search (its section 5): starting from a good dynamics model, it looks for
// one whose likelihood on held-out data is at least as good but which earns
// less reward in model-predictive control — by planting a lure (an
// optimistic lie where the held-out data are silent) and by CMA-ES over
// the output layer's weights under the likelihood constraint — and writes
// the adversary, a summary and a report.
package attack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/fields"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/pets"
	"github.com/mismatch-rl/mismatch/rng"
	"github.com/mismatch-rl/mismatch/study"
	"github.com/mismatch-rl/mismatch/study/stats"
)

// Config is the adversarial model search of the paper's section 5:
// change a good model's parameters to lower the reward it earns in MPC
// while its likelihood on held-out data stays at least as good. Start from
// DefaultConfig; where a field's empty value means something, its comment
// says what.
type Config struct {
	// Subset is the parameters searched: "last" (the output layer, about
	// 1% of a PETS model; also what "" means) or "all".
	Subset string `yaml:"subset"`
	// Dims is the dimension of the search: CMA-ES moves the subset along
	// Dims fixed directions, Δw = P·z. CMA-ES adapts a full covariance,
	// which the thousands of weights of a layer would make cubic in cost;
	// a subspace keeps it to Dims.
	Dims int `yaml:"dims"`
	// Directions chooses P. "probe" (DefaultConfig's, and what "" means)
	// takes the directions that change the mean predictions most at probe
	// inputs — held-out states with actions drawn uniformly from the action
	// box, the what-if actions a planner tries — per unit of held-out NLL
	// they cost (generalised eigenvectors of the probe and held-out
	// curvatures). "null" takes the directions of the output layer's mean
	// weights in which the held-out NLL curves least: the output is linear
	// in the last hidden features H, so with the variances fixed the NLL is
	// quadratic in each output's weights with curvature HᵀΛH (Λ the
	// predicted precisions), and these are its eigenvectors of smallest
	// eigenvalue over all members and outputs; they leave the likelihood
	// nearly untouched while changing predictions away from the data.
	// "random" draws P from N(0, σ²/Dims), σ the subset's weight spread.
	// The whole-model subset always searches random directions.
	Directions string `yaml:"directions"`
	// Start is where the search starts. "lure" (DefaultConfig's)
	// fine-tunes the whole model to believe in a shortcut where the
	// held-out data are silent (see LureConfig); "refit" (what "" means)
	// moves the output layer's mean weights to the held-out NLL's minimum,
	// so the search starts from a model at least as likely as the original
	// and spends the likelihood it gained; "original" starts from the model
	// as trained, where every move costs likelihood.
	Start string     `yaml:"start"`
	Lure  LureConfig `yaml:"lure"`
	// Step is CMA-ES's initial step size in z: the typical change of a
	// weight as a fraction of the subset's weight spread. A trained model's
	// likelihood is at a minimum, so steps must start small (0.01–0.05).
	Step       float64 `yaml:"step"`
	Population int     `yaml:"population"` // 0: CMA-ES's default 4+3·ln(Dims)
	Iterations int     `yaml:"iterations"` // 0: the start is the result
	Seed       uint64  `yaml:"seed"`
	Workers    int     `yaml:"workers"` // candidates scored at once
	// Search scores candidates; Final re-measures the original and the
	// result with more episodes, with the same planner for both.
	Search study.EvalSpec `yaml:"search"`
	Final  study.EvalSpec `yaml:"final"`
	// Tolerance lets the held-out NLL rise by this much (nats) before the
	// constraint bites; 0 demands it be no worse.
	Tolerance float64 `yaml:"tolerance"`
}

// DefaultConfig is the search the command line runs for a task: the lure,
// then 20 CMA-ES iterations along 100 probe directions of the output layer
// at step 0.01; candidates scored by one episode with the task's fast PETS
// planner, the original and the result by 10 episodes with its default
// planner, two at a time.
func DefaultConfig(task string) (Config, error) {
	fast, err := pets.Preset("fast", task)
	if err != nil {
		return Config{}, err
	}
	def, err := pets.Preset("default", task)
	if err != nil {
		return Config{}, err
	}
	return Config{Start: "lure", Subset: "last", Dims: 100, Directions: "probe", Step: 0.01, Iterations: 20, Seed: 1, Workers: 2,
		Search: study.EvalSpec{Episodes: 1, Planner: fast.Planner}, Final: study.EvalSpec{Episodes: 10, Planner: def.Planner}}, nil
}

// Validate reports every out-of-range setting of c by its YAML name.
func (c Config) Validate() error {
	var errs fields.Errors
	if !slices.Contains([]string{"", "last", "all"}, c.Subset) {
		errs.Add("subset", "is %q, want last or all", c.Subset)
	}
	if c.Dims < 1 {
		errs.Add("dims", "is %d, want at least 1", c.Dims)
	}
	if !slices.Contains([]string{"", "probe", "null", "random"}, c.Directions) {
		errs.Add("directions", "is %q, want probe, null or random", c.Directions)
	}
	switch c.Start {
	case "", "refit", "original":
	case "lure":
		errs.Nest("lure", c.Lure.withDefaults().validate())
	default:
		errs.Add("start", "is %q, want refit, lure or original", c.Start)
	}
	if !(c.Step > 0) || math.IsInf(c.Step, 0) {
		errs.Add("step", "is %g, want a finite positive step", c.Step)
	}
	if c.Population < 0 {
		errs.Add("population", "is %d, want 0 (CMA-ES's default) or more", c.Population)
	}
	if c.Iterations < 0 {
		errs.Add("iterations", "is %d, want 0 (the start alone) or more", c.Iterations)
	}
	if c.Workers < 0 {
		errs.Add("workers", "is %d, want 0 (one) or more", c.Workers)
	}
	if !(c.Tolerance >= 0) || math.IsInf(c.Tolerance, 0) {
		errs.Add("tolerance", "is %g, want a finite number of nats ≥ 0", c.Tolerance)
	}
	for _, e := range []struct {
		name string
		spec study.EvalSpec
	}{{"search", c.Search}, {"final", c.Final}} {
		if e.spec.Episodes < 1 {
			errs.Add(e.name+".episodes", "is %d, want at least 1", e.spec.Episodes)
		}
		errs.Nest(e.name+".planner", e.spec.Planner.Validate())
	}
	return errs.Err()
}

// Result is the search's outcome.
type Result struct {
	Before, After Score
	// Start is the model the search started from (start=refit or lure),
	// measured like the other two, so that what the start alone does to
	// the reward is known; nil for start=original, or when the refit did
	// not improve the held-out NLL and the search started from the
	// original. With no iterations the start is the result: &After.
	Start *Score
	// LureWeight is the loss weight κ of the Lures lure transitions the
	// start=lure model was fine-tuned with.
	LureWeight        float64
	Lures             int
	Step              float64   // CMA-ES's calibrated initial step
	BestPerIteration  []float64 // best objective after each iteration
	Evaluations       int
	Model             *dynamics.Model // the adversarial model
	Original          *dynamics.Model
	OriginalEpisodes  [][]float32 // observations of the final episodes, per model
	AdversaryEpisodes [][]float32
}

// Score is a model's held-out NLL and its reward over episodes.
type Score struct {
	NLL        float64   `json:"nll"`
	Rewards    []float64 `json:"rewards"`
	RewardMean float64   `json:"reward_mean"`
	RewardStd  float64   `json:"reward_std"`
}

// computed counts what runs compute rather than read back from a journal,
// for tests.
var computed struct{ candidates, lures, finals atomic.Int64 }

// penalty makes every candidate that breaks the likelihood constraint
// worse than every one that keeps it.
const penalty = 1e6

// Run searches for a model whose reward is low and whose NLL on held
// is no worse than model's.
//
// With a directory dir, Run keeps what it computes there as it goes (the
// lure-planted start, each scored candidate, each final measurement: see
// JournalFile), and a run of the same config, model and held-out data
// resumes from it: what was computed is read back, not computed again,
// so the result is the one an uninterrupted run gives.
func Run(ctx context.Context, task env.Task, model *dynamics.Model, held *data.Buffer, c Config, dir string, logf func(string, ...any)) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("attack: invalid attack config:\n%w", err)
	}
	key, err := runKey(c, model, held)
	if err != nil {
		return nil, err
	}
	j, err := openJournal(dir, key)
	if err != nil {
		return nil, err
	}
	lo, hi, err := subsetRange(model, c.Subset)
	if err != nil {
		return nil, err
	}
	base := append([]float32(nil), model.Net.Params()...)
	sub := base[lo:hi]
	_, spread := stats.MeanStd(toF64(sub))
	if spread == 0 {
		spread = 1
	}
	m0, err := model.Evaluate(held, 1)
	if err != nil {
		return nil, err
	}
	nll0 := m0.NLL
	out := outputOf(model)
	// The start, when it is not the original: re-measured at the end.
	var start *dynamics.Model
	res := &Result{}
	from := model // the model whose features and normaliser the search uses
	if c.Start == "lure" {
		if m, rec := j.lure(model.Spec()); m != nil {
			start, res.LureWeight, res.Lures = m, rec.Weight, rec.Lures
			logf("attack: the lure-planted start read back from %s", filepath.Join(dir, LureFile))
		} else {
			computed.lures.Add(1)
			if start, res.LureWeight, res.Lures, err = plantLure(ctx, model, held, task.ActionSpace(), c.Lure.withDefaults(), nll0+c.Tolerance, c.Seed, max(c.Workers, 1), logf); err != nil {
				return nil, err
			}
			if err := j.recordLure(start, res.LureWeight, res.Lures); err != nil {
				return nil, err
			}
		}
		from = start
		copy(base, start.Net.Params())
	}
	// The output layer's fits, when the start or the directions need them.
	var fits []outputFit
	if c.Start == "refit" || c.Start == "" || (c.Subset != "all" && c.Directions != "random" && c.Iterations > 0) {
		if fits, err = fitOutputs(from, held); err != nil {
			return nil, err
		}
	}
	switch c.Start {
	case "refit", "":
		off, _ := model.Net.Range(len(model.Net.Layers) - 1)
		refit(base[off:], fits, out)
		start = model.Clone()
		copy(start.Net.Params(), base)
		met, err := start.Evaluate(held, 1)
		if err != nil {
			return nil, err
		}
		if met.NLL > nll0 {
			// Float32 rounding can cost more than a converged model gains.
			copy(base, model.Net.Params())
			start = nil
		} else {
			logf("attack: refitted the output layer's means: held-out NLL %.4f → %.4f", nll0, met.NLL)
		}
	}
	adv := start
	if c.Iterations == 0 && start == nil {
		return nil, errors.New("attack: with iterations=0 the start is the result, and the original model is no adversary")
	}
	if c.Iterations > 0 {
		sp := space{base: base, lo: lo, hi: hi, spread: spread, fits: fits, nll0: nll0}
		if adv, err = cmaSearch(ctx, task, from, held, c, sp, res, j, logf); err != nil {
			return nil, err
		}
	}

	// Re-measure with the final planner and more episodes: the original,
	// the adversary and, if the search moved from it, the start.
	models := []*dynamics.Model{model, adv}
	if start != nil && adv != start {
		models = append(models, start)
	}
	// One model after another, its episodes side by side.
	scores := make([]Score, len(models))
	trajs := make([][][]float32, len(models))
	for i, m := range models {
		d, err := m.Digest()
		if err != nil {
			return nil, err
		}
		if r, ok := j.final(d); ok {
			scores[i], trajs[i] = r.Score, r.Observations
			continue
		}
		computed.finals.Add(1)
		met, err := m.Evaluate(held, 1)
		if err != nil {
			return nil, err
		}
		final := rng.New(c.Seed).Named("final").Uint64()
		eps, err := study.ScoreEpisodes(ctx, task, m, c.Final, final, final, max(c.Workers, 1))
		if err == nil {
			err = eps.Faults
		}
		if err != nil {
			return nil, err
		}
		scores[i] = Score{NLL: met.NLL, Rewards: eps.Rewards, RewardMean: eps.Mean, RewardStd: eps.Std}
		trajs[i] = eps.Observations
		if err := j.recordFinal(d, finalRecord{Score: scores[i], Observations: trajs[i]}); err != nil {
			return nil, err
		}
	}
	res.Before, res.OriginalEpisodes = scores[0], trajs[0]
	res.After, res.AdversaryEpisodes = scores[1], trajs[1]
	if len(models) > 2 {
		res.Start = &scores[2]
	}
	if start != nil && adv == start {
		res.Start = &res.After
	}
	res.Model, res.Original = adv, model
	return res, nil
}

// space is where CMA-ES searches: base's parameters lo:hi, whose spread
// sets the random directions' scale, with the output fits of the held-out
// NLL nll0.
type space struct {
	base         []float32
	lo, hi       int
	spread, nll0 float64
	fits         []outputFit
}

// cmaSearch runs CMA-ES from sp.base to lower the search planner's reward
// while the held-out NLL keeps within c.Tolerance of sp.nll0, and returns
// the best candidate that kept it.
func cmaSearch(ctx context.Context, task env.Task, model *dynamics.Model, held *data.Buffer, c Config, sp space, res *Result, j *journal, logf func(string, ...any)) (*dynamics.Model, error) {
	base, lo, spread, fits, nll0 := sp.base, sp.lo, sp.spread, sp.fits, sp.nll0
	sub := base[lo:sp.hi]
	out := outputOf(model)
	// The directions, one after another: Dims × len(sub).
	dirs := make([]float32, c.Dims*len(sub))
	switch {
	case c.Directions == "random" || c.Subset == "all":
		rng.New(c.Seed).Named("directions").FillNormal(dirs, 0, float32(spread/math.Sqrt(float64(c.Dims))))
	case c.Directions == "null":
		if err := nullDirections(dirs, fits, out, c.Dims, spread); err != nil {
			return nil, err
		}
	case c.Directions == "probe" || c.Directions == "":
		if err := probeDirections(dirs, fits, model, held, task.ActionSpace(), c.Seed, out, c.Dims); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("attack: attack directions %q, want probe, null or random", c.Directions)
	}
	workers := max(c.Workers, 1)
	pool := make(chan *dynamics.Model, workers)
	for range workers {
		pool <- model.Clone()
	}
	var mu sync.Mutex
	best := math.Inf(1)
	// The best candidate that keeps the constraint: CMA-ES reports the
	// lowest objective, which can only be feasible if one was found.
	var bestZ []float64
	apply := func(m *dynamics.Model, z []float64) {
		p := m.Net.Params()
		copy(p, base)
		for d, zd := range z {
			if zd == 0 {
				continue
			}
			col := dirs[d*len(sub) : (d+1)*len(sub)]
			for i, v := range col {
				p[lo+i] += float32(zd) * v
			}
		}
	}
	var failed error // of the journal
	objective := func(z []float64) float64 {
		f, ok := j.candidate(z)
		if !ok {
			m := <-pool
			defer func() { pool <- m }()
			if ctx.Err() != nil {
				return math.Inf(1)
			}
			apply(m, z)
			computed.candidates.Add(1)
			met, err := m.Evaluate(held, 1)
			f = math.Inf(1)
			if err == nil {
				if met.NLL > nll0+c.Tolerance {
					f = penalty * (1 + met.NLL - nll0)
				} else if sc, err := score(ctx, task, m, c.Search, c.Seed); err == nil && !math.IsNaN(sc.RewardMean) {
					f = sc.RewardMean
				}
			}
			if ctx.Err() != nil {
				return math.Inf(1) // cut short: not a result to keep
			}
			if err := j.recordCandidate(z, f); err != nil {
				mu.Lock()
				failed = cmp.Or(failed, err)
				mu.Unlock()
			}
		}
		mu.Lock()
		res.Evaluations++
		if f < best {
			best = f
			if f < penalty {
				bestZ = slices.Clone(z)
			}
		}
		mu.Unlock()
		return f
	}
	step, err := calibrate(model.Clone(), held, nll0+c.Tolerance, c, apply)
	if err != nil {
		return nil, err
	}
	logf("attack: initial step %.3g (held-out NLL %.4f)", step, nll0)
	res.Step = step
	// gonum's CMA-ES samples from N(mean, C) with C from InitCholesky (the
	// identity by default); its step size only scales the updates. So the
	// initial spread is given as C = step²·I.
	diag := make([]float64, c.Dims)
	for i := range diag {
		diag[i] = step * step
	}
	var chol mat.Cholesky
	if !chol.Factorize(mat.NewDiagDense(c.Dims, diag)) {
		return nil, errors.New("attack: initial covariance is not positive definite")
	}
	method := &optimize.CmaEsChol{InitStepSize: step, InitCholesky: &chol, Population: c.Population, Src: rng.New(c.Seed).Named("cma")}
	pop := c.Population
	if pop == 0 {
		pop = 4 + int(math.Floor(3*math.Log(float64(c.Dims))))
	}
	iter := 0
	// Minimize spends one evaluation on the start before CMA-ES's first
	// generation.
	settings := &optimize.Settings{Concurrent: workers, FuncEvaluations: 1 + pop*c.Iterations,
		Recorder: recorderFunc(func(loc *optimize.Location, op optimize.Operation, _ *optimize.Stats) error {
			if op == optimize.MajorIteration {
				iter++
				mu.Lock()
				res.BestPerIteration = append(res.BestPerIteration, best)
				mu.Unlock()
				logf("attack: iteration %d, best objective %.2f (%d evaluations)", iter, best, res.Evaluations)
			}
			return ctx.Err()
		})}
	_, err = optimize.Minimize(optimize.Problem{Func: objective}, make([]float64, c.Dims), settings, method)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if failed != nil {
		return nil, failed
	}
	if bestZ == nil {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("attack: no candidate of %d kept the held-out NLL within %g of %.4f; try a smaller step", res.Evaluations, c.Tolerance, nll0)
	}
	adv := model.Clone()
	apply(adv, bestZ)
	return adv, nil
}

// outputFit is the held-out NLL as a function of one member's weights (and
// bias, last) for one mean output: with the variances fixed it is the
// quadratic ½(w−w*)ᵀA(w−w*) + const, A = HᵀΛH for the last hidden features H
// and the predicted precisions Λ.
type outputFit struct {
	e, j  int
	delta []float64 // w* − w: the step to the minimum (ridge-damped)
	ridge float64
	vals  []float64  // A's eigenvalues, ascending
	vecs  *mat.Dense // their eigenvectors, in columns
}

// maxFitRows bounds the held-out transitions the fits use.
const maxFitRows = 20000

// fitOutputs computes an outputFit for every member and mean output of m's
// last layer on held.
func fitOutputs(m *dynamics.Model, held *data.Buffer) ([]outputFit, error) {
	n := min(held.Len(), maxFitRows)
	od, ad := held.ObsDim, held.ActDim
	feat, err := m.Features(held.Obs[:n*od], held.Act[:n*ad], n)
	if err != nil {
		return nil, err
	}
	E := m.Members()
	mean, variance, err := moments(m, held.Obs[:n*od], held.Act[:n*ad], n)
	if err != nil {
		return nil, err
	}
	h := m.Net.Layers[len(m.Net.Layers)-1].In
	H := mat.NewDense(n, h+1, nil)
	W := mat.NewDense(n, h+1, nil)
	res := make([]float64, n)
	var fits []outputFit
	for e := 0; e < E; e++ {
		featureMatrix(H, feat, e)
		for j := 0; j < od; j++ {
			// Rows scaled by √λ, so that WᵀW = HᵀΛH; residuals by λ.
			for r := 0; r < n; r++ {
				k := (e*n+r)*od + j
				lambda := 1.0
				if v := float64(variance[k]); v > 0 {
					lambda = 1 / v
				}
				s := math.Sqrt(lambda)
				for i := 0; i <= h; i++ {
					W.Set(r, i, s*H.At(r, i))
				}
				res[r] = lambda * float64(held.Next[r*od+j]-mean[k])
			}
			var A mat.SymDense
			A.SymOuterK(1, W.T())
			var eig mat.EigenSym
			if !eig.Factorize(&A, true) {
				return nil, errors.New("attack: eigen-decomposition of the likelihood's curvature failed")
			}
			f := outputFit{e: e, j: j, vals: eig.Values(nil), vecs: &mat.Dense{}}
			eig.VectorsTo(f.vecs)
			// The ridge keeps directions the data do not pin down where
			// they are: the step follows only what the data determine.
			var tr float64
			for i := 0; i <= h; i++ {
				tr += A.At(i, i)
			}
			f.ridge = 1e-4 * tr / float64(h+1)
			g := mat.NewVecDense(h+1, nil)
			g.MulVec(H.T(), mat.NewVecDense(n, res))
			// Δ = V (diag(vals)+ρ)⁻¹ Vᵀ g.
			c := mat.NewVecDense(h+1, nil)
			c.MulVec(f.vecs.T(), g)
			for i := 0; i <= h; i++ {
				c.SetVec(i, c.AtVec(i)/(max(f.vals[i], 0)+f.ridge))
			}
			d := mat.NewVecDense(h+1, nil)
			d.MulVec(f.vecs, c)
			f.delta = d.RawVector().Data
			fits = append(fits, f)
		}
	}
	return fits, nil
}

// featureMatrix sets dst (n × (h+1)) to member e's last hidden features,
// as Model.Features lays them out, with a column of ones for the bias.
func featureMatrix(dst *mat.Dense, feat []float32, e int) {
	n, w := dst.Dims()
	h := w - 1
	for r := 0; r < n; r++ {
		row := feat[(e*n+r)*h : (e*n+r+1)*h]
		for i, v := range row {
			dst.Set(r, i, float64(v))
		}
		dst.Set(r, h, 1)
	}
}

// refit moves base's output-layer mean weights (sub = base[lo:]) to the
// held-out NLL's minimum given the predicted variances.
func refit(sub []float32, fits []outputFit, out outputLayer) {
	for _, f := range fits {
		for i, v := range f.delta {
			sub[out.index(f.e, f.j, i)] += float32(v)
		}
	}
}

// outputLayer locates the output layer's mean weights in its part of the
// parameter vector, through nn's and dynamics' views of the layout.
type outputLayer struct {
	nn.Layer
	m *dynamics.Model
}

func outputOf(m *dynamics.Model) outputLayer {
	return outputLayer{Layer: m.Net.Layers[len(m.Net.Layers)-1], m: m}
}

// index is the position of member e's weight from hidden unit i (i = In:
// the bias) to the mean of target dimension j.
func (o outputLayer) index(e, j, i int) int { return o.Index(e, i, o.m.MeanOutput(j)) }

// nullDirections fills dirs with the dims directions of the output layer's
// mean weights (and biases) in which the held-out NLL curves least.
func nullDirections(dirs []float32, fits []outputFit, out outputLayer, dims int, spread float64) error {
	h := out.In
	type cand struct {
		s    float64
		f, k int
	}
	var cands []cand
	for fi, f := range fits {
		for k, v := range f.vals {
			cands = append(cands, cand{v, fi, k})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(a.s, b.s) })
	if len(cands) < dims {
		return fmt.Errorf("attack: only %d null directions for %d dimensions", len(cands), dims)
	}
	sub := len(dirs) / dims
	scale := spread * math.Sqrt(float64(h+1))
	for d, c := range cands[:dims] {
		col := dirs[d*sub : (d+1)*sub]
		f := fits[c.f]
		for i := 0; i <= h; i++ {
			col[out.index(f.e, f.j, i)] = float32(scale * f.vecs.At(i, c.k))
		}
	}
	return nil
}

// probeDirections fills dirs with the dims directions of the output
// layer's mean weights that move the mean predictions at probe inputs most
// per nat of held-out NLL: for each member and output, the generalised
// eigenvectors v of B v = μ A v with the largest μ, A the held-out NLL's
// curvature (ridge-damped, as in the refit) and B = HₚᵀHₚ for the probe
// features Hₚ. Each is scaled so that a unit move costs the same held-out
// NLL, so CMA-ES's one step size suits them all.
func probeDirections(dirs []float32, fits []outputFit, m *dynamics.Model, held *data.Buffer, acts env.Box, seed uint64, out outputLayer, dims int) error {
	E, h := out.Members(), out.In
	n := min(held.Len(), 5000)
	od, ad := held.ObsDim, held.ActDim
	act := make([]float32, n*ad)
	uniformActions(act, acts, rng.New(seed).Named("probe"))
	feat, err := m.Features(held.Obs[:n*od], act, n)
	if err != nil {
		return err
	}
	B := make([]*mat.SymDense, E)
	P := mat.NewDense(n, h+1, nil)
	for e := 0; e < E; e++ {
		featureMatrix(P, feat, e)
		B[e] = &mat.SymDense{}
		B[e].SymOuterK(1/float64(n), P.T())
	}
	type cand struct {
		mu   float64
		f, k int
	}
	var cands []cand
	whiten := make([]*mat.Dense, len(fits)) // A^(−1/2) per fit
	vecs := make([]*mat.Dense, len(fits))
	for fi, f := range fits {
		// A^(−1/2) = V diag(1/√(λ+ρ)) Vᵀ.
		W := mat.NewDense(h+1, h+1, nil)
		for i := 0; i <= h; i++ {
			s := 1 / math.Sqrt(max(f.vals[i], 0)+f.ridge)
			for r := 0; r <= h; r++ {
				W.Set(r, i, f.vecs.At(r, i)*s)
			}
		}
		W.Mul(W, f.vecs.T())
		var M mat.Dense
		M.Mul(W, B[f.e])
		M.Mul(&M, W)
		S := mat.NewSymDense(h+1, nil)
		for i := 0; i <= h; i++ {
			for j := i; j <= h; j++ {
				S.SetSym(i, j, 0.5*(M.At(i, j)+M.At(j, i)))
			}
		}
		var eig mat.EigenSym
		if !eig.Factorize(S, true) {
			return errors.New("attack: eigen-decomposition of the probe curvature failed")
		}
		vals := eig.Values(nil)
		vecs[fi] = &mat.Dense{}
		eig.VectorsTo(vecs[fi])
		whiten[fi] = W
		for k, mu := range vals {
			cands = append(cands, cand{mu, fi, k})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.mu, a.mu) })
	if len(cands) < dims {
		return fmt.Errorf("attack: only %d probe directions for %d dimensions", len(cands), dims)
	}
	sub := len(dirs) / dims
	v := mat.NewVecDense(h+1, nil)
	// A sums over the fit's rows, and the NLL averages over them and the
	// members: scaled so, a unit move along any direction costs one nat.
	scale := math.Sqrt(2 * float64(min(held.Len(), maxFitRows)*E))
	for d, c := range cands[:dims] {
		// v = A^(−1/2)u has vᵀAv = 1: every direction costs the same.
		v.MulVec(whiten[c.f], vecs[c.f].ColView(c.k))
		v.ScaleVec(scale, v)
		f := fits[c.f]
		col := dirs[d*sub : (d+1)*sub]
		for i := 0; i <= h; i++ {
			col[out.index(f.e, f.j, i)] = float32(v.AtVec(i))
		}
	}
	return nil
}

// calibrate finds CMA-ES's initial step: the largest step (halving or
// doubling from c.Step) at which at least a third of random candidates keep
// the likelihood constraint. A trained model sits at a minimum of its loss,
// and how far it can move depends on how sharp its likelihood is in the
// search directions, which no fixed step suits.
func calibrate(m *dynamics.Model, held *data.Buffer, limit float64, c Config, apply func(*dynamics.Model, []float64)) (float64, error) {
	src := rng.New(c.Seed).Named("calibrate")
	z := make([]float64, c.Dims)
	feasible := func(step float64) bool {
		ok := 0
		const probes = 6
		for p := 0; p < probes; p++ {
			for i := range z {
				z[i] = step * src.Normal()
			}
			apply(m, z)
			if met, err := m.Evaluate(held, 1); err == nil && met.NLL <= limit {
				ok++
			}
		}
		return 3*ok >= probes
	}
	step := c.Step
	if feasible(step) {
		for i := 0; i < 20 && feasible(2*step); i++ {
			step *= 2
		}
		return step, nil
	}
	for i := 0; i < 40; i++ {
		step /= 2
		if feasible(step) {
			return step, nil
		}
	}
	return 0, errors.New("attack: no step size keeps the held-out likelihood; the model may be at a sharp minimum")
}

type recorderFunc func(*optimize.Location, optimize.Operation, *optimize.Stats) error

func (f recorderFunc) Init() error { return nil }
func (f recorderFunc) Record(l *optimize.Location, op optimize.Operation, s *optimize.Stats) error {
	return f(l, op, s)
}

// subsetRange returns the parameter range searched.
func subsetRange(m *dynamics.Model, subset string) (int, int, error) {
	switch subset {
	case "all":
		return 0, len(m.Net.Params()), nil
	case "last", "":
		lo, hi := m.Net.Range(len(m.Net.Layers) - 1)
		return lo, hi, nil
	}
	return 0, 0, fmt.Errorf("attack: subset %q, want last or all", subset)
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// score runs e.Episodes MPC episodes with model and returns their rewards;
// an episode the planner cannot complete is an error.
func score(ctx context.Context, task env.Task, m *dynamics.Model, e study.EvalSpec, seed uint64) (Score, error) {
	eps, err := study.ScoreEpisodes(ctx, task, m, e, seed, seed, 1)
	if err == nil {
		err = eps.Faults
	}
	return Score{Rewards: eps.Rewards, RewardMean: eps.Mean, RewardStd: eps.Std}, err
}

// uniformActions fills act (rows × box.Dim()) with actions drawn uniformly
// from box, row after row.
func uniformActions(act []float32, box env.Box, src *rng.Source) {
	ad := box.Dim()
	for i := range act {
		k := i % ad
		act[i] = float32(src.Uniform(float64(box.Low[k]), float64(box.High[k])))
	}
}

// moments returns every member's predicted mean and variance of the next
// state for n inputs.
func moments(m *dynamics.Model, obs, act []float32, n int) (mean, variance []float32, err error) {
	E, od, ad := m.Members(), m.ObsDim(), m.ActDim()
	eo := make([]float32, E*n*od)
	ea := make([]float32, E*n*ad)
	for e := 0; e < E; e++ {
		copy(eo[e*n*od:], obs[:n*od])
		copy(ea[e*n*ad:], act[:n*ad])
	}
	mean = make([]float32, E*n*od)
	variance = make([]float32, E*n*od)
	p := m.NewPredictor(1)
	defer p.Close()
	return mean, variance, p.Moments(mean, variance, eo, ea, n, nil)
}
