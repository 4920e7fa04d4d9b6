// Package kernel holds the float32 compute kernels the numeric core is built
// on: a general matrix multiply (OpenBLAS through cgo, or pure Go) and the
// element-wise functions of neural networks (exp, sigmoid, softplus and the
// activations with their derivatives), and Net, an ensemble MLP packed for
// inference — on our own kernels where the CPU has AVX-512 (fp32, and bf16
// with AVX512_BF16) or AVX2 (fp32), on oneDNN elsewhere (NetKernel says
// which).
//
// Which backend is used is fixed at build time. With cgo and without the
// build tag purego, matrix multiplies go to OpenBLAS's cblas_sgemm, held to
// one thread (callers parallelise with goroutines), and element-wise kernels
// run as vectorised C. With the tag purego, or without cgo, everything is
// Go. Both backends are always compiled for testing, so they can be compared.
//
// Callers validate shapes; functions here panic on slices too short for the
// shapes they are given, as the standard library's copy-free kernels do.
package kernel
