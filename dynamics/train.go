package dynamics

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mismatch-rl/mismatch/data"
	"github.com/mismatch-rl/mismatch/internal/fields"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/internal/safefile"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/rng"
)

// TrainConfig controls one call of Trainer.Train. The fields with YAML
// names are settings of configuration files; the others are set by the
// code that trains. Its zero value is not usable: start from
// DefaultTrainConfig.
type TrainConfig struct {
	Epochs    int     `yaml:"epochs"`     // maximum number of passes over the training data
	BatchSize int     `yaml:"batch_size"` // rows per member per minibatch
	LR        float64 `yaml:"lr"`         // Adam's learning rate
	// HoldOut is the fraction of transitions held out for validation, in
	// [0, 0.5); held-out data drives early stopping and elite selection.
	HoldOut float64 `yaml:"hold_out"`
	// Patience stops training after this many epochs in which no member
	// improved its held-out error by 1%, then restores the best weights.
	// 0 trains for all epochs. It needs HoldOut > 0.
	Patience int `yaml:"patience"`
	// Elites is the number of members kept as elites, ranked on held-out
	// error (0 or more than the ensemble: all).
	Elites int `yaml:"elites"`

	// NoBootstrap trains every member on the same data; by default each
	// member of an ensemble draws its own resample with replacement.
	NoBootstrap bool `yaml:"-"`
	// Weights, when not nil, weight each transition's loss (one
	// non-negative value per transition of the buffer). Transitions of
	// weight zero are left out altogether and the others scaled to mean 1,
	// so training with them is training without the zero-weight ones, and
	// scaling all weights changes nothing.
	Weights []float32 `yaml:"-"`
	// KeepNormalizer leaves the model's input normalisation as it is
	// instead of fitting it to the training data: fine-tuning a trained
	// model on other data must not change what its first layer's weights
	// mean.
	KeepNormalizer bool   `yaml:"-"`
	Seed           uint64 `yaml:"-"`
	// OnEpoch is called after every epoch. Returning ErrStop ends training
	// early without error; any other error ends it with that error.
	OnEpoch func(EpochStats) error `yaml:"-"`
}

// DefaultTrainConfig is mbrl-lib's cartpole training: up to 50 epochs of
// minibatches of 32 at learning rate 10⁻³, 10% held out, stopping after 5
// epochs without improvement.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Epochs: 50, BatchSize: 32, LR: 1e-3, HoldOut: 0.1, Patience: 5}
}

// Validate reports every out-of-range setting of c by its YAML name.
func (c TrainConfig) Validate() error {
	var errs fields.Errors
	if c.Epochs < 1 {
		errs.Add("epochs", "is %d, want at least 1", c.Epochs)
	}
	if c.BatchSize < 1 {
		errs.Add("batch_size", "is %d, want at least 1", c.BatchSize)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		errs.Add("lr", "is %g, want a finite positive number", c.LR)
	}
	if !(c.HoldOut >= 0 && c.HoldOut < 0.5) {
		errs.Add("hold_out", "is %g, want it in [0, 0.5)", c.HoldOut)
	}
	switch {
	case c.Patience < 0:
		errs.Add("patience", "is %d, want 0 (off) or more", c.Patience)
	case c.Patience > 0 && !(c.HoldOut > 0):
		errs.Add("patience", "needs hold_out > 0 (early stopping watches the held-out error)")
	}
	if c.Elites < 0 {
		errs.Add("elites", "is %d, want 0 (all members) or more", c.Elites)
	}
	return errs.Err()
}

// ErrStop, returned by an OnEpoch callback, stops training cleanly.
var ErrStop = errors.New("dynamics: training stopped by callback")

// EpochStats describes one finished epoch.
type EpochStats struct {
	Epoch     int     // from 1
	TrainLoss float64 // mean minibatch loss (likelihood or squared-error term)
	HoldOut   *Metrics
}

// TrainResult summarises a training call.
type TrainResult struct {
	Epochs    int      // epochs run
	BestEpoch int      // the epoch whose weights the model holds
	TrainLoss float64  // of the last epoch
	HoldOut   *Metrics // of the kept weights; nil without held-out data
	Train     int      // transitions trained on
	Held      int      // transitions held out
}

// boundPenalty is PETS's coefficient on Σmax − Σmin of learned bounds.
const boundPenalty = 0.01

// Trainer trains a model with Adam. It keeps the optimiser's state between
// calls, as PETS and mbrl-lib do from one trial to the next.
type Trainer struct {
	m       *Model
	pass    *nn.Pass
	pred    *Predictor
	opt     *nn.Adam
	decay   []float32
	params  [][]float32
	grads   [][]float32
	dMax    []float32
	dMin    []float32
	x, y, w []float32
	dOut    []float32
	threads int // as asked: < 1 is GOMAXPROCS
	yield   parallel.Yielder
	spans   [][]nn.Decay // the weight decay, per parameter vector (t.params[0] is the net's)
}

// NewTrainer returns a trainer for m, running on the given number of
// goroutines (threads < 1: GOMAXPROCS).
func NewTrainer(m *Model, threads int) *Trainer {
	t := &Trainer{m: m, pass: nn.NewPass(m.Net, threads), pred: m.NewPredictor(threads), opt: nn.NewAdam(1e-3), decay: m.cfg.decay(),
		threads: threads}
	t.params = [][]float32{m.Net.Params()}
	t.grads = [][]float32{t.pass.Grad}
	if m.Head != nil && m.cfg.LearnLogVarBounds {
		t.dMax, t.dMin = make([]float32, m.obsDim), make([]float32, m.obsDim)
		t.params = append(t.params, m.Head.MaxLogVar, m.Head.MinLogVar)
		t.grads = append(t.grads, t.dMax, t.dMin)
	}
	return t
}

// SetThreads makes the trainer run on the given number of goroutines from
// its next call (threads < 1: GOMAXPROCS), keeping the optimiser's state.
// Training gives the same numbers on any number of goroutines.
func (t *Trainer) SetThreads(threads int) {
	if threads == t.threads {
		return
	}
	t.pass.Close()
	t.pred.Close()
	t.pass, t.pred, t.threads = nn.NewPass(t.m.Net, threads), t.m.NewPredictor(threads), threads
	t.grads[0] = t.pass.Grad
}

// Close stops the trainer's goroutines.
func (t *Trainer) Close() {
	t.pass.Close()
	t.pred.Close()
}

func (c TrainConfig) validate(n int) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("dynamics: invalid training config: %w", err)
	}
	if c.Weights != nil && len(c.Weights) != n {
		return fmt.Errorf("dynamics: %d weights for %d transitions", len(c.Weights), n)
	}
	for i, w := range c.Weights {
		if !(w >= 0) || math.IsInf(float64(w), 0) {
			return fmt.Errorf("dynamics: weight %d is %g, want a finite non-negative number", i, w)
		}
	}
	return nil
}

// Train fits the model to the buffer's transitions: it refits the input
// normaliser on the training transitions, then runs minibatch epochs.
// Cancelling ctx stops it between minibatches with ctx's error, leaving
// the model with the weights it had reached.
func (t *Trainer) Train(ctx context.Context, buf *data.Buffer, c TrainConfig) (TrainResult, error) {
	m := t.m
	var res TrainResult
	if buf.ObsDim != m.obsDim || buf.ActDim != m.actDim {
		return res, fmt.Errorf("dynamics: %d/%d-wide data for a %d/%d model", buf.ObsDim, buf.ActDim, m.obsDim, m.actDim)
	}
	n := buf.Len()
	if err := c.validate(n); err != nil {
		return res, err
	}
	if n == 0 {
		return res, errors.New("dynamics: no transitions to train on")
	}
	t.opt.LR = c.LR
	src := rng.New(c.Seed)
	train, hold, weights := split(n, c, src)
	if len(train) == 0 {
		return res, errors.New("dynamics: every training transition has weight zero")
	}
	held := len(hold)
	res.Train, res.Held = len(train), held

	// Inputs and targets of the training rows, computed once, with the
	// normaliser fitted on them.
	nt := len(train)
	sub := buf.Subset(train)
	if !c.KeepNormalizer {
		m.FitNormalizer(sub.Obs, sub.Act, nt)
	}
	inW, outW, od := m.InputDim(), m.Net.Config().Out, m.obsDim
	X := make([]float32, nt*inW)
	Y := make([]float32, nt*od)
	m.inputs(X, sub.Obs, sub.Act, nt)
	m.targets(Y, sub.Obs, sub.Next, nt)
	var holdBuf *data.Buffer
	if held > 0 {
		holdBuf = buf.Subset(hold)
	}

	E := m.cfg.Members
	seqs := bootstrap(E, nt, c.NoBootstrap, src)
	B := min(c.BatchSize, nt)
	t.x = growTo(t.x, E*B*inW)
	t.y = growTo(t.y, E*B*od)
	t.w = growTo(t.w, E*B)
	t.dOut = growTo(t.dOut, E*B*outW)

	bestMember := make([]float64, E)
	for e := range bestMember {
		bestMember[e] = math.Inf(1)
	}
	var snapshot *Model
	since := 0
	cancel := ctx.Done()
	for epoch := 1; epoch <= c.Epochs; epoch++ {
		for e := range seqs {
			src.Child(uint64(1000 + epoch*E + e)).Shuffle(seqs[e])
		}
		loss, err := t.epoch(cancel, X, Y, weights, seqs, B)
		if err == errCancelled {
			return res, ctx.Err()
		}
		if err != nil {
			return res, fmt.Errorf("dynamics: epoch %d: %w", epoch, err)
		}
		res.Epochs, res.TrainLoss = epoch, loss
		if math.IsNaN(res.TrainLoss) || math.IsInf(res.TrainLoss, 0) {
			return res, fmt.Errorf("dynamics: training loss became %g in epoch %d", res.TrainLoss, epoch)
		}
		stats := EpochStats{Epoch: epoch, TrainLoss: res.TrainLoss}
		improved := true
		if holdBuf != nil {
			met, err := m.evaluate(t.pred, holdBuf, nil)
			if err != nil {
				return res, err
			}
			stats.HoldOut = &met
			// A member improves when its error falls by 1% (mbrl-lib's
			// rule); any member improving keeps this epoch's weights.
			improved = false
			for e, v := range met.MemberMSE {
				if v < bestMember[e]*(1-0.01) || math.IsInf(bestMember[e], 1) {
					improved = true
				}
			}
			if improved {
				copy(bestMember, met.MemberMSE)
				snapshot = m.Clone()
				res.BestEpoch = epoch
				res.HoldOut = &met
				since = 0
			} else {
				since++
			}
		} else {
			res.BestEpoch = epoch
		}
		if c.OnEpoch != nil {
			if err := c.OnEpoch(stats); err != nil {
				if errors.Is(err, ErrStop) {
					break
				}
				return res, err
			}
		}
		if c.Patience > 0 && holdBuf != nil && since >= c.Patience {
			break
		}
	}
	if snapshot != nil {
		m.restore(snapshot)
	}
	m.Elites = rankElites(bestMember, c.Elites, holdBuf != nil)
	return res, nil
}

// split draws the held-out transitions (a fraction c.HoldOut of n) and
// leaves out of training those of weight zero, scaling the other weights
// to mean 1. The training set keeps the buffer's order, so that which
// transitions are held out or weighted zero is the only thing that
// changes it.
func split(n int, c TrainConfig, src *rng.Source) (train, hold []int, weights []float32) {
	perm := make([]int, n)
	src.Child(0).Perm(perm)
	held := int(float64(n) * c.HoldOut)
	hold = slices.Sorted(slices.Values(perm[:held]))
	train = slices.Sorted(slices.Values(perm[held:]))
	if c.Weights == nil {
		return train, hold, nil
	}
	kept := train[:0:0]
	var sum float64
	for _, i := range train {
		if c.Weights[i] > 0 {
			kept = append(kept, i)
			sum += float64(c.Weights[i])
		}
	}
	mean := sum / float64(len(kept))
	weights = make([]float32, len(kept))
	for j, i := range kept {
		weights[j] = float32(float64(c.Weights[i]) / mean)
	}
	return kept, hold, weights
}

// bootstrap returns each of E members' sequence of training rows (of nt):
// its own resample with replacement, or all rows in order for a single
// network or without bootstrapping.
func bootstrap(E, nt int, off bool, src *rng.Source) [][]int {
	seqs := make([][]int, E)
	for e := range seqs {
		s := make([]int, nt)
		r := src.Child(uint64(1 + e))
		if E > 1 && !off {
			for i := range s {
				s[i] = r.IntN(nt)
			}
		} else {
			for i := range s {
				s[i] = i
			}
		}
		seqs[e] = s
	}
	return seqs
}

// errCancelled reports that an epoch stopped on cancellation.
var errCancelled = errors.New("dynamics: cancelled")

// epoch runs one pass of minibatches of B rows per member over the
// members' (shuffled) sequences and returns the mean minibatch loss. It
// checks cancel between minibatches.
func (t *Trainer) epoch(cancel <-chan struct{}, X, Y, weights []float32, seqs [][]int, B int) (float64, error) {
	nt := len(seqs[0])
	var total float64
	batches := 0
	for b0 := 0; b0 < nt; b0 += B {
		select {
		case <-cancel:
			return 0, errCancelled
		default:
		}
		// A scheduling point every few batches (see parallel.Yielder).
		t.yield.Yield()
		loss, err := t.step(X, Y, weights, seqs, b0, min(B, nt-b0))
		if err != nil {
			return 0, err
		}
		total += loss
		batches++
	}
	return total / float64(batches), nil
}

// step trains on one minibatch: rows b0..b0+nb of every member's sequence.
func (t *Trainer) step(X, Y, weights []float32, seqs [][]int, b0, nb int) (float64, error) {
	m := t.m
	inW, od, E := m.InputDim(), m.obsDim, m.cfg.Members
	x, y := t.x[:E*nb*inW], t.y[:E*nb*od]
	var w []float32
	if weights != nil {
		w = t.w[:E*nb]
	}
	for e := 0; e < E; e++ {
		for r := 0; r < nb; r++ {
			i := seqs[e][b0+r]
			row := e*nb + r
			copy(x[row*inW:(row+1)*inW], X[i*inW:(i+1)*inW])
			copy(y[row*od:(row+1)*od], Y[i*od:(i+1)*od])
			if w != nil {
				w[row] = weights[i]
			}
		}
	}
	out, err := t.pass.Forward(x, nb)
	if err != nil {
		return 0, err
	}
	dOut := t.dOut[:len(out)]
	var loss float64
	if m.Head != nil {
		if t.dMax != nil {
			clear(t.dMax)
			clear(t.dMin)
		}
		loss, err = m.Head.Loss(out, y, w, E, nb, dOut, t.dMax, t.dMin)
		if err == nil && t.dMax != nil {
			m.Head.BoundPenalty(boundPenalty, t.dMax, t.dMin)
		}
	} else {
		loss, err = nn.MSE(out, y, w, E, nb, od, dOut)
	}
	if err != nil {
		return 0, err
	}
	if err := t.pass.Backward(dOut); err != nil {
		return 0, err
	}
	if t.spans == nil {
		// The weight decay goes into the optimiser's pass (one pass over
		// the parameters, not two: Adam is memory-bound).
		spans, err := m.Net.DecaySpans(t.decay)
		if err != nil {
			return 0, err
		}
		t.spans = make([][]nn.Decay, len(t.params))
		t.spans[0] = spans
	}
	if err := t.opt.StepDecayed(t.params, t.grads, t.spans); err != nil {
		return 0, err
	}
	return loss, nil
}

// restore copies the weights, bounds and normaliser of s into m.
func (m *Model) restore(s *Model) {
	m.Net.SetParams(s.Net.Params())
	if m.Head != nil {
		copy(m.Head.MaxLogVar, s.Head.MaxLogVar)
		copy(m.Head.MinLogVar, s.Head.MinLogVar)
	}
}

// rankElites orders members by held-out error and keeps the first k; with
// no held-out data every member is an elite.
func rankElites(score []float64, k int, ranked bool) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	if !ranked {
		return idx
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case score[a] < score[b]:
			return -1
		case score[a] > score[b]:
			return 1
		}
		return 0
	})
	if k > 0 && k < len(idx) {
		idx = idx[:k]
	}
	return idx
}

// SaveState writes the optimiser's state (Adam's step count and moments)
// to path atomically, so that training can later resume exactly.
func (t *Trainer) SaveState(path string) error {
	step, m, v := t.opt.State()
	var b bytes.Buffer
	enc := gob.NewEncoder(&b)
	if err := enc.Encode(trainerState{Version: 1, Step: step, M: m, V: v}); err != nil {
		return err
	}
	return safefile.WriteBytes(path, b.Bytes())
}

// LoadState restores a state saved by SaveState for this trainer's model.
func (t *Trainer) LoadState(path string) error {
	raw, err := readBounded(path, maxCheckpoint)
	if err != nil {
		return err
	}
	var st trainerState
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&st); err != nil {
		return fmt.Errorf("optimiser state %s: %w", path, err)
	}
	if st.Version != 1 {
		return fmt.Errorf("optimiser state %s: version %d", path, st.Version)
	}
	if len(st.M) != 0 {
		if len(st.M) != len(t.params) {
			return fmt.Errorf("optimiser state %s holds %d parameter groups, the model has %d", path, len(st.M), len(t.params))
		}
		for i, p := range t.params {
			if len(st.M[i]) != len(p) {
				return fmt.Errorf("optimiser state %s: group %d has %d values, the model %d", path, i, len(st.M[i]), len(p))
			}
		}
	}
	return t.opt.SetState(st.Step, st.M, st.V)
}

type trainerState struct {
	Version int
	Step    int
	M, V    [][]float32
}
