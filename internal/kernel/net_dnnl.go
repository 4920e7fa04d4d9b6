//go:build cgo && !purego && !nodnnl

package kernel

/*
#cgo CFLAGS: -fopenmp
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdlib.h>
typedef struct mm_net mm_net;
int mlp_level(int bf16);
mm_net *mm_net_create(int L, const int *widths, int E, int act, float slope, int bf16, int own,
	const float **W, const float **B, int workers, char *err, int errlen);
int mm_net_forward(mm_net *n, int worker, int member, const float *x, long rows, float *dst, char *err, int errlen);
int mm_net_forward_blocks(mm_net *n, int threads, const float *x, long rows, const int *members, int k, long chunk,
	float *dst, char *err, int errlen);
void mm_net_free(mm_net *n);
int mm_sgemm_dnnl(char ta, char tb, long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
	float beta, float *c, long ldc);
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// NetAvailable reports whether this build has Net.
const NetAvailable = true

// Net is an MLP packed for inference; see NewNet.
type Net struct {
	c       *C.mm_net
	widths  []int
	nmember int
	errs    [][256]C.char // one message buffer per worker
	cleanup runtime.Cleanup
	members []C.int // scratch for ForwardBlocks
}

func newNet(widths []int, members int, act Act, slope float32, bf16 bool, W, B [][]float32, workers int) (*Net, error) {
	L := len(widths) - 1
	if L < 1 || len(W) != L || len(B) != L || members < 1 || workers < 1 {
		return nil, fmt.Errorf("kernel: a net of %d widths, %d weight and %d bias layers, %d members, %d workers", len(widths), len(W), len(B), members, workers)
	}
	for l := range L {
		if len(W[l]) != members*widths[l]*widths[l+1] || len(B[l]) != members*widths[l+1] {
			return nil, fmt.Errorf("kernel: layer %d has %d weights and %d biases, want %d and %d", l, len(W[l]), len(B[l]), members*widths[l]*widths[l+1], members*widths[l+1])
		}
	}
	if bf16 && !HasBF16() {
		return nil, errors.New("kernel: this CPU has no AVX512_BF16")
	}
	// The weights go to C memory for the call: C must not hold Go
	// pointers to memory that holds Go pointers.
	cw := (*[1 << 20]*C.float)(C.malloc(C.size_t(L) * C.size_t(unsafe.Sizeof((*C.float)(nil)))))[:L:L]
	cb := (*[1 << 20]*C.float)(C.malloc(C.size_t(L) * C.size_t(unsafe.Sizeof((*C.float)(nil)))))[:L:L]
	cwid := (*[1 << 20]C.int)(C.malloc(C.size_t(L+1) * C.size_t(unsafe.Sizeof(C.int(0)))))[: L+1 : L+1]
	defer func() {
		for l := range L {
			C.free(unsafe.Pointer(cw[l]))
			C.free(unsafe.Pointer(cb[l]))
		}
		C.free(unsafe.Pointer(&cw[0]))
		C.free(unsafe.Pointer(&cb[0]))
		C.free(unsafe.Pointer(&cwid[0]))
	}()
	for l := range L {
		cw[l] = (*C.float)(C.malloc(C.size_t(4 * len(W[l]))))
		copy((*[1 << 30]float32)(unsafe.Pointer(cw[l]))[:len(W[l]):len(W[l])], W[l])
		cb[l] = (*C.float)(C.malloc(C.size_t(4 * len(B[l]))))
		copy((*[1 << 30]float32)(unsafe.Pointer(cb[l]))[:len(B[l]):len(B[l])], B[l])
	}
	for i, w := range widths {
		cwid[i] = C.int(w)
	}
	var errbuf [256]C.char
	flag := C.int(0)
	if bf16 {
		flag = 1
	}
	own := C.int(ownKernel)
	c := C.mm_net_create(C.int(L), &cwid[0], C.int(members), C.int(act), C.float(slope), flag, own,
		(**C.float)(unsafe.Pointer(&cw[0])), (**C.float)(unsafe.Pointer(&cb[0])), C.int(workers), &errbuf[0], C.int(len(errbuf)))
	if c == nil {
		return nil, errors.New(C.GoString(&errbuf[0]))
	}
	n := &Net{c: c, widths: append([]int(nil), widths...), nmember: members, errs: make([][256]C.char, workers)}
	n.cleanup = runtime.AddCleanup(n, func(c *C.mm_net) { C.mm_net_free(c) }, c)
	return n, nil
}

// Forward carries rows rows of x (rows × widths[0]) through member's
// layers into dst (rows × the last width), on worker's buffers.
func (n *Net) Forward(worker, member int, x []float32, rows int, dst []float32) error {
	if rows <= 0 {
		return nil
	}
	if worker < 0 || worker >= len(n.errs) || member < 0 || member >= n.nmember {
		return fmt.Errorf("kernel: worker %d of %d, member %d of %d", worker, len(n.errs), member, n.nmember)
	}
	if len(x) < rows*n.widths[0] || len(dst) < rows*n.widths[len(n.widths)-1] {
		return fmt.Errorf("kernel: %d inputs and %d outputs for %d rows", len(x), len(dst), rows)
	}
	eb := &n.errs[worker]
	if C.mm_net_forward(n.c, C.int(worker), C.int(member), fp(x), C.long(rows),
		fp(dst), &eb[0], C.int(len(eb))) != 0 {
		return errors.New(C.GoString(&eb[0]))
	}
	return nil
}

// ForwardBlocks carries len(members) blocks of rows rows of x through the
// net, block i through member members[i] (nil: block i through member i)
// into block i of dst, in chunks of chunk rows on threads threads (at most
// the workers the net was made for). It must not run at the same time as
// Forward.
func (n *Net) ForwardBlocks(threads int, x []float32, rows int, members []int, k, chunk int, dst []float32) error {
	if rows <= 0 || k <= 0 {
		return nil
	}
	if len(x) < k*rows*n.widths[0] || len(dst) < k*rows*n.widths[len(n.widths)-1] || chunk < 1 {
		return fmt.Errorf("kernel: %d inputs and %d outputs for %d blocks of %d rows", len(x), len(dst), k, rows)
	}
	if cap(n.members) < k {
		n.members = make([]C.int, k)
	}
	mb := n.members[:k]
	for i := range mb {
		e := i
		if members != nil {
			e = members[i]
		}
		if e < 0 || e >= n.nmember {
			return fmt.Errorf("kernel: member %d of %d", e, n.nmember)
		}
		mb[i] = C.int(e)
	}
	eb := &n.errs[0]
	if C.mm_net_forward_blocks(n.c, C.int(max(threads, 1)), fp(x), C.long(rows), &mb[0], C.int(k), C.long(chunk),
		fp(dst), &eb[0], C.int(len(eb))) != 0 {
		return errors.New(C.GoString(&eb[0]))
	}
	return nil
}

// Close frees the net; it must not be used afterwards.
func (n *Net) Close() {
	if n.c != nil {
		n.cleanup.Stop()
		C.mm_net_free(n.c)
		n.c = nil
	}
}

// NetKernel names the code an fp32 (bf16 false) or bf16 Net runs on, on
// this CPU.
func NetKernel(bf16 bool) string {
	prec, flag := "fp32", C.int(0)
	if bf16 {
		prec, flag = "bf16", 1
	}
	switch min(ownKernel, int(C.mlp_level(flag))) {
	case 2:
		return "mismatch AVX-512 (" + prec + ")"
	case 1:
		return "mismatch AVX2 (" + prec + ")"
	}
	return "oneDNN (" + prec + ")"
}

// wideGemm names what sgemmWide uses, for BLAS.
const wideGemm = "oneDNN sgemm from 32 × 64 × 32"

// sgemmWide multiplies through oneDNN's sgemm where it beats OpenBLAS and
// reports whether it did: for the training pass's 200-wide layers at 32
// rows it took 12–15 µs against OpenBLAS's 15–21 (one thread, Zen 5), for
// narrow ones (24 inputs, 36 outputs) 1.7–3.0 against 1.5–2.4, hence the
// shape rule. The rule is the shape's alone, so results do not depend on
// how the callers split their work.
func sgemmWide(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	if m < 32 || n < 64 || k < 32 {
		return false
	}
	ta, tb := C.char('N'), C.char('N')
	if transA {
		ta = 'T'
	}
	if transB {
		tb = 'T'
	}
	return C.mm_sgemm_dnnl(ta, tb, C.long(m), C.long(n), C.long(k), C.float(alpha), fp(a), C.long(lda),
		fp(b), C.long(ldb), C.float(beta), fp(c), C.long(ldc)) == 0
}
