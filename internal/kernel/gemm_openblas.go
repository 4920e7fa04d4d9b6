//go:build cgo && !purego

package kernel

/*
#cgo LDFLAGS: -lopenblas

// Declared here rather than taken from cblas.h, whose Debian variants differ
// (netlib's lacks openblas_set_num_threads). OpenBLAS as Debian builds it
// uses 32-bit integers.
enum { mmRowMajor = 101, mmNoTrans = 111, mmTrans = 112 };
void openblas_set_num_threads(int n);
char *openblas_get_config(void);
char *openblas_get_corename(void);
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
*/
import "C"

// Backend names the matrix-multiply backend compiled in.
const Backend = "openblas"

func init() {
	// Callers parallelise over ensemble members and row chunks; OpenBLAS's
	// own threads would compete with those goroutines and lose at these sizes.
	C.openblas_set_num_threads(1)
}

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if sgemmWide(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	ta, tb := C.int(C.mmNoTrans), C.int(C.mmNoTrans)
	if transA {
		ta = C.mmTrans
	}
	if transB {
		tb = C.mmTrans
	}
	C.cblas_sgemm(C.mmRowMajor, ta, tb, C.int(m), C.int(n), C.int(k),
		C.float(alpha), fpOrNil(a), C.int(lda), fpOrNil(b), C.int(ldb),
		C.float(beta), fp(c), C.int(ldc))
}

// BLAS names the library and kernel that multiply matrices, as OpenBLAS
// reports them (its kernel depends on the CPU and OPENBLAS_CORETYPE), and
// oneDNN's sgemm where the build takes the wider shapes to it.
func BLAS() string {
	s := C.GoString(C.openblas_get_config()) + " (" + C.GoString(C.openblas_get_corename()) + ")"
	if wideGemm != "" {
		s += "; " + wideGemm
	}
	return s
}
