package nn

import (
	"fmt"

	"github.com/mismatch-rl/mismatch/internal/kernel"
	"github.com/mismatch-rl/mismatch/internal/parallel"
)

// Pass runs training passes of an MLP: Forward keeps every layer's
// activations and Backward turns the loss gradient with respect to the
// outputs into the gradient with respect to the parameters. Work is split
// over members. A Pass is not safe for concurrent use.
type Pass struct {
	m    *MLP
	pool *parallel.Pool
	// Grad is the gradient Backward computes, in Params's layout.
	Grad  []float32
	gradL []Layer

	rows int
	x    []float32
	// z and h hold each layer's pre- and post-activation values,
	// Members×rows×width; for the linear output layer they are the same.
	z, h [][]float32
	// scratch holds two backward buffers per worker of rows×max width.
	scratch [][2][]float32
	dOut    []float32
	closed  bool

	fwd, bwd func(worker, task int)
}

// NewPass returns a Pass for m on the given number of goroutines
// (threads < 1 means GOMAXPROCS). Buffers grow to the largest batch seen.
func NewPass(m *MLP, threads int) *Pass {
	p := &Pass{m: m, pool: parallel.New(threads), Grad: make([]float32, len(m.params))}
	p.gradL = layerViews(m.cfg, p.Grad)
	p.z = make([][]float32, len(m.Layers))
	p.h = make([][]float32, len(m.Layers))
	p.scratch = make([][2][]float32, p.pool.Workers())
	p.fwd, p.bwd = p.forwardMember, p.backwardMember
	return p
}

// Close stops the Pass's goroutines.
func (p *Pass) Close() {
	p.closed = true
	p.pool.Close()
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Forward evaluates x (Members×rows×In) and returns the outputs
// (Members×rows×Out), a buffer owned by the Pass and valid until its next
// Forward. x must stay unchanged until Backward has run.
func (p *Pass) Forward(x []float32, rows int) ([]float32, error) {
	if p.closed {
		return nil, errClosed
	}
	cfg := &p.m.cfg
	if err := checkIO("input", x, cfg.Members, rows, cfg.In); err != nil {
		return nil, err
	}
	if rows == 0 {
		return nil, fmt.Errorf("nn: training pass of 0 rows")
	}
	p.rows, p.x = rows, x[:cfg.Members*rows*cfg.In]
	maxW := 0
	for i, l := range p.m.Layers {
		n := cfg.Members * rows * l.Out
		p.z[i] = grow(p.z[i], n)
		if i == len(p.m.Layers)-1 {
			p.h[i] = p.z[i]
		} else {
			p.h[i] = grow(p.h[i], n)
		}
		maxW = max(maxW, l.In, l.Out)
	}
	for w := range p.scratch {
		p.scratch[w][0] = grow(p.scratch[w][0], rows*maxW)
		p.scratch[w][1] = grow(p.scratch[w][1], rows*maxW)
	}
	p.pool.Run(cfg.Members, p.fwd)
	return p.h[len(p.h)-1], nil
}

func (p *Pass) forwardMember(_, e int) {
	cfg := &p.m.cfg
	n := p.rows
	in := p.x[e*n*cfg.In : (e+1)*n*cfg.In]
	act, slope := cfg.Activation.kernel(), cfg.slope()
	last := len(p.m.Layers) - 1
	for i, l := range p.m.Layers {
		z := p.z[i][e*n*l.Out : (e+1)*n*l.Out]
		h := p.h[i][e*n*l.Out : (e+1)*n*l.Out]
		a := act
		if i == last {
			a = kernel.Identity
		}
		kernel.Sgemm(false, false, n, l.Out, l.In, 1, in, l.In, l.MemberW(e), l.Out, 0, z, l.Out)
		kernel.BiasAct(a, slope, z, h, l.MemberB(e), n, l.Out)
		in = h
	}
}

// Backward sets Grad to the gradient of the loss given dOut, the loss's
// gradient with respect to the outputs of the last Forward.
func (p *Pass) Backward(dOut []float32) error {
	if p.closed {
		return errClosed
	}
	cfg := &p.m.cfg
	if p.rows == 0 {
		return fmt.Errorf("nn: Backward before Forward")
	}
	if err := checkIO("output gradient", dOut, cfg.Members, p.rows, cfg.Out); err != nil {
		return err
	}
	p.dOut = dOut
	p.pool.Run(cfg.Members, p.bwd)
	p.dOut = nil
	return nil
}

func (p *Pass) backwardMember(worker, e int) {
	cfg := &p.m.cfg
	n := p.rows
	act, slope := cfg.Activation.kernel(), cfg.slope()
	bufs := p.scratch[worker]
	last := len(p.m.Layers) - 1
	dz := p.dOut[e*n*cfg.Out : (e+1)*n*cfg.Out]
	for i := last; i >= 0; i-- {
		l := p.m.Layers[i]
		g := p.gradL[i]
		var in []float32
		if i == 0 {
			in = p.x[e*n*l.In : (e+1)*n*l.In]
		} else {
			in = p.h[i-1][e*n*l.In : (e+1)*n*l.In]
		}
		// dW = inᵀ·dZ, db = column sums of dZ.
		kernel.Sgemm(true, false, l.In, l.Out, n, 1, in, l.In, dz, l.Out, 0, g.MemberW(e), l.Out)
		kernel.ColSums(g.MemberB(e), dz[:n*l.Out])
		if i == 0 {
			break
		}
		// dH = dZ·Wᵀ, then through the previous layer's activation.
		dh := bufs[i%2][:n*l.In]
		kernel.Sgemm(false, true, n, l.In, l.Out, 1, dz, l.Out, l.MemberW(e), l.Out, 0, dh, l.In)
		zp := p.z[i-1][e*n*l.In : (e+1)*n*l.In]
		hp := p.h[i-1][e*n*l.In : (e+1)*n*l.In]
		kernel.ActBackward(act, slope, dh, dh, zp, hp)
		dz = dh
	}
}
