//go:build !cgo || purego

package kernel

// Backend names the matrix-multiply backend compiled in.
const Backend = "purego"

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// BLAS names the code that multiplies matrices: this package's own Go.
func BLAS() string { return "pure Go" }
