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
func (a *Adam) Step(params, grads [][]float32) error {
	if len(params) != len(grads) {
		return fmt.Errorf("nn: Adam given %d parameter vectors and %d gradients", len(params), len(grads))
	}
	for i := range params {
		if len(params[i]) != len(grads[i]) {
			return fmt.Errorf("nn: Adam parameter %d has %d elements, its gradient %d", i, len(params[i]), len(grads[i]))
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
		kernel.AdamUpdate(p, grads[i], a.m[i], a.v[i], b1, b2, lr, rbc2, eps)
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
