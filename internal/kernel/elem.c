//go:build cgo && !purego

// Element-wise kernels in C, written so that gcc vectorises every loop: no
// calls, no branches the compiler cannot turn into selects. target_clones
// compiles each for AVX-512, AVX2+FMA and baseline x86-64 and picks one at
// load time, so one binary runs fast on every machine kind. They compute the
// same formulas as the Go kernels in elem_go.go.

// Without trapping math gcc may turn the clamps into selects and vectorise;
// NaN still propagates, since finite-math is not assumed.
#pragma GCC optimize("O3,no-trapping-math,no-math-errno")

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MM_CLONES
#endif

static inline float mm_expf(float x) {
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	int32_t n = (int32_t)(x * 1.44269504088896341f + 128.5f) - 128;
	float fn = (float)n;
	float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	uint32_t bits = (uint32_t)(n + 127) << 23;
	float scale;
	memcpy(&scale, &bits, 4);
	return p * scale;
}

static inline float mm_log1pf(float u) {
	int big = u > 0.41421356237309505f;
	float s = big ? (u - 1.0f) / (u + 3.0f) : u / (2.0f + u);
	float e = big ? 1.0f : 0.0f;
	float s2 = s * s;
	float q = 1.0f / 11;
	q = q * s2 + 1.0f / 9;
	q = q * s2 + 1.0f / 7;
	q = q * s2 + 1.0f / 5;
	q = q * s2 + 1.0f / 3;
	q = q * s2 + 1.0f;
	return e * 0.693147180559945309f + 2.0f * s * q;
}

static inline float mm_softplusf(float x) {
	float a = x < 0 ? -x : x;
	float r = mm_log1pf(mm_expf(-a));
	r = x > 0 ? r + x : r;
	return x != x ? x : r;
}

// Functions of exp are computed in two passes over blocks of BLK elements:
// exps first, then the rest. gcc schedules the fused loop badly (duplicated
// divisions and blends); the split form runs 2–3 times faster.
#define BLK 64

// tanh for |x| < 0.25 by its series, whose first omitted term is below
// float32 resolution there; above, big = (1−e)/(1+e) with e = exp(−2|x|).
static inline float mm_tanh_from(float x, float big) {
	float a = x < 0 ? -x : x;
	float a2 = a * a;
	float p = 62.0f / 2835;
	p = p * a2 - 17.0f / 315;
	p = p * a2 + 2.0f / 15;
	p = p * a2 - 1.0f / 3;
	float small = a + a * a2 * p;
	float t = a < 0.25f ? small : big;
	return x < 0 ? -t : t;
}

enum { mmIdentity, mmReLU, mmLeakyReLU, mmTanh, mmSwish };

MM_CLONES
void mm_bias_act(int act, float slope, float *z, float *h, const float *bias, long rows, long cols) {
	float e[BLK];
	for (long r = 0; r < rows; r++) {
		float *zr = z + r * cols, *hr = h + r * cols;
		switch (act) {
		case mmReLU:
			for (long j = 0; j < cols; j++) {
				float v = zr[j] + bias[j];
				zr[j] = v;
				hr[j] = v > 0 ? v : (v != v ? v : 0.0f);
			}
			break;
		case mmLeakyReLU:
			for (long j = 0; j < cols; j++) {
				float v = zr[j] + bias[j];
				zr[j] = v;
				hr[j] = v > 0 ? v : slope * v;
			}
			break;
		case mmTanh:
			for (long j0 = 0; j0 < cols; j0 += BLK) {
				long m = cols - j0 < BLK ? cols - j0 : BLK;
				float *zb = zr + j0, *hb = hr + j0;
				const float *bb = bias + j0;
				for (long j = 0; j < m; j++) {
					float v = zb[j] + bb[j];
					float a = v < 0 ? -v : v;
					e[j] = mm_expf(-2.0f * a);
				}
				for (long j = 0; j < m; j++) e[j] = (1.0f - e[j]) / (1.0f + e[j]);
				for (long j = 0; j < m; j++) {
					float v = zb[j] + bb[j];
					zb[j] = v;
					hb[j] = mm_tanh_from(v, e[j]);
				}
			}
			break;
		case mmSwish:
			for (long j0 = 0; j0 < cols; j0 += BLK) {
				long m = cols - j0 < BLK ? cols - j0 : BLK;
				float *zb = zr + j0, *hb = hr + j0;
				const float *bb = bias + j0;
				for (long j = 0; j < m; j++) e[j] = mm_expf(-(zb[j] + bb[j]));
				for (long j = 0; j < m; j++) {
					float v = zb[j] + bb[j];
					zb[j] = v;
					hb[j] = v / (1.0f + e[j]);
				}
			}
			break;
		default:
			for (long j = 0; j < cols; j++) {
				float v = zr[j] + bias[j];
				zr[j] = v;
				hr[j] = v;
			}
		}
	}
}

MM_CLONES
void mm_act_backward(int act, float slope, float *dz, const float *dh, const float *z, const float *h, long n) {
	float e[BLK];
	switch (act) {
	case mmReLU:
		for (long i = 0; i < n; i++) dz[i] = z[i] > 0 ? dh[i] : 0.0f;
		break;
	case mmLeakyReLU:
		for (long i = 0; i < n; i++) dz[i] = z[i] > 0 ? dh[i] : slope * dh[i];
		break;
	case mmTanh:
		for (long i = 0; i < n; i++) dz[i] = dh[i] * (1.0f - h[i] * h[i]);
		break;
	case mmSwish:
		// With s = sigmoid(z) and h = z·s: h' = s + z·s·(1−s) = s + h·(1−s).
		for (long i0 = 0; i0 < n; i0 += BLK) {
			long m = n - i0 < BLK ? n - i0 : BLK;
			for (long i = 0; i < m; i++) e[i] = mm_expf(-z[i0 + i]);
			for (long i = 0; i < m; i++) {
				float s = 1.0f / (1.0f + e[i]);
				dz[i0 + i] = dh[i0 + i] * (s + h[i0 + i] * (1.0f - s));
			}
		}
		break;
	default:
		for (long i = 0; i < n; i++) dz[i] = dh[i];
	}
}

MM_CLONES
void mm_exp(float *dst, const float *x, long n) {
	for (long i = 0; i < n; i++) dst[i] = mm_expf(x[i]);
}

MM_CLONES
void mm_sigmoid(float *dst, const float *x, long n) {
	float e[BLK];
	for (long i0 = 0; i0 < n; i0 += BLK) {
		long m = n - i0 < BLK ? n - i0 : BLK;
		for (long i = 0; i < m; i++) e[i] = mm_expf(-x[i0 + i]);
		for (long i = 0; i < m; i++) dst[i0 + i] = 1.0f / (1.0f + e[i]);
	}
}

MM_CLONES
void mm_softplus(float *dst, const float *x, long n) {
	float e[BLK];
	for (long i0 = 0; i0 < n; i0 += BLK) {
		long m = n - i0 < BLK ? n - i0 : BLK;
		for (long i = 0; i < m; i++) {
			float a = x[i0 + i] < 0 ? -x[i0 + i] : x[i0 + i];
			e[i] = mm_expf(-a);
		}
		for (long i = 0; i < m; i++) {
			float v = x[i0 + i];
			float r = mm_log1pf(e[i]);
			r = v > 0 ? r + v : r;
			dst[i0 + i] = v != v ? v : r;
		}
	}
}

// mm_sqrtf is √x for x ≥ 0 as x·rsqrt(x), the reciprocal root from the
// exponent-halving estimate (3.4% error) and three Newton steps (below
// float32 resolution). gcc cannot vectorise sqrtf here: math-errno cannot be
// turned off per function and cgo does not allow -fno-math-errno. For
// x = 0 the estimate is finite, so the result is 0; NaN stays NaN.
static inline float mm_sqrtf(float x) {
	uint32_t bits;
	memcpy(&bits, &x, 4);
	bits = 0x5f375a86u - (bits >> 1);
	float y;
	memcpy(&y, &bits, 4);
	float hx = 0.5f * x;
	y = y * (1.5f - hx * y * y);
	y = y * (1.5f - hx * y * y);
	y = y * (1.5f - hx * y * y);
	return x * y;
}

// MM_ADAM_ONE is Adam's update of element j with gradient gj, the one
// formula mm_adam and mm_adam_decay share.
#define MM_ADAM_ONE(gj)                                             \
	do {                                                        \
		float mj = b1 * m[j] + (1.0f - b1) * (gj);          \
		float vj = b2 * v[j] + (1.0f - b2) * (gj) * (gj);   \
		m[j] = mj;                                          \
		v[j] = vj;                                          \
		p[j] -= lr * mj / (mm_sqrtf(vj) * rbc2 + eps);      \
	} while (0)

MM_CLONES
void mm_adam(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float lr, float rbc2, float eps) {
	for (long j = 0; j < n; j++) {
		float gj = g[j];
		MM_ADAM_ONE(gj);
	}
}

// mm_adam_decay is mm_decay's g + lambda·p then mm_adam, in one pass
// (the gradient g is read, not written).
MM_CLONES
void mm_adam_decay(float *p, const float *g, float *m, float *v, long n, float lambda, float b1, float b2, float lr, float rbc2,
		float eps) {
	for (long j = 0; j < n; j++) {
		float gj = g[j] + lambda * p[j];
		MM_ADAM_ONE(gj);
	}
}

// mm_col_sums sets s[j] to the sum of column j of the rows × cols matrix
// x, adding row by row: each column in the order a scalar loop adds it, so
// vectorising across the columns keeps the bits.
MM_CLONES
void mm_col_sums(float *s, const float *x, long rows, long cols) {
	for (long j = 0; j < cols; j++) s[j] = 0;
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * cols;
		for (long j = 0; j < cols; j++) s[j] += xr[j];
	}
}

// mm_decay adds lambda·w to g. (It once returned Σw² too, which no caller
// used: the sum's chain of float additions kept the loop from
// vectorising, and it took 13% of a training epoch of the PETS ensemble.)
MM_CLONES
void mm_decay(float *g, const float *w, long n, float lambda) {
	for (long i = 0; i < n; i++) g[i] += lambda * w[i];
}

// mm_sincos sets s[i] and c[i] to the sine and cosine of x[i], computed in
// double so that the float32 results are the correctly rounded ones but for
// rare ties: x = k·π/2 + r with k rounded to nearest, π/2 in three parts of
// which the first two have 33 bits (so k·part is exact for |k| < 2^20; the
// AVX clones contract them into FMAs, which do not round products), and
// sin r, cos r by their Taylor polynomials to degrees 11 and 10 (truncation
// below 1e-10 for |r| ≤ π/4); the quadrant k mod 4 picks and signs them.
// Where |x| ≥ 2^19 the reduction would lose digits: a second, scalar pass
// (run only if such an input was seen) takes libm's sin and cos there, so
// every finite input is exact and ±Inf gives NaN. NaN stays NaN.
MM_CLONES
void mm_sincos(float *s, float *c, const float *x, long n) {
	const double p1 = 1.57079632673412561417e+00, p2 = 6.07710050630396597660e-11, p3 = 2.02226624871116645580e-21;
	int big = 0;
	for (long i = 0; i < n; i++) {
		double v = x[i];
		double k = (v * 0.63661977236758134308 + 0x1.8p52) - 0x1.8p52;
		double r = ((v - k * p1) - k * p2) - k * p3;
		double z = r * r;
		double sr = r + r * z * (-1.0 / 6 + z * (1.0 / 120 + z * (-1.0 / 5040 + z * (1.0 / 362880 + z * (-1.0 / 39916800)))));
		double cr = 1 + z * (-0.5 + z * (1.0 / 24 + z * (-1.0 / 720 + z * (1.0 / 40320 + z * (-1.0 / 3628800)))));
		// NaN and huge k take quadrant 0: their results are NaN or
		// replaced below.
		int q = (k > -1e9 && k < 1e9) ? (int)k : 0;
		double a = (q & 1) ? cr : sr, b = (q & 1) ? sr : cr;
		s[i] = (float)((q & 2) ? -a : a);
		c[i] = (float)(((q + 1) & 2) ? -b : b);
		big |= (v >= 0x1p19) | (v <= -0x1p19);
	}
	if (!big) return;
	for (long i = 0; i < n; i++) {
		double v = x[i];
		if (v >= 0x1p19 || v <= -0x1p19) {
			s[i] = (float)sin(v);
			c[i] = (float)cos(v);
		}
	}
}

// mm_logvar_block works on m values whose bounds are hb, lb (one per
// value), in passes the compiler vectorises: with eps NULL it writes the
// bounded log-variances of raw into out; otherwise it adds exp(lv/2)·eps to
// out. raw may be out. Always inlined, with eps NULL or not at each call
// site: a call would reach a baseline (SSE) copy outside the target clones.
static inline __attribute__((always_inline)) void mm_logvar_block(float *out, const float *raw, const float *hb, const float *lb,
		const float *eps, long m, float *a, float *e) {
	for (long i = 0; i < m; i++) a[i] = hb[i] - raw[i];
	for (long i = 0; i < m; i++) e[i] = mm_expf(-(a[i] < 0 ? -a[i] : a[i]));
	// NaN needs no test of its own: it passes through mm_expf and
	// mm_log1pf.
	for (long i = 0; i < m; i++) {
		float r = mm_log1pf(e[i]);
		a[i] = hb[i] - (a[i] > 0 ? r + a[i] : r) - lb[i];
	}
	for (long i = 0; i < m; i++) e[i] = mm_expf(-(a[i] < 0 ? -a[i] : a[i]));
	if (!eps) {
		for (long i = 0; i < m; i++) {
			float r = mm_log1pf(e[i]);
			out[i] = (a[i] > 0 ? r + a[i] : r) + lb[i];
		}
		return;
	}
	for (long i = 0; i < m; i++) {
		float r = mm_log1pf(e[i]);
		a[i] = 0.5f * ((a[i] > 0 ? r + a[i] : r) + lb[i]);
	}
	for (long i = 0; i < m; i++) e[i] = mm_expf(a[i]);
	for (long i = 0; i < m; i++) out[i] += e[i] * eps[i];
}

// Row-wise kernels work on blocks of MM_ROWBLK values: rows of d ≤
// MM_ROWBLK values MM_ROWBLK/d whole rows at a time, their per-column
// parameters repeated to match (rows of a few values would leave the
// vector loops idle), and wider rows a piece at a time.
enum { MM_ROWBLK = 256 };

// mm_repeat_cols fills ra and rb with the d per-column values of a and b
// repeated over a block's whole rows, and returns the rows per block.
// Always inlined: a call would reach a baseline copy outside the clones.
static inline __attribute__((always_inline)) long mm_repeat_cols(float *ra, float *rb, const float *a, const float *b, long d) {
	long per = MM_ROWBLK / d;
	for (long k = 0; k < per * d; k++) {
		ra[k] = a[k % d];
		rb[k] = b[k % d];
	}
	return per;
}

// mm_logvar_bound writes the bounded log-variances of rows×d raw values
// into lv (which may be raw): per column, hi − softplus(hi − raw), then
// lo + softplus(that − lo). Whole rows at a time, the bounds repeated to
// match, or pieces of one row where rows are wider than a block.
MM_CLONES
void mm_logvar_bound(float *lv, const float *raw, const float *hi, const float *lo, long rows, long d) {
	float hb[MM_ROWBLK], lb[MM_ROWBLK], a[MM_ROWBLK], e[MM_ROWBLK];
	if (d <= MM_ROWBLK) {
		long L = mm_repeat_cols(hb, lb, hi, lo, d) * d, n = rows * d;
		for (long i0 = 0; i0 < n; i0 += L) {
			long m = n - i0 < L ? n - i0 : L;
			mm_logvar_block(lv + i0, raw + i0, hb, lb, NULL, m, a, e);
		}
		return;
	}
	for (long r = 0; r < rows; r++) {
		for (long j0 = 0; j0 < d; j0 += MM_ROWBLK) {
			long m = d - j0 < MM_ROWBLK ? d - j0 : MM_ROWBLK, o = r * d + j0;
			mm_logvar_block(lv + o, raw + o, hi + j0, lo + j0, NULL, m, a, e);
		}
	}
}

// mm_gauss_sample writes rows×d draws into sample: mean + exp(lv/2)·eps,
// from out's rows of 2d values, [means | raw log-variances], lv the bounded
// log-variance of the raw one, as mm_logvar_bound computes it. Blocks of
// whole rows are unpacked into sample and a raw buffer, then go through
// mm_logvar_block; rows wider than a block, a piece at a time.
MM_CLONES
void mm_gauss_sample(float *sample, const float *out, const float *hi, const float *lo, const float *eps, long rows, long d) {
	float hb[MM_ROWBLK], lb[MM_ROWBLK], rb[MM_ROWBLK], a[MM_ROWBLK], e[MM_ROWBLK];
	if (d > MM_ROWBLK) {
		for (long r = 0; r < rows; r++)
			for (long j0 = 0; j0 < d; j0 += MM_ROWBLK) {
				long m = d - j0 < MM_ROWBLK ? d - j0 : MM_ROWBLK;
				float *sb = sample + r * d + j0;
				const float *o = out + 2 * r * d + j0;
				for (long j = 0; j < m; j++) sb[j] = o[j], rb[j] = o[d + j];
				mm_logvar_block(sb, rb, hi + j0, lo + j0, eps + r * d + j0, m, a, e);
			}
		return;
	}
	long per = mm_repeat_cols(hb, lb, hi, lo, d);
	for (long r0 = 0; r0 < rows; r0 += per) {
		long nr = rows - r0 < per ? rows - r0 : per;
		float *sb = sample + r0 * d;
		for (long r = 0; r < nr; r++) {
			const float *o = out + 2 * (r0 + r) * d;
			for (long j = 0; j < d; j++) sb[r * d + j] = o[j], rb[r * d + j] = o[d + j];
		}
		mm_logvar_block(sb, rb, hb, lb, eps + r0 * d, nr * d, a, e);
	}
}

// mm_gauss_loss_block works on m values (whole rows, or a piece of one)
// with bounds hb, lb and weights wb (c·w of each value's row), diff = mean
// − target and raw the raw log-variances: it writes the gradients with
// respect to the means and the raw log-variances into dm and dr, those
// with respect to the bounds into gh and gl, and each value's loss term
// into t. In passes the compiler vectorises, as mm_logvar_block.
static inline __attribute__((always_inline)) void mm_gauss_loss_block(float *dm, float *dr, float *gh, float *gl, float *t,
		const float *diff, const float *raw, const float *hb, const float *lb, const float *wb, long m, float *a, float *e,
		float *s1) {
	for (long i = 0; i < m; i++) a[i] = hb[i] - raw[i];
	for (long i = 0; i < m; i++) e[i] = mm_expf(-(a[i] < 0 ? -a[i] : a[i]));
	// softplus(a) and sigmoid(a) from one e^−|a|.
	for (long i = 0; i < m; i++) {
		float r = mm_log1pf(e[i]);
		s1[i] = (a[i] >= 0 ? 1.0f : e[i]) / (1.0f + e[i]);
		a[i] = hb[i] - (a[i] > 0 ? r + a[i] : r) - lb[i];
	}
	for (long i = 0; i < m; i++) e[i] = mm_expf(-(a[i] < 0 ? -a[i] : a[i]));
	for (long i = 0; i < m; i++) {
		float r = mm_log1pf(e[i]);
		float s2 = (a[i] >= 0 ? 1.0f : e[i]) / (1.0f + e[i]);
		a[i] = (a[i] > 0 ? r + a[i] : r) + lb[i]; // the bounded log-variance
		gl[i] = 1.0f - s2;
		gh[i] = s2 * (1.0f - s1[i]);
		s1[i] = s2 * s1[i];
	}
	for (long i = 0; i < m; i++) e[i] = mm_expf(-a[i]);
	for (long i = 0; i < m; i++) {
		float q = diff[i] * diff[i] * e[i];
		t[i] = wb[i] * (q + a[i]);
		dm[i] = wb[i] * 2.0f * diff[i] * e[i];
		float dlv = wb[i] * (1.0f - q);
		dr[i] = dlv * s1[i];
		gh[i] *= dlv;
		gl[i] *= dlv;
	}
}

// mm_gauss_loss is kernel.GaussianLoss: rows rows of out (d means, then d
// raw log-variances), targets y, row weights w (NULL: 1) and scale c; it
// writes dout, adds to dhi and dlo (when not NULL) and returns the loss.
// Blocks of whole rows (or pieces of rows wider than a block) are unpacked
// into block buffers, their bounds and weights repeated to match; the
// bounds' gradients and the loss are summed in a fixed order, row by row.
MM_CLONES
double mm_gauss_loss(float *dout, float *dhi, float *dlo, const float *out, const float *y, const float *w, const float *hi,
		const float *lo, long rows, long d, double c) {
	float hb[MM_ROWBLK], lb[MM_ROWBLK], wb[MM_ROWBLK], df[MM_ROWBLK], rb[MM_ROWBLK], dm[MM_ROWBLK], dr[MM_ROWBLK];
	float gh[MM_ROWBLK], gl[MM_ROWBLK], t[MM_ROWBLK], a[MM_ROWBLK], e[MM_ROWBLK], s1[MM_ROWBLK];
	double loss = 0;
	long pd = d < MM_ROWBLK ? d : MM_ROWBLK; // a piece of a row
	long per = d <= MM_ROWBLK ? MM_ROWBLK / d : 1;
	for (long j0 = 0; j0 < d; j0 += pd) {
		long m = d - j0 < pd ? d - j0 : pd;
		for (long k = 0; k < per * m; k++) hb[k] = hi[j0 + k % m], lb[k] = lo[j0 + k % m];
		for (long r0 = 0; r0 < rows; r0 += per) {
			long nr = rows - r0 < per ? rows - r0 : per;
			for (long r = 0; r < nr; r++) {
				const float *o = out + 2 * (r0 + r) * d + j0, *yr = y + (r0 + r) * d + j0;
				float wr = (float)(c * (w ? w[r0 + r] : 1.0f));
				for (long j = 0; j < m; j++) df[r * m + j] = o[j] - yr[j], rb[r * m + j] = o[d + j], wb[r * m + j] = wr;
			}
			mm_gauss_loss_block(dm, dr, gh, gl, t, df, rb, hb, lb, wb, nr * m, a, e, s1);
			for (long r = 0; r < nr; r++) {
				float *g = dout + 2 * (r0 + r) * d + j0;
				for (long j = 0; j < m; j++) g[j] = dm[r * m + j], g[d + j] = dr[r * m + j];
				for (long j = 0; j < m; j++) loss += t[r * m + j];
				if (dhi)
					for (long j = 0; j < m; j++) dhi[j0 + j] += gh[r * m + j];
				if (dlo)
					for (long j = 0; j < m; j++) dlo[j0 + j] += gl[r * m + j];
			}
		}
	}
	return loss;
}

// mm_mix64 is SplitMix64's output function (Steele, Lea, Flood 2014).
static inline uint64_t mm_mix64(uint64_t z) {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// mm_unit is the double 1 + b·2^−32 for the 32 bits b, made by placing b
// in the mantissa: no integer-to-float conversion, which AVX2 lacks for
// 64-bit integers and which would keep gcc from vectorising.
static inline double mm_unit(uint64_t b) {
	uint64_t u = 0x3ff0000000000000ull | (b & 0xffffffffull) << 20;
	double d;
	memcpy(&d, &u, 8);
	return d;
}

// mm_normals writes n standard normal draws of the stream key: pair i by
// Box and Muller from h = mix64(key + (i+1)·γ), SplitMix64's i-th output:
// u = (h's high half + ½)·2^−32, in (0, 1), t = (its low half)·2^−32, and
// r = √(−2 ln u) gives r·cos 2πt and r·sin 2πt (for odd n, the last pair's
// first). All in double, to within 2e-12 relative, so the float32 results
// are the roundings of the exact values but for rare near-ties: ln u =
// e·ln 2 + ln m with m ∈ [√½, √2) and ln m = 2 atanh((m−1)/(m+1)) by its
// series to degree 13 (relative error below 2e-12); the angle reduced to
// r' = 2π(t − q/4), |r'| ≤ π/4, exactly in t, its sine and cosine by
// Taylor polynomials of degrees 13 and 12 (below 4e-13). |draws| ≤
// √(2·32 ln 2) ≈ 6.66: tails beyond have probability below 3e-11.
// mm_normal_pair is pair h's two draws, r·cos 2πt and r·sin 2πt.
static inline __attribute__((always_inline)) void mm_normal_pair(uint64_t h, float *c, float *s) {
	const double ln2 = 0.69314718055994530942, twopi = 6.28318530717958647693;
	// u in [1, 2) as 1 + (hi + ½)·2^−32, then in (0, 1).
	double u = mm_unit(h >> 32) + 0x1p-33 - 1.0;
	uint64_t ub;
	memcpy(&ub, &u, 8);
	// e: u's exponent as a double, by the same mantissa trick.
	uint64_t eb = 0x4330000000000000ull | (ub >> 52);
	double e;
	memcpy(&e, &eb, 8);
	e -= 0x1p52 + 1023.0;
	uint64_t mb = (ub & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
	double m;
	memcpy(&m, &mb, 8);
	int big = m > 1.41421356237309504880;
	m = big ? 0.5 * m : m;
	e = big ? e + 1.0 : e;
	double v = (m - 1.0) / (m + 1.0), z = v * v;
	double lm = 2.0 * v * (1 + z * (1.0 / 3 + z * (1.0 / 5 + z * (1.0 / 7 + z * (1.0 / 9 + z * (1.0 / 11 + z * (1.0 / 13)))))));
	// r2 ≥ 2^−32: u < 1. Its root as r2·rsqrt(r2), the reciprocal root from
	// the exponent-halving estimate (3.4% error) and four Newton steps (to
	// double resolution), because gcc cannot vectorise sqrt under cgo (see
	// mm_sqrtf).
	double r2 = -2.0 * (e * ln2 + lm), y;
	uint64_t yb;
	memcpy(&yb, &r2, 8);
	yb = 0x5fe6eb50c7b537a9ull - (yb >> 1);
	memcpy(&y, &yb, 8);
	for (int k = 0; k < 4; k++) y = y * (1.5 - 0.5 * r2 * y * y);
	double rad = r2 * y;
	double t = mm_unit(h) - 1.0;
	double qd = (4.0 * t + 0x1.8p52) - 0x1.8p52; // round(4t): 0…4
	double r = twopi * (t - 0.25 * qd);
	double rz = r * r;
	double sr = r + r * rz * (-1.0 / 6 + rz * (1.0 / 120 + rz * (-1.0 / 5040 + rz * (1.0 / 362880 + rz * (-1.0 / 39916800 + rz * (1.0 / 6227020800))))));
	double cr = 1 + rz * (-0.5 + rz * (1.0 / 24 + rz * (-1.0 / 720 + rz * (1.0 / 40320 + rz * (-1.0 / 3628800 + rz * (1.0 / 479001600))))));
	int q = (int)qd;
	double a = (q & 1) ? cr : sr, b = (q & 1) ? sr : cr;
	*s = (float)(rad * ((q & 2) ? -a : a));
	*c = (float)(rad * (((q + 1) & 2) ? -b : b));
}

MM_CLONES
void mm_normals(float *dst, long n, uint64_t key) {
	const uint64_t gamma = 0x9e3779b97f4a7c15ull;
	for (long i = 0; i < n / 2; i++) mm_normal_pair(mm_mix64(key + (uint64_t)(i + 1) * gamma), dst + 2 * i, dst + 2 * i + 1);
	if (n % 2) {
		float s;
		mm_normal_pair(mm_mix64(key + (uint64_t)(n / 2 + 1) * gamma), dst + n - 1, &s);
	}
}

// mm_standardize sets x[i] = (x[i] − mean[j])/std[j], j = i mod d, over
// rows×d values, in blocks as mm_repeat_cols describes (rows wider than
// a block by a plain loop). Subtraction and division round as scalar code
// does, so the results are the same.
MM_CLONES
void mm_standardize(float *x, const float *mean, const float *std, long rows, long d) {
	float mb[MM_ROWBLK], sb[MM_ROWBLK];
	if (d > MM_ROWBLK) {
		for (long r = 0; r < rows; r++)
			for (long j = 0; j < d; j++) x[r * d + j] = (x[r * d + j] - mean[j]) / std[j];
		return;
	}
	long L = mm_repeat_cols(mb, sb, mean, std, d) * d, n = rows * d;
	for (long i0 = 0; i0 < n; i0 += L) {
		long m = n - i0 < L ? n - i0 : L;
		float *xb = x + i0;
		for (long i = 0; i < m; i++) xb[i] = (xb[i] - mb[i]) / sb[i];
	}
}
