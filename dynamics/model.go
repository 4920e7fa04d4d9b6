// Package dynamics holds learned dynamics models: ensembles of neural
// networks that predict the next observation from an observation and an
// action, in the four classes the objective-mismatch paper compares —
// P (one probabilistic network), PE (an ensemble of them), D (one
// deterministic network) and DE — with input normalisation, training by
// likelihood with per-sample weights, evaluation metrics and checkpoints.
//
// A model's inputs are the task's preprocessed observation features with the
// action appended, z-scored with statistics of the training data. Its
// targets are the changes next − obs, except for the dimensions the task
// marks absolute, which are predicted as values; targets are not scaled.
package dynamics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/fields"
	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/rng"
)

// Spec is what a model needs to know of its task; every env.Task is one.
type Spec interface {
	Name() string
	ObservationSpace() env.Box
	ActionSpace() env.Box
	InputDim() int
	Preprocess(dst, obs []float32)
	AbsoluteTargets() []int
}

// Class is one of the objective-mismatch paper's four model classes.
type Class string

// The model classes: probabilistic networks predict a mean and a
// log-variance per target and train on Gaussian likelihood; deterministic
// ones predict the mean and train on squared error; an ensemble holds
// several networks of the kind.
const (
	P  Class = "P"  // one probabilistic network
	PE Class = "PE" // an ensemble of probabilistic networks (PETS)
	D  Class = "D"  // one deterministic network
	DE Class = "DE" // an ensemble of deterministic networks
)

// Classes lists the model classes.
var Classes = []Class{P, PE, D, DE}

// ParseClass returns the class named s (case does not matter).
func ParseClass(s string) (Class, error) {
	c := Class(strings.ToUpper(s))
	if slices.Contains(Classes, c) {
		return c, nil
	}
	return "", fmt.Errorf("unknown model class %q (want P, PE, D or DE)", s)
}

// Probabilistic reports whether the class predicts variances.
func (c Class) Probabilistic() bool { return c == P || c == PE }

// Ensemble reports whether the class holds several networks.
func (c Class) Ensemble() bool { return c == PE || c == DE }

// MarshalText writes the class's name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c), nil }

// UnmarshalText reads a class's name, as ParseClass does; the empty text
// is the zero Class, which Validate refuses.
func (c *Class) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = ""
		return nil
	}
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Config is a model's architecture. Its zero value is not a model: start
// from DefaultConfig.
type Config struct {
	Class Class `yaml:"class"`
	// Members is the ensemble size: 1 for P and D, at least 2 for PE and
	// DE.
	Members    int           `yaml:"members"`
	Hidden     []int         `yaml:"hidden"` // widths of the hidden layers
	Activation nn.Activation `yaml:"activation"`
	// LearnLogVarBounds makes the soft log-variance bounds trainable, as
	// PETS does; otherwise they stay at +0.5 and −10 (mbrl-lib's default).
	LearnLogVarBounds bool `yaml:"learn_logvar_bounds"`
	// WeightDecay holds one L2 coefficient per layer (hidden layers then
	// the output layer), or one for all layers, or none.
	WeightDecay []float32 `yaml:"weight_decay"`
}

// DefaultConfig is mbrl-lib's cartpole model: an ensemble of 5
// probabilistic networks of 3 hidden layers of 200 swish units, weight
// decay 5·10⁻⁵.
func DefaultConfig() Config {
	return Config{Class: PE, Members: 5, Hidden: []int{200, 200, 200}, Activation: nn.Swish, WeightDecay: []float32{5e-5}}
}

// WithClass returns c for another class: single-network classes get one
// member; ensembles keep c's size, or 5 when c is a single network.
func (c Config) WithClass(class Class) Config {
	c.Class = class
	switch {
	case !class.Ensemble():
		c.Members = 1
	case c.Members < 2:
		c.Members = 5
	}
	return c
}

// Validate reports every field of c that is out of range, by its YAML
// name.
func (c Config) Validate() error {
	var errs fields.Errors
	switch {
	case !slices.Contains(Classes, c.Class):
		errs.Add("class", "is %q, want P, PE, D or DE", string(c.Class))
	case c.Class.Ensemble() && c.Members < 2:
		errs.Add("members", "is %d, want at least 2 for class %s (P or D is a single network)", c.Members, c.Class)
	case !c.Class.Ensemble() && c.Members != 1:
		errs.Add("members", "is %d, but class %s is a single network: want 1 (or class %sE)", c.Members, c.Class, c.Class)
	}
	if len(c.Hidden) == 0 {
		errs.Add("hidden", "is empty, want at least one hidden layer")
	}
	for i, h := range c.Hidden {
		if h < 1 {
			errs.Add(fmt.Sprintf("hidden[%d]", i), "is %d, want at least 1", h)
		}
	}
	if err := (nn.Config{Members: 1, In: 1, Out: 1, Hidden: []int{1}, Activation: c.Activation}).Validate(); err != nil {
		errs.Add("activation", "%v", err)
	}
	if n := len(c.WeightDecay); n > 1 && n != len(c.Hidden)+1 {
		errs.Add("weight_decay", "has %d coefficients for %d layers (give one per layer, hidden then output, or one for all)", n, len(c.Hidden)+1)
	}
	for i, w := range c.WeightDecay {
		if !(w >= 0) || math.IsInf(float64(w), 0) {
			errs.Add(fmt.Sprintf("weight_decay[%d]", i), "is %g, want a finite non-negative number", w)
		}
	}
	return errs.Err()
}

func (c Config) decay() []float32 {
	d := make([]float32, len(c.Hidden)+1)
	switch len(c.WeightDecay) {
	case 0:
	case 1:
		for i := range d {
			d[i] = c.WeightDecay[0]
		}
	default:
		copy(d, c.WeightDecay)
	}
	return d
}

// Model is a dynamics model for one task.
type Model struct {
	spec Spec
	cfg  Config
	// Net maps normalised inputs to targets (mean and raw log-variance
	// for probabilistic models).
	Net *nn.MLP
	// Head reads probabilistic outputs; nil for deterministic models.
	Head *nn.Gaussian
	// InMean and InStd normalise the inputs (features, then action).
	InMean, InStd []float32
	// Elites lists the members judged best on held-out data, in order;
	// all members when there was no held-out data.
	Elites []int

	obsDim, actDim, featDim int
	absolute                []bool
}

// New returns an untrained model for the task spec.
func New(spec Spec, cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dynamics: invalid config: %w", err)
	}
	cfg.Hidden = append([]int(nil), cfg.Hidden...)
	cfg.WeightDecay = append([]float32(nil), cfg.WeightDecay...)
	m := &Model{spec: spec, cfg: cfg,
		obsDim: spec.ObservationSpace().Dim(), actDim: spec.ActionSpace().Dim(), featDim: spec.InputDim()}
	if m.obsDim < 1 || m.actDim < 1 || m.featDim < 1 {
		return nil, errors.New("dynamics: task with empty observations, actions or features")
	}
	m.absolute = make([]bool, m.obsDim)
	for _, d := range spec.AbsoluteTargets() {
		if d < 0 || d >= m.obsDim {
			return nil, fmt.Errorf("dynamics: absolute target %d out of range", d)
		}
		m.absolute[d] = true
	}
	out := m.obsDim
	if cfg.Class.Probabilistic() {
		out *= 2
		m.Head = nn.NewGaussian(m.obsDim)
	}
	net, err := nn.New(nn.Config{Members: cfg.Members, In: m.featDim + m.actDim, Hidden: cfg.Hidden, Out: out, Activation: cfg.Activation}, rng.New(seed))
	if err != nil {
		return nil, fmt.Errorf("dynamics: %w", err)
	}
	m.Net = net
	m.InMean = make([]float32, m.featDim+m.actDim)
	m.InStd = make([]float32, m.featDim+m.actDim)
	for i := range m.InStd {
		m.InStd[i] = 1
	}
	m.Elites = make([]int, cfg.Members)
	for i := range m.Elites {
		m.Elites[i] = i
	}
	return m, nil
}

// Spec returns the model's task spec.
func (m *Model) Spec() Spec { return m.spec }

// Config returns the model's architecture.
func (m *Model) Config() Config {
	c := m.cfg
	c.Hidden = append([]int(nil), c.Hidden...)
	c.WeightDecay = append([]float32(nil), c.WeightDecay...)
	return c
}

// MeanOutput is the network output that predicts the mean of target
// dimension d (a probabilistic model's other outputs are log-variances).
func (m *Model) MeanOutput(d int) int {
	if m.Head != nil {
		return m.Head.MeanOutput(d)
	}
	return d
}

// Members is the ensemble size.
func (m *Model) Members() int { return m.cfg.Members }

// ObsDim and ActDim are the widths of observations and actions.
func (m *Model) ObsDim() int { return m.obsDim }

// ActDim is the width of actions.
func (m *Model) ActDim() int { return m.actDim }

// InputDim is the width of the network's input: features and action.
func (m *Model) InputDim() int { return m.featDim + m.actDim }

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	c := *m
	c.cfg = m.Config()
	c.Net = m.Net.Clone()
	if m.Head != nil {
		h := *m.Head
		h.MaxLogVar = append([]float32(nil), m.Head.MaxLogVar...)
		h.MinLogVar = append([]float32(nil), m.Head.MinLogVar...)
		c.Head = &h
	}
	c.InMean = append([]float32(nil), m.InMean...)
	c.InStd = append([]float32(nil), m.InStd...)
	c.Elites = append([]int(nil), m.Elites...)
	c.absolute = append([]bool(nil), m.absolute...)
	return &c
}

// normEps is the standard deviation below which an input is not scaled.
const normEps = 1e-8

// FitNormalizer sets the input statistics from n observations and actions.
func (m *Model) FitNormalizer(obs, act []float32, n int) {
	w := m.InputDim()
	in := make([]float32, n*w)
	m.features(in, obs, act, n)
	mean := make([]float64, w)
	sq := make([]float64, w)
	for i := 0; i < n; i++ {
		for j := 0; j < w; j++ {
			v := float64(in[i*w+j])
			mean[j] += v
			sq[j] += v * v
		}
	}
	for j := 0; j < w; j++ {
		mu := mean[j] / float64(n)
		v := sq[j]/float64(n) - mu*mu
		std := 0.0
		if v > 0 {
			std = math.Sqrt(v)
		}
		if std < normEps {
			std = 1
		}
		m.InMean[j], m.InStd[j] = float32(mu), float32(std)
	}
}

// features writes the un-normalised network inputs of n rows.
func (m *Model) features(dst, obs, act []float32, n int) {
	w, f := m.InputDim(), m.featDim
	// One batched call (tasks vectorise it), its rows packed at the start
	// of dst, then spread out from the last: a row never lands before
	// where it was read, so no row is overwritten before it moves.
	m.spec.Preprocess(dst[:n*f], obs[:n*m.obsDim])
	for i := n - 1; i >= 0; i-- {
		row := dst[i*w : (i+1)*w]
		copy(row[:f], dst[i*f:(i+1)*f])
		copy(row[f:], act[i*m.actDim:(i+1)*m.actDim])
	}
}

// inputs writes the normalised network inputs of n rows into dst.
func (m *Model) inputs(dst, obs, act []float32, n int) {
	m.features(dst, obs, act, n)
	kernel.Standardize(dst[:n*m.InputDim()], m.InMean, m.InStd)
}

// targets writes the training targets of n transitions.
func (m *Model) targets(dst, obs, next []float32, n int) {
	od := m.obsDim
	// Row by row: a modulo per value (an integer division) cost more than
	// the arithmetic.
	for r := 0; r < n; r++ {
		d, o, x := dst[r*od:(r+1)*od], obs[r*od:(r+1)*od], next[r*od:(r+1)*od]
		for j, abs := range m.absolute {
			if abs {
				d[j] = x[j]
			} else {
				d[j] = x[j] - o[j]
			}
		}
	}
}

// fromTargets is targets' inverse: the next observations of rows whose
// observations are obs and predicted targets pred (slices that start at a
// row's first value).
func (m *Model) fromTargets(dst, obs, pred []float32) {
	if !slices.Contains(m.absolute, true) {
		// Every dimension a change (the tasks' case): one flat loop, no
		// test per value.
		obs, pred = obs[:len(dst)], pred[:len(dst)]
		for i := range dst {
			dst[i] = obs[i] + pred[i]
		}
		return
	}
	od := m.obsDim
	for r := 0; r+od <= len(dst); r += od {
		d, o, p := dst[r:r+od], obs[r:r+od], pred[r:r+od]
		for j, abs := range m.absolute {
			if abs {
				d[j] = p[j]
			} else {
				d[j] = o[j] + p[j]
			}
		}
	}
}

// Predictor evaluates a model for planning: many rows at once, buffers
// reused, no allocation after the first calls of a given size. A Predictor
// is not safe for concurrent use.
type Predictor struct {
	m        *Model
	ev       *nn.Evaluator
	in, out  []float32
	mean, lv []float32
	noise    []float32

	// Row-wise work (features, normalisation, the Gaussian split, the
	// samples and the next state) runs in chunks on pool, reading the
	// current call's arguments.
	pool            *parallel.Pool
	obs, act        []float32
	next            []float32 // Next's result
	from            []int     // NextShared's input row of each result row
	shOut, shObs    []float32 // NextShared's rows of p.out and p.obs
	meanOut, varOut []float32 // Moments' results
	sample          bool
	seed            uint64 // of this call's noise; chunk c draws stream seed+c

	inputTask, splitTask, nextTask, momTask func(worker, task int)
}

// predictChunk is the rows of one task of a Predictor's row-wise work.
const predictChunk = 1024

func (m *Model) predictor(ev *nn.Evaluator, threads int) *Predictor {
	p := &Predictor{m: m, ev: ev, pool: parallel.New(threads)}
	p.inputTask, p.nextTask, p.momTask = p.inputRows, p.nextRows, p.momentRows
	p.splitTask = func(_, task int) { p.head(task) }
	return p
}

func (p *Predictor) inputRows(_, task int) {
	m := p.m
	r0 := task * predictChunk
	n := min(len(p.obs)/m.obsDim-r0, predictChunk)
	w := m.InputDim()
	m.inputs(p.in[r0*w:(r0+n)*w], p.obs[r0*m.obsDim:], p.act[r0*m.actDim:], n)
}

// results are the network outputs and observations of the result rows:
// the input rows', or NextShared's rows of them.
func (p *Predictor) results() (out, obs []float32) {
	if p.from != nil {
		return p.shOut, p.shObs
	}
	return p.out, p.obs
}

// head splits a chunk's outputs into the predicted change (or absolute
// value) and, for a Gaussian head, its log-variance, and returns the
// chunk's range of values.
func (p *Predictor) head(task int) (lo, hi int) {
	m := p.m
	n, lo, hi := p.chunk(task)
	out, _ := p.results()
	if m.Head == nil {
		copy(p.mean[lo:hi], out[lo:hi])
		return lo, hi
	}
	// Split cannot fail here: forward checked the sizes.
	m.Head.Split(p.mean[lo:hi], p.lv[lo:hi], out[2*lo:2*hi], n)
	return lo, hi
}

// chunk returns the rows of task's chunk of the row-wise work and its
// range of predicted values.
func (p *Predictor) chunk(task int) (n, lo, hi int) {
	od := p.m.obsDim
	r0 := task * predictChunk
	n = min(len(p.mean)/od-r0, predictChunk)
	return n, r0 * od, (r0 + n) * od
}

func (p *Predictor) nextRows(_, task int) {
	m := p.m
	if p.from != nil {
		p.gatherShared(task)
	}
	out, obs := p.results()
	if !p.sample || m.Head == nil {
		lo, hi := p.head(task)
		m.fromTargets(p.next[lo:hi], obs[lo:hi], p.mean[lo:hi])
		return
	}
	// The head's bounds and sample in one vectorised pass, ε drawn in
	// bulk from the chunk's own stream so that no chunk waits for
	// another's.
	n, lo, hi := p.chunk(task)
	eps := p.noise[lo:hi]
	kernel.Normals(eps, p.seed+uint64(task))
	// Sample cannot fail here: forward checked the sizes.
	m.Head.Sample(p.mean[lo:hi], out[2*lo:2*hi], eps, n)
	m.fromTargets(p.next[lo:hi], obs[lo:hi], p.mean[lo:hi])
}

// gatherShared copies the network outputs and observations of the input
// rows that task's chunk of NextShared's result rows come from.
func (p *Predictor) gatherShared(task int) {
	od, w := p.m.obsDim, p.m.Net.Layers[len(p.m.Net.Layers)-1].Out
	r0 := task * predictChunk
	for j := r0; j < min(r0+predictChunk, len(p.from)); j++ {
		i := p.from[j]
		copy(p.shOut[j*w:(j+1)*w], p.out[i*w:(i+1)*w])
		copy(p.shObs[j*od:(j+1)*od], p.obs[i*od:(i+1)*od])
	}
}

func (p *Predictor) momentRows(_, task int) {
	m := p.m
	lo, hi := p.head(task)
	_, obs := p.results()
	m.fromTargets(p.meanOut[lo:hi], obs[lo:hi], p.mean[lo:hi])
	if m.Head == nil {
		clear(p.varOut[lo:hi])
		return
	}
	kernel.Exp(p.varOut[lo:hi], p.lv[lo:hi])
}

// NewPredictor returns a Predictor on the given number of goroutines
// (threads < 1: GOMAXPROCS).
func (m *Model) NewPredictor(threads int) *Predictor {
	return m.predictor(nn.NewEvaluator(m.Net, threads), threads)
}

// NewPackedPredictor returns a Predictor whose predictions go through a
// snapshot of the model's network packed for the CPU in precision p (see
// nn.NewPackedEvaluator): faster, blind to later changes of the model. Its
// error wraps nn.ErrUnsupported where this build or CPU cannot.
func (m *Model) NewPackedPredictor(threads int, p nn.Precision) (*Predictor, error) {
	ev, err := nn.NewPackedEvaluator(m.Net, threads, p)
	if err != nil {
		return nil, err
	}
	return m.predictor(ev, threads), nil
}

// Precision is the arithmetic of the Predictor's network passes.
func (p *Predictor) Precision() nn.Precision { return p.ev.Precision() }

// Close stops the Predictor's goroutines.
func (p *Predictor) Close() {
	p.ev.Close()
	p.pool.Close()
}

func growTo(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// forward evaluates blocks of rows (block i through members[i]; nil means
// every member in order), then runs task over the chunks of the rows'
// results (NextShared's result rows, where p.from is set): the caller sets
// what task writes to.
func (p *Predictor) forward(obs, act []float32, rows int, members []int, task func(worker, task int)) error {
	m := p.m
	n := p.rows(rows, members)
	if len(obs) < n*m.obsDim || len(act) < n*m.actDim {
		return fmt.Errorf("dynamics: %d observations and %d actions for %d rows", len(obs)/m.obsDim, len(act)/m.actDim, n)
	}
	w := m.Net.Layers[len(m.Net.Layers)-1].Out
	p.in = growTo(p.in, n*m.InputDim())
	p.out = growTo(p.out, n*w)
	p.obs, p.act = obs[:n*m.obsDim], act[:n*m.actDim]
	p.pool.Run((n+predictChunk-1)/predictChunk, p.inputTask)
	p.act = nil
	if err := p.ev.ForwardMembers(p.out, p.in, rows, members); err != nil {
		p.obs = nil
		return err
	}
	if p.from != nil {
		n = len(p.from)
		p.shOut = growTo(p.shOut, n*w)
		p.shObs = growTo(p.shObs, n*m.obsDim)
	}
	p.mean = growTo(p.mean, n*m.obsDim)
	p.lv = growTo(p.lv, n*m.obsDim)
	p.noise = growTo(p.noise, n*m.obsDim)
	p.pool.Run((n+predictChunk-1)/predictChunk, task)
	p.obs = nil
	return nil
}

// Next writes into next the predicted next observations of k blocks of rows
// observations and actions, block i through member members[i] (nil: one
// block per member). With src, it samples the predicted Gaussian, drawing
// one number from src and the samples of each chunk of rows from a stream
// seeded by it, so that the samples do not depend on the thread count;
// without, it takes the mean. Deterministic models ignore src.
func (p *Predictor) Next(next, obs, act []float32, rows int, members []int, src *rng.Source) error {
	if nd := p.rows(rows, members) * p.m.obsDim; len(next) < nd {
		return fmt.Errorf("dynamics: next buffer holds %d values, want %d", len(next), nd)
	}
	return p.predictNext(next, obs, act, rows, members, nil, src)
}

// predictNext is Next, and NextShared with from, once their arguments are
// checked.
func (p *Predictor) predictNext(next, obs, act []float32, rows int, members, from []int, src *rng.Source) error {
	p.next, p.sample, p.from = next, src != nil, from
	if p.sample {
		p.seed = src.Uint64()
	}
	err := p.forward(obs, act, rows, members, p.nextTask)
	p.next, p.from = nil, nil
	return err
}

// NextShared is Next for result rows that share inputs: obs and act hold k
// blocks of rows input rows, as Next's do, and row j of next is a
// prediction for input row from[j], sampled (with src) with the noise Next
// gives the j-th of len(from) rows. Each input row's network pass is
// computed once however many result rows come from it: a planner's first
// step, whose particles of a sequence start from the same state, needs a
// quarter of the passes with 20 particles over 5 members. It gives what
// Next gives for the input rows repeated as from says (in blocks of the
// same members), bit for bit where a row's network pass does not depend on
// the call's other rows — the packed predictors' kernels; OpenBLAS's sgemm
// may round a row differently for another row count.
func (p *Predictor) NextShared(next, obs, act []float32, rows int, members []int, from []int, src *rng.Source) error {
	n := p.rows(rows, members)
	if len(next) < len(from)*p.m.obsDim {
		return fmt.Errorf("dynamics: next buffer holds %d values, want %d", len(next), len(from)*p.m.obsDim)
	}
	for j, i := range from {
		if i < 0 || i >= n {
			return fmt.Errorf("dynamics: result row %d from input row %d of %d", j, i, n)
		}
	}
	if len(from) == 0 {
		return nil
	}
	return p.predictNext(next, obs, act, rows, members, from, src)
}

// rows is the number of rows of k blocks of rows.
func (p *Predictor) rows(rows int, members []int) int {
	if members != nil {
		return len(members) * rows
	}
	return p.m.cfg.Members * rows
}

// Moments writes the predicted mean next observation and its variance
// (zero for deterministic models) for blocks of rows, as Next arranges them.
func (p *Predictor) Moments(mean, variance, obs, act []float32, rows int, members []int) error {
	if nd := p.rows(rows, members) * p.m.obsDim; len(mean) < nd || len(variance) < nd {
		return fmt.Errorf("dynamics: result buffers shorter than %d", nd)
	}
	p.meanOut, p.varOut = mean, variance
	err := p.forward(obs, act, rows, members, p.momTask)
	p.meanOut, p.varOut = nil, nil
	return err
}

// Features returns the last hidden layer's activations for n observations
// and actions, for every member: Members×n×width, member after member. The
// network's output is linear in them.
func (m *Model) Features(obs, act []float32, n int) ([]float32, error) {
	E := m.cfg.Members
	in := make([]float32, E*n*m.InputDim())
	m.inputs(in[:n*m.InputDim()], obs, act, n)
	for e := 1; e < E; e++ {
		copy(in[e*n*m.InputDim():], in[:n*m.InputDim()])
	}
	// The output layer's input; nn refuses a model with no hidden layer.
	out := make([]float32, E*n*m.Net.Layers[len(m.Net.Layers)-1].In)
	ev := nn.NewEvaluator(m.Net, 1)
	defer ev.Close()
	return out, ev.Features(out, in, n)
}
