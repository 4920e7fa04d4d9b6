package nn

import (
	"fmt"
	"math"

	"github.com/mismatch-rl/mismatch/internal/kernel"
)

// Adam is the Adam optimiser (Kingma and Ba), in PyTorch's formulation, over
// any number of parameter vectors updated in place.
type Adam struct {
	LR, Beta1, Beta2, Eps float64

	step int
	m, v [][]float32
}

// NewAdam returns Adam with learning rate lr and the usual β1 = 0.9,
// β2 = 0.999, ε = 1e-8.
func NewAdam(lr float64) *Adam { return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// Reset forgets the moment estimates and the step count.
func (a *Adam) Reset() { a.step, a.m, a.v = 0, nil, nil }

// Steps reports how many updates have been made since the last Reset.
func (a *Adam) Steps() int { return a.step }

// Step updates every params[i] with its gradient grads[i]. The vectors must
// keep their lengths from one Step to the next.
func (a *Adam) Step(params, grads [][]float32) error { return a.StepDecayed(params, grads, nil) }

// A Decay is an L2 penalty ½·Lambda·Σp² on the elements [Lo, Hi) of a
// parameter vector (see MLP.DecaySpans).
type Decay struct {
	Lo, Hi int
	Lambda float32
}

// StepDecayed is Step with the penalties decay[i] on params[i] (decay nil,
// or decay[i] nil: none): the numbers of adding Lambda·p to grads[i] over
// each span and then calling Step, in one pass over the parameters instead
// of two. The gradients are left as they were. Each params[i]'s spans lie
// within it, in order, without overlapping.
func (a *Adam) StepDecayed(params, grads [][]float32, decay [][]Decay) error {
	if len(params) != len(grads) {
		return fmt.Errorf("nn: Adam given %d parameter vectors and %d gradients", len(params), len(grads))
	}
	if decay != nil && len(decay) != len(params) {
		return fmt.Errorf("nn: Adam given %d parameter vectors and %d decay lists", len(params), len(decay))
	}
	for i := range params {
		if len(params[i]) != len(grads[i]) {
			return fmt.Errorf("nn: Adam parameter %d has %d elements, its gradient %d", i, len(params[i]), len(grads[i]))
		}
		if decay == nil {
			continue
		}
		pos := 0
		for _, d := range decay[i] {
			if d.Lo < pos || d.Hi < d.Lo || d.Hi > len(params[i]) {
				return fmt.Errorf("nn: decay span [%d, %d) of parameter %d (%d elements) out of order or range", d.Lo, d.Hi, i, len(params[i]))
			}
			pos = d.Hi
		}
	}
	if a.m == nil {
		a.m, a.v = make([][]float32, len(params)), make([][]float32, len(params))
		for i, p := range params {
			a.m[i], a.v[i] = make([]float32, len(p)), make([]float32, len(p))
		}
	} else if len(a.m) != len(params) {
		return fmt.Errorf("nn: Adam set up for %d parameter vectors, given %d", len(a.m), len(params))
	}
	for i, p := range params {
		if len(a.m[i]) != len(p) {
			return fmt.Errorf("nn: Adam parameter %d changed length from %d to %d", i, len(a.m[i]), len(p))
		}
	}
	a.step++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.step))
	bc2 := 1 - math.Pow(a.Beta2, float64(a.step))
	lr := float32(a.LR / bc1)
	eps := float32(a.Eps)
	rbc2 := float32(1 / math.Sqrt(bc2))
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	for i, p := range params {
		g, m, v := grads[i], a.m[i], a.v[i]
		pos := 0
		if decay != nil {
			for _, d := range decay[i] {
				kernel.AdamUpdate(p[pos:d.Lo], g[pos:d.Lo], m[pos:d.Lo], v[pos:d.Lo], b1, b2, lr, rbc2, eps)
				kernel.AdamDecay(p[d.Lo:d.Hi], g[d.Lo:d.Hi], m[d.Lo:d.Hi], v[d.Lo:d.Hi], d.Lambda, b1, b2, lr, rbc2, eps)
				pos = d.Hi
			}
		}
		kernel.AdamUpdate(p[pos:], g[pos:], m[pos:], v[pos:], b1, b2, lr, rbc2, eps)
	}
	return nil
}

// State returns the optimiser's step count and moment estimates (copies),
// so training can be resumed exactly.
func (a *Adam) State() (step int, m, v [][]float32) {
	cp := func(x [][]float32) [][]float32 {
		out := make([][]float32, len(x))
		for i := range x {
			out[i] = append([]float32(nil), x[i]...)
		}
		return out
	}
	return a.step, cp(a.m), cp(a.v)
}

// SetState restores a state returned by State.
func (a *Adam) SetState(step int, m, v [][]float32) error {
	if step < 0 || len(m) != len(v) {
		return fmt.Errorf("nn: Adam state of step %d with %d and %d moments", step, len(m), len(v))
	}
	for i := range m {
		if len(m[i]) != len(v[i]) {
			return fmt.Errorf("nn: Adam moment %d has %d and %d values", i, len(m[i]), len(v[i]))
		}
	}
	a.step = step
	a.m, a.v = make([][]float32, len(m)), make([][]float32, len(v))
	for i := range m {
		a.m[i], a.v[i] = append([]float32(nil), m[i]...), append([]float32(nil), v[i]...)
	}
	if len(m) == 0 {
		a.m, a.v = nil, nil
	}
	return nil
}
