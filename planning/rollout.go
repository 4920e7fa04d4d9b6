package planning

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mismatch-rl/mismatch/dynamics"
	"github.com/mismatch-rl/mismatch/env"
	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/internal/parallel"
	"github.com/mismatch-rl/mismatch/nn"
	"github.com/mismatch-rl/mismatch/rng"
)

// Propagation is how particles carry a model's uncertainty through a
// rollout.
type Propagation int

// The propagation methods of PETS.
const (
	// TSInf: each particle follows one ensemble member, drawn at random,
	// for the whole horizon, sampling that member's predicted Gaussian.
	TSInf Propagation = iota
	// TS1: each particle draws a new member at every step.
	TS1
	// Expectation: every particle moves to the members' average mean
	// prediction; nothing is sampled.
	Expectation
	// Mean: as TSInf, but each particle takes its member's mean
	// prediction instead of sampling.
	Mean
)

var propagationNames = [...]string{TSInf: "ts-inf", TS1: "ts1", Expectation: "expectation", Mean: "mean"}

func (p Propagation) String() string {
	if int(p) < len(propagationNames) {
		return propagationNames[p]
	}
	return fmt.Sprintf("Propagation(%d)", int(p))
}

// ParsePropagation returns the propagation method named s: ts-inf, ts1,
// expectation or mean.
func ParsePropagation(s string) (Propagation, error) {
	for i, n := range propagationNames {
		if strings.EqualFold(s, n) || strings.EqualFold(strings.ReplaceAll(s, "_", "-"), n) {
			return Propagation(i), nil
		}
	}
	return 0, fmt.Errorf("unknown propagation %q (want ts-inf, ts1, expectation or mean)", s)
}

// MarshalText writes the propagation's name.
func (p Propagation) MarshalText() ([]byte, error) {
	if p < TSInf || p > Mean {
		return nil, fmt.Errorf("planning: unknown propagation %d", int(p))
	}
	return []byte(propagationNames[p]), nil
}

// UnmarshalText reads a propagation's name, as ParsePropagation does; the
// empty text is the zero value, TSInf (files of earlier versions hold it
// for planners they do not use).
func (p *Propagation) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = TSInf
		return nil
	}
	v, err := ParsePropagation(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ModelObjective scores action sequences by rolling them out through a
// dynamics model from a start observation: each sequence's return is the
// task's reward summed over the horizon and averaged over its particles.
// A particle whose state becomes NaN or infinite makes its sequence's
// return −Inf, below every valid one. A particle that reaches a terminal
// state earns nothing more and stays there. Particles of a sequence on one
// member that share their inputs — all of them at the first step, which
// starts from one state; under Mean, at every step — share one network
// pass, and each gets what a pass of its own would give. An evaluation of
// many sequences is split into lanes by its size (see laneRows), whose
// returns do not depend on the thread count.
type ModelObjective struct {
	task      env.Task
	model     *dynamics.Model
	pred      *dynamics.Predictor
	horizon   int
	particles int
	prop      Propagation
	src       *rng.Source
	start     []float32
	members   []int

	// Scratch, grown to the largest population seen.
	state, x, a, y  []float32
	mean, vari      []float32
	perm            []int
	rew             []float32
	term            []bool
	total           []float64 // per particle, or per slot: see rewardRows
	done, broken    []bool
	slotTotal       []float64
	slotBroken      []bool
	blockMembers    []int
	expandedMembers []int

	// The shared inputs of sharedStep.
	sharedX, sharedA []float32
	sharedFrom       []int
	sharedRow        []int // per sequence: its input row in the current block, or -1
	sharedSlots      []int // per input row, block after block: the first slot it serves
	sharedCount      []int // per block: its input rows before padding
	unshared         bool  // tests: predict every slot apart at every step

	// Lanes: evaluations of many sequences are rolled out in lanes (see
	// laneCount), each an objective of its own on one goroutine.
	lanes     []*ModelObjective
	laneSeed  uint64 // lane i's objective draws from the stream of laneSeed + i
	lanePool  *parallel.Pool
	laneErrs  []error
	laneCalls func(worker, lane int)
	laneN     int
	laneRet   []float64
	laneSeqs  []float32
	laneCtx   context.Context
	prec      nn.Precision // asked for: each lane is made with it
	yield     parallel.Yielder

	// Row-wise work (gathering states and actions, rewards) runs in
	// chunks on pool, reading the current step's arguments.
	pool                   *parallel.Pool
	seqs                   []float32
	step, rows, real       int  // real: the rows that are not padding
	inSlots                bool // x holds the particles' states: see Evaluate
	gatherTask, rewardTask func(worker, task int)
}

// rolloutChunk is the rows of one task of the row-wise work.
const rolloutChunk = 1024

// gatherRows copies each slot's particle state (unless the slots hold
// them already) and its sequence's action at the current step into the
// model's inputs.
func (o *ModelObjective) gatherRows(_, task int) {
	od, ad, H, P := o.model.ObsDim(), o.model.ActDim(), o.horizon, o.particles
	for i := task * rolloutChunk; i < min((task+1)*rolloutChunk, o.rows); i++ {
		r := o.perm[i]
		seq := r / P
		if !o.inSlots {
			copy(o.x[i*od:(i+1)*od], o.state[r*od:(r+1)*od])
		}
		copy(o.a[i*ad:(i+1)*ad], o.seqs[(seq*H+o.step)*ad:(seq*H+o.step+1)*ad])
	}
}

// rewardRows scores each slot's transition with the task's reward (its
// planning score, for tasks that have one) and termination functions, and
// moves the slot's particle on: its return, its state, whether it is done
// or broken. Slots below real carry distinct particles (the permutation's
// first part), so chunks write to distinct particles.
func (o *ModelObjective) rewardRows(_, task int) {
	od, ad := o.model.ObsDim(), o.model.ActDim()
	lo, hi := task*rolloutChunk, min((task+1)*rolloutChunk, o.rows)
	if pr, ok := o.task.(env.PlanRewarder); ok {
		pr.PlanReward(o.rew[lo:hi], o.start, o.x[lo*od:hi*od], o.a[lo*ad:hi*ad], o.y[lo*od:hi*od])
	} else {
		o.task.Reward(o.rew[lo:hi], o.x[lo*od:hi*od], o.a[lo*ad:hi*ad], o.y[lo*od:hi*od])
	}
	o.task.Terminated(o.term[lo:hi], o.x[lo*od:hi*od], o.a[lo*ad:hi*ad], o.y[lo*od:hi*od])
	for i := lo; i < min(hi, o.real); i++ {
		// k indexes the particle's accumulators: by slot where the slot
		// keeps its particle (sequential access), else by particle.
		k := i
		if !o.inSlots {
			k = o.perm[i]
		}
		if o.done[k] || o.broken[k] {
			continue
		}
		next := o.y[i*od : (i+1)*od]
		if !finite32(o.rew[i]) || !allFinite(next) {
			o.broken[k] = true
			continue
		}
		o.total[k] += float64(o.rew[i])
		if o.inSlots {
			copy(o.x[i*od:(i+1)*od], next)
		} else {
			copy(o.state[k*od:(k+1)*od], next)
		}
		o.done[k] = o.term[i]
	}
}

// finite32 reports whether v is neither NaN nor infinite: its exponent is
// not all ones.
func finite32(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

func allFinite(v []float32) bool {
	ok := true
	for _, x := range v {
		ok = ok && finite32(x)
	}
	return ok
}

// NewModelObjective returns an objective over model's elite members with
// the given horizon, particles per sequence and propagation, running the
// model on threads goroutines in precision prec. The model's network is
// packed for the CPU when the objective is made (see nn.NewPackedEvaluator;
// not in purego or nodnnl builds): the model must not change while the
// objective is in use. BF16 needs AVX512_BF16; elsewhere the objective
// computes in FP32, as its Precision says.
func NewModelObjective(task env.Task, model *dynamics.Model, horizon, particles int, prop Propagation, prec nn.Precision, threads int, seed uint64) (*ModelObjective, error) {
	if horizon < 1 || particles < 1 {
		return nil, fmt.Errorf("planning: model rollouts of horizon %d with %d particles", horizon, particles)
	}
	if prop < TSInf || prop > Mean {
		return nil, fmt.Errorf("planning: unknown propagation %d", prop)
	}
	if model.ObsDim() != task.ObservationSpace().Dim() || model.ActDim() != task.ActionSpace().Dim() {
		return nil, fmt.Errorf("planning: a %d/%d model for the %d/%d task %s", model.ObsDim(), model.ActDim(), task.ObservationSpace().Dim(), task.ActionSpace().Dim(), task.Name())
	}
	if prop == Expectation {
		// Every particle of a sequence would follow the same path.
		particles = 1
	}
	pred, err := model.NewPackedPredictor(threads, prec)
	if errors.Is(err, nn.ErrUnsupported) && prec == nn.BF16 {
		pred, err = model.NewPackedPredictor(threads, nn.FP32)
	}
	if errors.Is(err, nn.ErrUnsupported) {
		pred, err = model.NewPredictor(threads), nil
	}
	if err != nil {
		return nil, err
	}
	o := &ModelObjective{task: task, model: model, pred: pred, horizon: horizon,
		particles: particles, prop: prop, src: rng.New(seed), members: append([]int(nil), model.Elites...),
		start: make([]float32, model.ObsDim())}
	o.pool = parallel.New(threads)
	o.gatherTask, o.rewardTask = o.gatherRows, o.rewardRows
	o.laneSeed = rng.New(seed).Named("lanes").Uint64()
	o.lanePool = parallel.New(min(o.pool.Workers(), maxLanes))
	o.laneCalls, o.prec = o.runLane, prec
	return o, nil
}

// Close stops the objective's goroutines.
func (o *ModelObjective) Close() {
	o.pred.Close()
	o.pool.Close()
	o.lanePool.Close()
	for _, l := range o.lanes {
		l.Close()
	}
}

// laneRows, minLaneRows and maxLanes set how an evaluation is split into
// lanes: one lane for every laneRows particle rows a member carries, but
// two from 2·minLaneRows on, at most maxLanes. The count follows the
// evaluation's size only, never the thread count, so the returns do not
// depend on the threads: lanes run side by side on as many goroutines as
// there are, one after another on one. Side by side, each lane on one
// goroutine keeps the cores busier than one rollout on all of them, whose
// row-wise work between network passes leaves all but one core waiting
// (the notebook-sized step on 2 goroutines: two lanes 0.34 s, one rollout
// 0.39–0.43 s, Zen 5; the fast presets' half-cheetah step, 200 rows a
// member: two lanes 0.117 s, one 0.156 s, Zen 4), and with their shares
// on whole groups of rows (laneStart) one goroutine loses nothing by them.
const (
	laneRows    = 1000
	minLaneRows = 100
	maxLanes    = 8
)

// laneCount is the lanes an evaluation of n sequences is rolled out in.
func (o *ModelObjective) laneCount(n int) int {
	perMember := n * o.particles / max(len(o.members), 1)
	if o.prop == Expectation {
		perMember = n
	}
	return lanesFor(perMember, n)
}

// lanesFor is the lanes for n sequences whose particle rows come to
// perMember for each member.
func lanesFor(perMember, n int) int {
	return min(max(perMember/laneRows, min(perMember/minLaneRows, 2), 1), maxLanes, max(n, 1))
}

// laneStart is the first of lane l's sequences when n are split into L
// lanes: l·n/L moved to the nearest count that gives every member a
// multiple of kernel.NetRows rows, where that leaves each lane most of its
// share, so that the lanes' network calls compute no more rows than one
// objective's would (at the fast presets' 200 rows a member, two lanes of
// 100 compute 224 rows a member where one computes 208, and took the
// 1-goroutine step 10% longer).
func (o *ModelObjective) laneStart(l, L, n int) int {
	if l >= L {
		return n
	}
	// q sequences give every member whole groups: under Expectation a
	// sequence is a row on each member; otherwise its particles are dealt
	// out over the members, so q·particles must be a multiple of a group
	// on each.
	q := kernel.NetRows
	if o.prop != Expectation {
		g := kernel.NetRows * max(len(o.members), 1)
		q = g / gcd(g, o.particles)
	}
	s := l * n / L
	if q > n/(2*L) {
		return s
	}
	return min((s+q/2)/q*q, n)
}

// gcd is the greatest common divisor of a and b.
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// runLane evaluates lane l's share of the current evaluation.
func (o *ModelObjective) runLane(_, l int) {
	L := len(o.laneErrs)
	lo, hi := o.laneStart(l, L, o.laneN), o.laneStart(l+1, L, o.laneN)
	H, ad := o.horizon, o.model.ActDim()
	lane := o.lanes[l]
	lane.unshared = o.unshared
	if err := lane.SetStart(o.start); err != nil {
		o.laneErrs[l] = err
		return
	}
	o.laneErrs[l] = lane.evaluate(o.laneCtx, o.laneRet[lo:hi], o.laneSeqs[lo*H*ad:hi*H*ad], hi-lo)
}

// Horizon is the length of the sequences it scores.
func (o *ModelObjective) Horizon() int { return o.horizon }

// Precision is the arithmetic the model's predictions are computed in.
func (o *ModelObjective) Precision() nn.Precision { return o.pred.Precision() }

// SetStart sets the observation rollouts start from.
func (o *ModelObjective) SetStart(obs []float32) error {
	if len(obs) != len(o.start) {
		return fmt.Errorf("planning: start observation of %d values, want %d", len(obs), len(o.start))
	}
	copy(o.start, obs)
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Evaluate is the objective: it scores n sequences of horizon×actDim.
func (o *ModelObjective) Evaluate(ctx context.Context, returns []float64, seqs []float32, n int) error {
	ad, H := o.model.ActDim(), o.horizon
	if len(returns) < n || len(seqs) < n*H*ad {
		return fmt.Errorf("planning: %d returns and %d actions for %d sequences of %d steps", len(returns), len(seqs), n, H)
	}
	L := o.laneCount(n)
	if L == 1 {
		return o.evaluate(ctx, returns, seqs, n)
	}
	for len(o.lanes) < L {
		lane, err := NewModelObjective(o.task, o.model, o.horizon, o.particles, o.prop, o.prec, 1, o.laneSeed+uint64(len(o.lanes)))
		if err != nil {
			return err
		}
		o.lanes = append(o.lanes, lane)
	}
	o.laneErrs = grow(o.laneErrs, L)
	o.laneN, o.laneRet, o.laneSeqs, o.laneCtx = n, returns, seqs, ctx
	o.lanePool.Run(L, o.laneCalls)
	o.laneRet, o.laneSeqs, o.laneCtx = nil, nil, nil
	for _, err := range o.laneErrs {
		if err != nil {
			return err
		}
	}
	return nil
}

// evaluate is Evaluate in one lane.
func (o *ModelObjective) evaluate(ctx context.Context, returns []float64, seqs []float32, n int) error {
	od, ad := o.model.ObsDim(), o.model.ActDim()
	H := o.horizon
	E := len(o.members)
	P := o.particles
	R := n * P // particle rows: row r is particle r%P of sequence r/P
	if o.prop == Expectation {
		E = 1 // one block: rows are expanded over members below
	}
	block := (R + E - 1) / E
	Rp := block * E // padded to fill every member's block
	// Where each slot carries one particle for the whole horizon, the
	// slots' inputs hold the particles' states (padding slots keep the
	// start, finite, their results dropped); otherwise states are kept
	// per particle and gathered into the slots at every step.
	o.inSlots = o.prop == TSInf || o.prop == Mean
	if !o.inSlots {
		o.state = grow(o.state, R*od)
		for r := 0; r < R; r++ {
			copy(o.state[r*od:(r+1)*od], o.start)
		}
	}
	o.total = grow(o.total, R)
	o.done = grow(o.done, R)
	o.broken = grow(o.broken, R)
	clear(o.total)
	clear(o.done)
	clear(o.broken)
	o.perm = grow(o.perm, Rp)
	o.rew = grow(o.rew, Rp)
	o.term = grow(o.term, Rp)
	rows := Rp
	if o.prop == Expectation {
		rows = R * len(o.members)
	}
	o.x = grow(o.x, rows*od)
	o.a = grow(o.a, rows*ad)
	o.y = grow(o.y, rows*od)
	if o.inSlots {
		for i := 0; i < Rp; i++ {
			copy(o.x[i*od:(i+1)*od], o.start)
		}
	}
	if o.prop == Expectation {
		o.mean = grow(o.mean, rows*od)
		o.vari = grow(o.vari, rows*od)
	}
	// Padding rows repeat real ones; their results are dropped.
	assign := func() {
		for i := range o.perm {
			o.perm[i] = i % R
		}
		if o.prop != Expectation {
			// Shuffle which particle each block slot carries, so that
			// members are assigned at random (the first R slots are
			// a permutation of the rows).
			for i := R - 1; i > 0; i-- {
				j := o.src.IntN(i + 1)
				o.perm[i], o.perm[j] = o.perm[j], o.perm[i]
			}
		}
	}
	assign()
	var sample *rng.Source
	if o.prop == TSInf || o.prop == TS1 {
		sample = o.src
	}
	cancel := ctx.Done()
	for t := 0; t < H; t++ {
		select {
		case <-cancel:
			return ctx.Err()
		default:
		}
		// A scheduling point every few steps, for the runtime's monitor
		// (see parallel.Yielder): a yield each step cost the fast
		// presets' 1-goroutine planner 2.5% (its steps last 1 ms).
		o.yield.Yield()
		if o.prop == TS1 && t > 0 {
			assign()
		}
		tasks := (Rp + rolloutChunk - 1) / rolloutChunk
		o.seqs, o.step, o.rows, o.real = seqs, t, Rp, R
		o.pool.Run(tasks, o.gatherTask)
		var err error
		if o.prop == Expectation {
			err = o.expectationStep(R, od, ad)
		} else {
			o.blockMembers = grow(o.blockMembers, E)
			copy(o.blockMembers, o.members)
			if (t == 0 || o.prop == Mean) && !o.unshared {
				err = o.sharedStep(n, block, sample)
			} else {
				err = o.pred.Next(o.y, o.x, o.a, block, o.blockMembers, sample)
			}
		}
		if err != nil {
			return err
		}
		o.pool.Run(tasks, o.rewardTask)
		o.seqs = nil
	}
	if o.inSlots {
		// Back from slots to particles, so that each sequence sums its
		// particles in their order.
		o.slotTotal = grow(o.slotTotal, R)
		o.slotBroken = grow(o.slotBroken, R)
		copy(o.slotTotal, o.total)
		copy(o.slotBroken, o.broken)
		for i := 0; i < R; i++ {
			o.total[o.perm[i]], o.broken[o.perm[i]] = o.slotTotal[i], o.slotBroken[i]
		}
	}
	for s := 0; s < n; s++ {
		var sum float64
		for p := 0; p < P; p++ {
			r := s*P + p
			if o.broken[r] {
				sum = math.Inf(-1)
				break
			}
			sum += o.total[r]
		}
		returns[s] = sum / float64(P)
	}
	return nil
}

// sharedStep predicts a step of n sequences' particles, block slots to a
// member, where the slots of a block that carry particles of one sequence
// have the same inputs: at the first step, which every particle starts
// from the start state, and at every step of Mean propagation, which adds
// no noise. Such slots are computed once, with the noise each slot would
// get otherwise (see dynamics.Predictor.NextShared): PETS's 20 particles
// over 5 members make a quarter of the network passes.
func (o *ModelObjective) sharedStep(n, block int, sample *rng.Source) error {
	od, ad, P, E := o.model.ObsDim(), o.model.ActDim(), o.particles, len(o.members)
	o.sharedRow = grow(o.sharedRow, n)
	o.sharedFrom = grow(o.sharedFrom, E*block)
	// The blocks' distinct sequences, slots in order: u the most in a
	// block, every block's input rows padded to u by repeating its last.
	o.sharedSlots = o.sharedSlots[:0]
	o.sharedCount = grow(o.sharedCount, E)
	u := 0
	for e := 0; e < E; e++ {
		for s := range o.sharedRow {
			o.sharedRow[s] = -1
		}
		k := 0
		for i := e * block; i < (e+1)*block; i++ {
			s := o.perm[i] / P
			if o.sharedRow[s] < 0 {
				o.sharedRow[s] = k
				o.sharedSlots = append(o.sharedSlots, i)
				k++
			}
			o.sharedFrom[i] = o.sharedRow[s]
		}
		u = max(u, k)
		o.sharedCount[e] = k
	}
	o.sharedX = grow(o.sharedX, E*u*od)
	o.sharedA = grow(o.sharedA, E*u*ad)
	slots := o.sharedSlots
	for e := 0; e < E; e++ {
		k := o.sharedCount[e]
		for q, i := range slots[:k] {
			r := e*u + q
			copy(o.sharedX[r*od:(r+1)*od], o.x[i*od:(i+1)*od])
			copy(o.sharedA[r*ad:(r+1)*ad], o.a[i*ad:(i+1)*ad])
		}
		slots = slots[k:]
		for r := e*u + k; r < (e+1)*u; r++ {
			copy(o.sharedX[r*od:(r+1)*od], o.sharedX[(r-1)*od:r*od])
			copy(o.sharedA[r*ad:(r+1)*ad], o.sharedA[(r-1)*ad:r*ad])
		}
		for i := e * block; i < (e+1)*block; i++ {
			o.sharedFrom[i] += e * u
		}
	}
	return o.pred.NextShared(o.y, o.sharedX, o.sharedA, u, o.blockMembers, o.sharedFrom, sample)
}

// expectationStep moves each of the R rows in x to the average of the
// members' mean predictions, written into y.
func (o *ModelObjective) expectationStep(R, od, ad int) error {
	E := len(o.members)
	for e := 1; e < E; e++ {
		copy(o.x[e*R*od:(e+1)*R*od], o.x[:R*od])
		copy(o.a[e*R*ad:(e+1)*R*ad], o.a[:R*ad])
	}
	o.expandedMembers = grow(o.expandedMembers, E)
	copy(o.expandedMembers, o.members)
	if err := o.pred.Moments(o.mean, o.vari, o.x, o.a, R, o.expandedMembers); err != nil {
		return err
	}
	for i := 0; i < R*od; i++ {
		var s float32
		for e := 0; e < E; e++ {
			s += o.mean[e*R*od+i]
		}
		o.y[i] = s / float32(E)
	}
	return nil
}
