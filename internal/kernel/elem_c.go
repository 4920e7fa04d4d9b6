//go:build cgo && !purego

package kernel

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#cgo noescape mm_exp
#cgo nocallback mm_exp
#cgo noescape mm_sincos
#cgo nocallback mm_sincos
#cgo noescape mm_normals
#cgo nocallback mm_normals
#include <stdint.h>
void mm_bias_act(int act, float slope, float *z, float *h, const float *bias, long rows, long cols);
void mm_act_backward(int act, float slope, float *dz, const float *dh, const float *z, const float *h, long n);
void mm_exp(float *dst, const float *x, long n);
void mm_sigmoid(float *dst, const float *x, long n);
void mm_softplus(float *dst, const float *x, long n);
void mm_adam(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float lr, float rbc2, float eps);
void mm_decay(float *g, const float *w, long n, float lambda);
void mm_adam_decay(float *p, const float *g, float *m, float *v, long n, float lambda, float b1, float b2, float lr, float rbc2,
	float eps);
void mm_col_sums(float *s, const float *x, long rows, long cols);
void mm_sincos(float *s, float *c, const float *x, long n);
void mm_gauss_sample(float *sample, const float *out, const float *hi, const float *lo, const float *eps, long rows, long d);
void mm_logvar_bound(float *lv, const float *raw, const float *hi, const float *lo, long rows, long d);
void mm_normals(float *dst, long n, uint64_t key);
void mm_standardize(float *x, const float *mean, const float *std, long rows, long d);
double mm_gauss_loss(float *dout, float *dhi, float *dlo, const float *out, const float *y, const float *w, const float *hi,
	const float *lo, long rows, long d, double c);
*/
import "C"

import "unsafe"

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }

func biasAct(act Act, slope float32, z, h, bias []float32, rows, cols int) {
	C.mm_bias_act(C.int(act), C.float(slope), fp(z), fp(h), fp(bias), C.long(rows), C.long(cols))
}

func actBackward(act Act, slope float32, dz, dh, z, h []float32) {
	C.mm_act_backward(C.int(act), C.float(slope), fp(dz), fp(dh), fp(z), fp(h), C.long(len(dz)))
}

func expVec(dst, x []float32)      { C.mm_exp(fp(dst), fp(x), C.long(len(dst))) }
func sigmoidVec(dst, x []float32)  { C.mm_sigmoid(fp(dst), fp(x), C.long(len(dst))) }
func softplusVec(dst, x []float32) { C.mm_softplus(fp(dst), fp(x), C.long(len(dst))) }

func sincosVec(sin, cos, x []float32) { C.mm_sincos(fp(sin), fp(cos), fp(x), C.long(len(x))) }

func gaussSample(sample, out, hi, lo, eps []float32) {
	C.mm_gauss_sample(fp(sample), fp(out), fp(hi), fp(lo), fp(eps), C.long(len(sample)/len(hi)), C.long(len(hi)))
}

func normals(dst []float32, key uint64) { C.mm_normals(fp(dst), C.long(len(dst)), C.uint64_t(key)) }

func standardize(x, mean, std []float32) {
	C.mm_standardize(fp(x), fp(mean), fp(std), C.long(len(x)/len(mean)), C.long(len(mean)))
}

// fpOrNil is fp, or NULL for an empty slice.
func fpOrNil(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return fp(s)
}

func gaussLoss(dOut, dHi, dLo, out, y, w, hi, lo []float32, c float64) float64 {
	return float64(C.mm_gauss_loss(fp(dOut), fpOrNil(dHi), fpOrNil(dLo), fp(out), fp(y), fpOrNil(w), fp(hi), fp(lo),
		C.long(len(y)/len(hi)), C.long(len(hi)), C.double(c)))
}

func colSums(s, x []float32) { C.mm_col_sums(fp(s), fp(x), C.long(len(x)/len(s)), C.long(len(s))) }

func logVarBound(lv, raw, hi, lo []float32) {
	C.mm_logvar_bound(fp(lv), fp(raw), fp(hi), fp(lo), C.long(len(lv)/len(hi)), C.long(len(hi)))
}

func adamUpdate(p, g, m, v []float32, b1, b2, lr, rbc2, eps float32) {
	C.mm_adam(fp(p), fp(g), fp(m), fp(v), C.long(len(p)), C.float(b1), C.float(b2), C.float(lr), C.float(rbc2), C.float(eps))
}

func adamDecay(p, g, m, v []float32, lambda, b1, b2, lr, rbc2, eps float32) {
	C.mm_adam_decay(fp(p), fp(g), fp(m), fp(v), C.long(len(p)), C.float(lambda), C.float(b1), C.float(b2), C.float(lr), C.float(rbc2),
		C.float(eps))
}

func decay(g, w []float32, lambda float32) {
	C.mm_decay(fp(g), fp(w), C.long(len(w)), C.float(lambda))
}
