//go:build cgo && !purego && !nodnnl

// mlp512.c's kernel for CPUs with AVX2 and FMA but no AVX-512 (Zen 2 and
// 3, Intel Haswell to Comet Lake), in fp32: the same unit-major layout,
// with 8-wide lanes and 16 registers, so a tile is 6 units × 16 rows (12
// accumulators; 2 loads and 6 broadcasts per 12 FMAs), run on each half
// of a 32-row block. The activations are mlp512.c's formulas, with the
// exponent built from its bits (no scalef); swish divides, as swish512
// does (on Zen 5 whole passes 2–9% faster than with the reciprocal), tanh
// takes a 12-bit reciprocal estimate refined by one Newton step.

#include <immintrin.h>
#include <stdint.h>

#include "mlp.h"

#if defined(__x86_64__) && defined(__GNUC__)

#define T256 __attribute__((target("avx2,fma")))

// pow2 is 2^k for integral k in [−127, 127] (2^−127 comes out as 0).
static T256 inline __m256 pow2(__m256 k) {
	__m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
	return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}

static T256 inline __m256 recip256(__m256 d) {
	__m256 r = _mm256_rcp_ps(d);
	return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0f)));
}

// swish256 is swish512's formula: e^−x = 2^t, t = −x·log2 e (|t| ≤ 126).
static T256 inline __m256 swish256(__m256 x) {
	const __m256 one = _mm256_set1_ps(1.0f);
	__m256 t = _mm256_mul_ps(x, _mm256_set1_ps(-MLP_LOG2E));
	t = _mm256_max_ps(_mm256_min_ps(t, _mm256_set1_ps(126.0f)), _mm256_set1_ps(-126.0f));
	__m256 k = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 f = _mm256_sub_ps(t, k);
	__m256 p = _mm256_set1_ps(mlp_exp2[0]);
	for (int i = 1; i < MLP_EXP2_N; i++) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(mlp_exp2[i]));
	return _mm256_div_ps(x, _mm256_add_ps(one, _mm256_mul_ps(p, pow2(k))));
}

#define TILE256(NR) TILE256_(NR, , ) TILE256_(NR, s, swish256)
#define TILE256_(NR, S, F)                                                                                   \
	static T256 void tile256_##NR##S(long K, const float *h, const float *w, const float *b, float *out) { \
		__m256 acc[NR][2];                                                                            \
		_Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) acc[i][0] = acc[i][1] = _mm256_set1_ps(b[i]); \
		for (long k = 0; k < K; k++) {                                                                \
			__m256 x0 = _mm256_load_ps(h + k * MLP_ROWS), x1 = _mm256_load_ps(h + k * MLP_ROWS + 8);  \
			_Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {                                  \
				__m256 wi = _mm256_broadcast_ss(w + k * NR + i);                                      \
				acc[i][0] = _mm256_fmadd_ps(wi, x0, acc[i][0]);                                       \
				acc[i][1] = _mm256_fmadd_ps(wi, x1, acc[i][1]);                                       \
			}                                                                                         \
		}                                                                                             \
		_Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {                                      \
			_mm256_store_ps(out + i * MLP_ROWS, F(acc[i][0]));                                        \
			_mm256_store_ps(out + i * MLP_ROWS + 8, F(acc[i][1]));                                    \
		}                                                                                             \
	}
TILE256(1)
TILE256(2)
TILE256(3)
TILE256(4)
TILE256(5)
TILE256(6)

static const tile_fn tiles256[2][MLP_NR256] = {{tile256_1, tile256_2, tile256_3, tile256_4, tile256_5, tile256_6},
	{tile256_1s, tile256_2s, tile256_3s, tile256_4s, tile256_5s, tile256_6s}};

// mlp256_panel computes a panel of nr units for nv halves (16 rows each)
// of a block: input h ([input][row], stride MLP_ROWS), panel w, biases b;
// swish applied when sw is 1.
void mlp256_panel(long K, const float *h, const float *w, const float *b, float *out, int nr, int nv, int sw) {
	for (int v = 0; v < nv; v++) tiles256[sw][nr - 1](K, h + 16 * v, w, b, out + 16 * v);
}

// tanh256 is mlp512.c's: −m/(2 + m), m = e^(−2|x|) − 1 without cancellation.
static T256 inline __m256 tanh256(__m256 x) {
	const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
	__m256 y = _mm256_max_ps(_mm256_mul_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(-2.0f)), _mm256_set1_ps(-88.0f));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(MLP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(MLP_LN2_HI), y);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(MLP_LN2_LO), r);
	__m256 p = _mm256_set1_ps(mlp_expm1[0]);
	for (int i = 1; i < 7; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(mlp_expm1[i]));
	p = _mm256_mul_ps(p, r);
	__m256 s = pow2(n);
	__m256 m = _mm256_add_ps(_mm256_mul_ps(p, s), _mm256_sub_ps(s, one));
	__m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), m), recip256(_mm256_add_ps(_mm256_set1_ps(2.0f), m)));
	t = _mm256_or_ps(t, _mm256_and_ps(x, sign));
	return _mm256_blendv_ps(t, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// mlp256_act applies kernel.Act act but swish (the tiles') to n floats in
// place (n a multiple of 8). NaN stays NaN.
T256 void mlp256_act(int act, float slope, float *h, long n) {
	const __m256 zero = _mm256_setzero_ps(), s = _mm256_set1_ps(slope);
	for (long i = 0; i < n; i += 8) {
		__m256 x = _mm256_load_ps(h + i), y;
		__m256 neg = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
		switch (act) {
		case 1: y = _mm256_blendv_ps(x, zero, neg); break;
		case 2: y = _mm256_blendv_ps(x, _mm256_mul_ps(x, s), neg); break;
		case 3: y = tanh256(x); break;
		default: continue;
		}
		_mm256_store_ps(h + i, y);
	}
}

int mlp256_available(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

#else

int mlp256_available(void) { return 0; }
void mlp256_panel(long K, const float *h, const float *w, const float *b, float *out, int nr, int nv, int sw) {}
void mlp256_act(int act, float slope, float *h, long n) {}

#endif
