package nn

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/internal/parallel"
)

// chunkRows is the number of rows one inference task carries through all
// layers. At 256 rows a 200-wide activation block is 200 KB and stays in a
// core's L2; matrix multiplies of that height run near OpenBLAS's peak. It
// is fixed, not derived from the thread count, so results do not depend on
// the number of goroutines.
const chunkRows = 512

// packedChunk is the rows a task of a packed pass carries: chunkRows, or
// fewer where k blocks of rows rows would give workers workers too few
// tasks to share evenly — about four a worker, in whole 32-row blocks of
// the kernel. At planning's smaller sizes (a population of 200 with 5
// particles: 5 blocks of 200 rows) tasks of chunkRows left one worker a
// block more than the other, and a helper waking late had nothing left to
// take. A packed pass gives each row the same result however the rows
// are split (kernel.Net), so unlike chunkRows this may follow the worker
// count.
func packedChunk(rows, k, workers int) int {
	if workers <= 1 {
		return chunkRows
	}
	c := (rows*k + 4*workers - 1) / (4 * workers)
	return min(max((c+31)/32*32, 32), chunkRows)
}

// Evaluator runs inference forward passes of an MLP with buffers reused
// across calls, keeping no activations. It reads the MLP's parameters at
// each call, so it sees updates made between calls. An Evaluator is not safe
// for concurrent use.
type Evaluator struct {
	m    *MLP
	pool *parallel.Pool
	// scratch holds two ping-pong activation buffers per worker.
	scratch [][2][]float32
	failed  []error // per worker: a packed pass's failure
	// CheckFinite makes Forward reject inputs holding NaN or ±Inf.
	CheckFinite bool
	closed      bool

	// The current call, read by the tasks.
	x, dst  []float32
	rows    int
	chunks  int
	members []int
	layers  int // layers to evaluate: all, or all but the output layer
	task    func(worker, task int)

	// net, when not nil, is a packed snapshot of the parameters that full
	// forward passes go through.
	net       *kernel.Net
	precision Precision
}

// Precision is the arithmetic of an Evaluator's forward passes.
type Precision uint8

// The precisions.
const (
	// FP32 computes in float32 throughout.
	FP32 Precision = iota
	// BF16 rounds inputs, weights and hidden activations to bfloat16 and
	// accumulates products in float32 (AVX512_BF16); outputs are float32.
	BF16
)

var precisionNames = [...]string{FP32: "fp32", BF16: "bf16"}

func (p Precision) String() string {
	if int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return fmt.Sprintf("Precision(%d)", p)
}

// ParsePrecision returns the precision named s: fp32 or bf16.
func ParsePrecision(s string) (Precision, error) {
	for p, name := range precisionNames {
		if strings.EqualFold(s, name) {
			return Precision(p), nil
		}
	}
	return 0, fmt.Errorf("unknown precision %q (want fp32 or bf16)", s)
}

// MarshalText writes the precision's name.
func (p Precision) MarshalText() ([]byte, error) {
	if int(p) >= len(precisionNames) {
		return nil, fmt.Errorf("nn: unknown precision %d", p)
	}
	return []byte(precisionNames[p]), nil
}

// UnmarshalText reads a precision's name; the empty text is FP32.
func (p *Precision) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = FP32
		return nil
	}
	v, err := ParsePrecision(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// BF16Supported reports whether this build and CPU run BF16 evaluators.
func BF16Supported() bool { return kernel.HasBF16() }

// ErrUnsupported is wrapped by NewPackedEvaluator's error where this build
// or this CPU cannot pack: built without oneDNN, or BF16 without
// AVX512_BF16.
var ErrUnsupported = errors.New("nn: packed evaluation not supported here")

// NewPackedEvaluator returns an Evaluator whose full forward passes go
// through a snapshot of m's parameters packed for the CPU (our AVX-512 or
// AVX2 kernel where the CPU has one, oneDNN's elsewhere: blocks of rows
// through every layer in one call, bias and activation applied as each
// layer's block is made; kernel.NetKernel says which), in precision p.
// Unlike NewEvaluator's, it does not see changes made to m's parameters
// later: make it after training, as planners do. Features still reads m
// as it is.
func NewPackedEvaluator(m *MLP, threads int, p Precision) (*Evaluator, error) {
	if p == BF16 && !kernel.HasBF16() {
		return nil, fmt.Errorf("%w: this CPU has no AVX512_BF16 (or this build no oneDNN)", ErrUnsupported)
	}
	if !kernel.NetAvailable {
		return nil, fmt.Errorf("%w: built without oneDNN (-tags purego or nodnnl)", ErrUnsupported)
	}
	e := NewEvaluator(m, threads)
	widths := m.cfg.widths()
	var W, B [][]float32
	for _, l := range m.Layers {
		W, B = append(W, l.W), append(B, l.B)
	}
	net, err := kernel.NewNet(widths, m.cfg.Members, m.cfg.Activation.kernel(), m.cfg.slope(), p == BF16, W, B, e.pool.Workers())
	if err != nil {
		e.Close()
		return nil, err
	}
	e.net, e.precision = net, p
	return e, nil
}

// Precision is the arithmetic of the Evaluator's full forward passes.
func (e *Evaluator) Precision() Precision { return e.precision }

// NewEvaluator returns an Evaluator for m running on the given number of
// goroutines (threads < 1 means GOMAXPROCS).
func NewEvaluator(m *MLP, threads int) *Evaluator {
	e := &Evaluator{m: m, pool: parallel.New(threads)}
	maxW := 0
	for _, h := range m.cfg.Hidden {
		maxW = max(maxW, h)
	}
	e.scratch = make([][2][]float32, e.pool.Workers())
	e.failed = make([]error, e.pool.Workers())
	for w := range e.scratch {
		e.scratch[w] = [2][]float32{make([]float32, chunkRows*maxW), make([]float32, chunkRows*maxW)}
	}
	e.task = e.run
	return e
}

// Close stops the Evaluator's goroutines.
func (e *Evaluator) Close() {
	e.closed = true
	e.pool.Close()
	if e.net != nil {
		e.net.Close()
	}
}

// Forward computes dst = MLP(x) for all members: x is Members×rows×In and
// dst Members×rows×Out.
func (e *Evaluator) Forward(dst, x []float32, rows int) error {
	return e.ForwardMembers(dst, x, rows, nil)
}

// ForwardMembers evaluates the members listed in members, in that order:
// block i of x (rows×In) goes through member members[i] into block i of dst.
// A member may be listed more than once. nil means every member in order.
func (e *Evaluator) ForwardMembers(dst, x []float32, rows int, members []int) error {
	return e.forward(dst, x, rows, members, len(e.m.Layers))
}

// Features computes the activations of the last hidden layer, the input of
// the output layer, for every member: x is Members×rows×In and dst
// Members×rows×(last hidden width). The output is linear in them.
func (e *Evaluator) Features(dst, x []float32, rows int) error {
	if len(e.m.cfg.Hidden) == 0 {
		return errors.New("nn: a linear model has no hidden features")
	}
	return e.forward(dst, x, rows, nil, len(e.m.Layers)-1)
}

func (e *Evaluator) forward(dst, x []float32, rows int, members []int, layers int) error {
	if e.closed {
		return errClosed
	}
	cfg := &e.m.cfg
	k := cfg.Members
	if members != nil {
		k = len(members)
		for _, mb := range members {
			if mb < 0 || mb >= cfg.Members {
				return fmt.Errorf("nn: member %d out of range [0, %d)", mb, cfg.Members)
			}
		}
	}
	if err := checkIO("input", x, k, rows, cfg.In); err != nil {
		return err
	}
	outW := cfg.Out
	if layers < len(e.m.Layers) {
		outW = e.m.Layers[layers-1].Out
	}
	if err := checkIO("output", dst, k, rows, outW); err != nil {
		return err
	}
	if e.CheckFinite {
		if i := firstNonFinite(x[:k*rows*cfg.In]); i >= 0 {
			return fmt.Errorf("nn: input element %d (block %d, row %d, column %d) is %g", i, i/(rows*cfg.In), i/cfg.In%rows, i%cfg.In, x[i])
		}
	}
	if rows == 0 || k == 0 {
		return nil
	}
	if e.net != nil && layers == len(e.m.Layers) {
		return e.net.ForwardBlocks(e.pool.Workers(), x, rows, members, k, packedChunk(rows, k, e.pool.Workers()), dst)
	}
	e.x, e.dst, e.rows, e.members, e.layers = x, dst, rows, members, layers
	e.chunks = (rows + chunkRows - 1) / chunkRows
	e.pool.Run(k*e.chunks, e.task)
	e.x, e.dst, e.members = nil, nil, nil
	var first error
	for w, err := range e.failed {
		if err != nil && first == nil {
			first = err
		}
		e.failed[w] = nil
	}
	return first
}

var errClosed = errors.New("nn: used after Close")

func checkIO(what string, s []float32, blocks, rows, width int) error {
	if rows < 0 {
		return fmt.Errorf("nn: %d rows", rows)
	}
	if n := blocks * rows * width; len(s) < n {
		return fmt.Errorf("nn: %s has %d elements, want %d×%d×%d = %d", what, len(s), blocks, rows, width, n)
	}
	return nil
}

func firstNonFinite(s []float32) int {
	for i, v := range s {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

// run carries one chunk of one member's rows through every layer.
func (e *Evaluator) run(worker, task int) {
	cfg := &e.m.cfg
	slot, c := task/e.chunks, task%e.chunks
	member := slot
	if e.members != nil {
		member = e.members[slot]
	}
	r0 := c * chunkRows
	n := min(e.rows-r0, chunkRows)
	base := slot*e.rows + r0
	in := e.x[base*cfg.In : (base+n)*cfg.In]

	bufs := e.scratch[worker]
	act, slope := cfg.Activation.kernel(), cfg.slope()
	last := e.layers - 1
	for i, l := range e.m.Layers[:e.layers] {
		var out []float32
		a := act
		if i == last {
			out = e.dst[base*l.Out : (base+n)*l.Out]
			if i == len(e.m.Layers)-1 {
				a = kernel.Identity
			}
		} else {
			out = bufs[i%2][:n*l.Out]
		}
		kernel.Sgemm(false, false, n, l.Out, l.In, 1, in, l.In, l.MemberW(member), l.Out, 0, out, l.Out)
		kernel.BiasAct(a, slope, out, out, l.MemberB(member), n, l.Out)
		in = out
	}
}
