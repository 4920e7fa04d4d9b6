package env

import (
	"fmt"
	"math"
)

// Box is the set of vectors with Low[i] ≤ x[i] ≤ High[i]. Bounds may be
// infinite.
type Box struct {
	Low, High []float32
}

// NewBox returns a box with the given bounds, which must have equal
// lengths and Low ≤ High.
func NewBox(low, high []float32) (Box, error) {
	if len(low) != len(high) {
		return Box{}, fmt.Errorf("env: box bounds of lengths %d and %d", len(low), len(high))
	}
	for i := range low {
		if !(low[i] <= high[i]) {
			return Box{}, fmt.Errorf("env: box dimension %d has low %g above high %g", i, low[i], high[i])
		}
	}
	return Box{Low: append([]float32(nil), low...), High: append([]float32(nil), high...)}, nil
}

// Uniform returns an n-dimensional box with every bound equal to lo, hi.
func Uniform(n int, lo, hi float32) Box {
	b := Box{Low: make([]float32, n), High: make([]float32, n)}
	for i := range n {
		b.Low[i], b.High[i] = lo, hi
	}
	return b
}

// Unbounded returns the n-dimensional box of all real vectors.
func Unbounded(n int) Box {
	return Uniform(n, float32(math.Inf(-1)), float32(math.Inf(1)))
}

// Dim is the box's number of dimensions.
func (b Box) Dim() int { return len(b.Low) }

// Contains reports whether x lies in the box.
func (b Box) Contains(x []float32) bool {
	if len(x) != len(b.Low) {
		return false
	}
	for i, v := range x {
		if !(v >= b.Low[i] && v <= b.High[i]) {
			return false
		}
	}
	return true
}

// Clip moves every element of x, a row-major array of vectors of the box's
// dimension, to the nearest point of the box. NaN is left as it is.
func (b Box) Clip(x []float32) {
	d := len(b.Low)
	for i, v := range x {
		j := i % d
		if v < b.Low[j] {
			x[i] = b.Low[j]
		} else if v > b.High[j] {
			x[i] = b.High[j]
		}
	}
}

// Clipped returns x if it lies in the box, and otherwise a clipped copy
// of it, so that the common case of a valid action costs no allocation.
func (b Box) Clipped(x []float32) []float32 {
	for i, v := range x {
		if v < b.Low[i] || v > b.High[i] {
			c := append([]float32(nil), x...)
			b.Clip(c)
			return c
		}
	}
	return x
}

// Mid returns the box's midpoint; infinite bounds give 0.
func (b Box) Mid() []float32 {
	m := make([]float32, len(b.Low))
	for i := range m {
		lo, hi := float64(b.Low[i]), float64(b.High[i])
		if !math.IsInf(lo, 0) && !math.IsInf(hi, 0) {
			m[i] = float32((lo + hi) / 2)
		}
	}
	return m
}
