//go:build cgo && !purego && !nodnnl

// The fp32 forward pass of an MLP with AVX-512, written for the shapes of
// planning: thousands of rows through a few layers of a few hundred units.
// oneDNN 2.6's matmul reaches about 70% of the FMA peak on these shapes
// (its kernels are tuned for large matrices, and the 6-wide first and
// 8-wide last layers are memory-bound in a row-major layout); this reaches
// about 90% (see the README's Speed section).
//
// The layout is what makes it fast: a block of 32 rows passes through all
// the layers at once, with the activations held transposed — unit-major,
// [unit][row] — so that a layer is out = W^T·h, the rows are the vector
// lanes, and each layer's output is already the next layer's input. A
// block's activations (200 units × 32 rows = 25 KB) stay in L1, the
// weights (packed once into panels of 10 units) stream from L2, and a
// register tile of 10 units × 32 rows (20 accumulators) does 20 FMAs per
// 2 vector loads and 10 broadcasts, which the load ports sustain at the
// FMA peak. Each row is summed in the same order whatever the block or the
// thread count, so results do not depend on how rows are split.

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define MLP_ROWS 32 // rows per block: two vectors
#define MLP_NR 10   // units per register tile

#if defined(__x86_64__) && defined(__GNUC__)

#define T512 __attribute__((target("avx512f,fma")))

// exp512 is e^x to within about 2 ulp: x = n·ln2 + r, |r| ≤ ln2/2, e^r by
// its Taylor polynomial of degree 6 (truncation error below 1.2e-7), scaled by 2^n (clamped so that large
// |x| gives 0 or +Inf-free huge values rather than garbage).
static T512 inline __m512 exp512(__m512 x) {
	x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-88.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
	__m512 p = _mm512_set1_ps(1.0f / 720);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, n);
}

// recip512 is 1/d: the 14-bit estimate and one Newton step.
static T512 inline __m512 recip512(__m512 d) {
	__m512 r = _mm512_rcp14_ps(d);
	return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

// act512 applies kernel.Act act (0 identity, 1 relu, 2 leaky relu, 3 tanh,
// 4 swish) to n floats in place (n a multiple of 16). NaN stays NaN.
static T512 void act512(int act, float slope, float *h, long n) {
	const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
	const __m512 s = _mm512_set1_ps(slope);
	for (long i = 0; i < n; i += 16) {
		__m512 x = _mm512_load_ps(h + i), y;
		switch (act) {
		case 1: y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, zero); break;
		case 2: y = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, s); break;
		case 3: {
			// tanh|x| = (1 − e)/(1 + e) with e = e^(−2|x|), sign restored.
			__m512 a = _mm512_abs_ps(x);
			__m512 e = exp512(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f)));
			__m512 t = _mm512_mul_ps(_mm512_sub_ps(one, e), recip512(_mm512_add_ps(one, e)));
			y = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t),
				_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
			y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
			break;
		}
		case 4: y = _mm512_mul_ps(x, recip512(_mm512_add_ps(one, exp512(_mm512_sub_ps(zero, x))))); break;
		default: continue;
		}
		_mm512_store_ps(h + i, y);
	}
}

// TILE(NV, NR) is the register tile: NR units × NV·16 rows, K inputs,
// out[u][r] = b[u] + Σ_k w[k][u]·h[k][r] with w the panel [K][NR].
#define TILE(NV, NR)                                                                                  \
	static T512 void tile_##NV##_##NR(long K, const float *h, const float *w, const float *b, float *out) { \
		__m512 acc[NR][NV];                                                                           \
		_Pragma("GCC unroll 16") for (int i = 0; i < NR; i++) {                                     \
			__m512 bi = _mm512_set1_ps(b[i]);                                                         \
			_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[i][v] = bi;                   \
		}                                                                                             \
		for (long k = 0; k < K; k++) {                                                                \
			__m512 x[NV];                                                                             \
			_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) x[v] = _mm512_load_ps(h + k * MLP_ROWS + 16 * v); \
			_Pragma("GCC unroll 16") for (int i = 0; i < NR; i++) {                                 \
				__m512 wi = _mm512_set1_ps(w[k * NR + i]);                                            \
				_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(wi, x[v], acc[i][v]); \
			}                                                                                         \
		}                                                                                             \
		_Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)                                       \
			_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) _mm512_store_ps(out + i * MLP_ROWS + 16 * v, acc[i][v]); \
	}

#define TILES(NV) TILE(NV, 1) TILE(NV, 2) TILE(NV, 3) TILE(NV, 4) TILE(NV, 5) TILE(NV, 6) TILE(NV, 7) TILE(NV, 8) TILE(NV, 9) TILE(NV, 10)
TILES(1)
TILES(2)

typedef void (*tile_fn)(long, const float *, const float *, const float *, float *);
static const tile_fn tiles[2][MLP_NR] = {
	{tile_1_1, tile_1_2, tile_1_3, tile_1_4, tile_1_5, tile_1_6, tile_1_7, tile_1_8, tile_1_9, tile_1_10},
	{tile_2_1, tile_2_2, tile_2_3, tile_2_4, tile_2_5, tile_2_6, tile_2_7, tile_2_8, tile_2_9, tile_2_10},
};

int mlp512_available(void) { return __builtin_cpu_supports("avx512f"); }

// mlp512_pack returns the K×N row-major W as panels of MLP_NR units,
// [panel][K][units of the panel], the last panel narrower when MLP_NR
// does not divide N; NULL when out of memory.
float *mlp512_pack(const float *W, long K, long N) {
	float *p = aligned_alloc(64, ((size_t)K * N * sizeof(float) + 63) / 64 * 64);
	if (!p) return NULL;
	float *q = p;
	for (long j = 0; j < N; j += MLP_NR) {
		long nr = N - j < MLP_NR ? N - j : MLP_NR;
		for (long k = 0; k < K; k++)
			for (long i = 0; i < nr; i++) *q++ = W[k * N + j + i];
	}
	return p;
}

// mlp512_scratch is the floats one worker's two block buffers need for a
// net whose widest layer has maxw units.
long mlp512_scratch(long maxw) { return 2 * ((maxw + MLP_NR - 1) / MLP_NR * MLP_NR) * MLP_ROWS; }

// mlp512_forward carries rows rows of x (rows × width[0]) through L layers
// (packed weights pw[l], biases pb[l]; act on all but the last) into dst
// (rows × width[L]), using buf (mlp512_scratch floats, 64-byte aligned).
T512 void mlp512_forward(int L, const int *width, float *const *pw, const float *const *pb, int act, float slope,
		const float *x, long rows, float *dst, float *buf) {
	long maxw = 0;
	for (int l = 0; l <= L; l++) maxw = width[l] > maxw ? width[l] : maxw;
	float *h[2] = {buf, buf + mlp512_scratch(maxw) / 2};
	long in = width[0], out = width[L];
	for (long r0 = 0; r0 < rows; r0 += MLP_ROWS) {
		long m = rows - r0 < MLP_ROWS ? rows - r0 : MLP_ROWS;
		int nv = m > 16 ? 2 : 1;
		// The block's inputs, transposed; rows past the end are zeros, so
		// the lanes they fill stay finite and are never written out.
		for (long k = 0; k < in; k++) {
			float *t = h[0] + k * MLP_ROWS;
			for (long r = 0; r < m; r++) t[r] = x[(r0 + r) * in + k];
			for (long r = m; r < nv * 16; r++) t[r] = 0;
		}
		int cur = 0;
		for (int l = 0; l < L; l++) {
			long K = width[l], N = width[l + 1];
			const float *src = h[cur], *w = pw[l];
			float *o = h[1 - cur];
			for (long j = 0; j < N; j += MLP_NR) {
				long nr = N - j < MLP_NR ? N - j : MLP_NR;
				tiles[nv - 1][nr - 1](K, src, w, pb[l] + j, o + j * MLP_ROWS);
				w += K * nr;
			}
			// In one pass over the layer's output, in L1 still, so the
			// constants stay in registers (per unit it cost twice as much).
			if (l < L - 1 && act != 0) act512(act, slope, o, N * MLP_ROWS);
			cur = 1 - cur;
		}
		const float *o = h[cur];
		for (long r = 0; r < m; r++)
			for (long j = 0; j < out; j++) dst[(r0 + r) * out + j] = o[j * MLP_ROWS + r];
	}
}

#else

int mlp512_available(void) { return 0; }
float *mlp512_pack(const float *W, long K, long N) { return NULL; }
long mlp512_scratch(long maxw) { return 0; }
void mlp512_forward(int L, const int *width, float *const *pw, const float *const *pb, int act, float slope,
		const float *x, long rows, float *dst, float *buf) {}

#endif
