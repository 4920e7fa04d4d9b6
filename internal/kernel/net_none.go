//go:build !cgo || purego || nodnnl

package kernel

import "errors"

// NetAvailable reports whether this build has Net.
const NetAvailable = false

// Net is an MLP packed for inference; this build has none (see NewNet).
type Net struct{}

func newNet(widths []int, members int, act Act, slope float32, bf16 bool, W, B [][]float32, workers int) (*Net, error) {
	return nil, errors.New("kernel: built without oneDNN (-tags purego or nodnnl)")
}

// Forward is not available in this build.
func (n *Net) Forward(worker, member int, x []float32, rows int, dst []float32) error {
	return errors.New("kernel: built without oneDNN")
}

// ForwardBlocks is not available in this build.
func (n *Net) ForwardBlocks(threads int, x []float32, rows int, members []int, k, chunk int, dst []float32) error {
	return errors.New("kernel: built without oneDNN")
}

// Close does nothing.
func (n *Net) Close() {}

// NetKernel names the code a Net runs on: none in this build.
func NetKernel(bf16 bool) string { return "none (built without oneDNN)" }

// wideGemm names what sgemmWide uses: nothing in this build.
const wideGemm = ""

// sgemmWide is oneDNN's sgemm where it is faster; this build has none.
func sgemmWide(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	return false
}
