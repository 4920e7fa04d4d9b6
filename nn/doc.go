// Package nn is the float32 numeric core of the library: ensembles of
// multilayer perceptrons evaluated as one batched computation, a Gaussian
// output head with soft-clamped log-variance, likelihood and squared-error
// losses with per-sample weights, weight decay and the Adam optimiser.
//
// An ensemble of E members holds E independent networks of the same shape.
// Inputs and outputs are row-major E×B×width arrays: member e reads and
// writes rows [e·B, (e+1)·B). Member weights are stored as E×in×out, the
// layout of mbrl-lib's ensemble layers, so a layer computes X·W + b.
//
// Inference (Evaluator) and training (Pass) reuse their buffers across
// calls and split work over a fixed pool of goroutines: inference over
// members and row chunks, training over members. Matrix products go to
// OpenBLAS on one thread per goroutine, or to pure Go in purego builds; the
// results do not depend on the number of goroutines.
package nn
