//go:build cgo && !purego && !nodnnl

// The forward pass of an MLP with AVX-512, in fp32 and in bf16, written for
// the shapes of planning: thousands of rows through a few layers of a few
// hundred units. oneDNN 2.6's matmul reaches 65–75% of the FMA peak on
// these shapes (its kernels are tuned for large matrices, and the 6-wide
// first and 8-wide last layers are memory-bound in a row-major layout);
// this one's tiles run at the peak and a whole pass, activations
// included, at 80–87% of it (see the README's Speed section).
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
//
// bf16 (AVX512_BF16) has the same shape: vdpbf16ps multiplies pairs of
// bf16 numbers and adds both products to an fp32 lane, so a layer's input
// is held as pairs of units per row, [unit pair][row][2], each weight
// panel as pairs of inputs, and one instruction does 32 multiply-adds
// where an fp32 FMA does 16. Sums, bias and activation are fp32; the
// activations passed to the next layer are rounded to bf16 (to nearest,
// ties to even), as kernel.BF16 does.

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

#if defined(__x86_64__) && defined(__GNUC__)

#define T512 __attribute__((target("avx512f,fma")))

// expm1_512 is e^x − 1 to within a few ulp of its own size, for tanh: x =
// n·ln2 + r, |r| ≤ ln2/2 (ln2 in two parts, so r is exact), e^r − 1 by its
// Taylor polynomial of degree 7 without the constant (error below 1e-8),
// then 2^n·(e^r − 1) + (2^n − 1), which is that polynomial itself near 0,
// where e^x − 1 would cancel; x is clamped to ±88.
static T512 inline __m512 expm1_512(__m512 x) {
	x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-88.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(MLP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(MLP_LN2_HI), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(MLP_LN2_LO), r);
	__m512 p = _mm512_set1_ps(mlp_expm1[0]);
	for (int i = 1; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(mlp_expm1[i]));
	p = _mm512_mul_ps(p, r);
	const __m512 one = _mm512_set1_ps(1.0f);
	return _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_sub_ps(_mm512_scalef_ps(one, n), one));
}

// recip512 is 1/d: the 14-bit estimate and one Newton step.
static T512 inline __m512 recip512(__m512 d) {
	__m512 r = _mm512_rcp14_ps(d);
	return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

// swish16 is swish of 16 floats, to about 1e-6 relative (the rounding of
// t; the polynomial's error is 7.5e-8),
// with e^−x = 2^t as mlp.h describes. Fewer operations than a reduction
// by ln2 in two parts, as expm1_512 does (whole fp32 passes 5–7% faster
// than with that), and that matters: the activations take a tenth of an
// fp32 pass and a fifth of a bf16 one. x is divided by 1 + e^−x rather
// than multiplied by a refined reciprocal estimate: the divider is a unit of
// its own, so the FMA pipes do three operations fewer a vector (Zen 5: fp32
// passes 4–9% faster, bf16 2–10%). (An error of 1e-4 — degree 4 and the
// reciprocal estimate unrefined — flipped enough bf16 roundings to move
// outputs by 1.7% of their RMS.)
static T512 inline __m512 swish16(__m512 x) {
	const __m512 one = _mm512_set1_ps(1.0f), c = _mm512_set1_ps(-MLP_LOG2E);
	// |t| ≤ 126 keeps t − round(t) finite for infinite x.
	const __m512 lo = _mm512_set1_ps(-126.0f), hi = _mm512_set1_ps(126.0f);
	__m512 t = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(x, c), hi), lo);
	__m512 k = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 f = _mm512_sub_ps(t, k);
	__m512 p = _mm512_set1_ps(mlp_exp2[0]);
	for (int j = 1; j < MLP_EXP2_N; j++) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(mlp_exp2[j]));
	__m512 e = _mm512_scalef_ps(p, k);
	return _mm512_div_ps(x, _mm512_add_ps(one, e));
}

// act512 applies kernel.Act act (0 identity, 1 relu, 2 leaky relu, 3 tanh)
// to n floats in place (n a multiple of 16); swish (4) is the tiles' own.
// NaN stays NaN. Not inlined, so that profiles show the activations apart
// (one call a layer).
static T512 __attribute__((noinline)) void act512(int act, float slope, float *h, long n) {
	const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
	const __m512 s = _mm512_set1_ps(slope);
	for (long i = 0; i < n; i += 16) {
		__m512 x = _mm512_load_ps(h + i), y;
		switch (act) {
		case 1: y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, zero); break;
		case 2: y = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, s); break;
		case 3: {
			// tanh|x| = −m/(2 + m) with m = e^(−2|x|) − 1, sign restored.
			__m512 a = _mm512_abs_ps(x);
			__m512 m = expm1_512(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f)));
			__m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), m), recip512(_mm512_add_ps(_mm512_set1_ps(2.0f), m)));
			y = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t),
				_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
			y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
			break;
		}
		default: continue;
		}
		_mm512_store_ps(h + i, y);
	}
}

#define T512BF __attribute__((target("avx512f,avx512bw,avx512bf16,fma")))

// The two precisions' steps of a tile: load a row vector of inputs,
// broadcast a weight (in bf16, a pair of them), multiply-add.
static T512 inline __m512 ld32(const float *h) { return _mm512_load_ps(h); }
static T512 inline __m512 bc32(const float *w) { return _mm512_set1_ps(*w); }
static T512 inline __m512 mac32(__m512 acc, __m512 x, __m512 w) { return _mm512_fmadd_ps(w, x, acc); }
static T512BF inline __m512bh ld16(const float *h) { return (__m512bh)_mm512_load_si512(h); }
static T512BF inline __m512bh bc16(const float *w) {
	int32_t u;
	memcpy(&u, w, 4);
	return (__m512bh)_mm512_set1_epi32(u);
}
static T512BF inline __m512 mac16(__m512 acc, __m512bh x, __m512bh w) { return _mm512_dpbf16_ps(acc, x, w); }

// TILE(P, TGT, XT, NV, NR) is the register tile tile<P>_<NV>_<NR>: NR
// units × NV·16 rows, out[u][r] = b[u] + Σ_k w[k][u]·h[k][r] over K steps,
// w the panel [K][NR]. In fp32 (P empty) a step is one input; in bf16 (P
// 16) a pair of inputs, h[k][row][2], and the panel holds pairs of
// weights. The sizes are literals, so the accumulators live in registers
// (sized by variables, gcc kept them in memory at a third of the speed).
// Each tile comes twice: as is, and (suffix s) with swish applied to the
// accumulators before they are stored, so that the activation's
// operations run while the next tile's FMAs do (out of order) rather than
// in a pass of their own over the layer's output: in a stand-alone test of
// five members' passes over 2 000 rows each (Zen 5, one core), 3% faster
// in fp32 and in bf16, the same bits; `BenchmarkNet` 95 → 100 GFLOP/s
// with AVX2.
#define TILE(P, TGT, XT, NV, NR) TILE_(P, TGT, XT, NV, NR, , ) TILE_(P, TGT, XT, NV, NR, s, swish16)
#define TILE_(P, TGT, XT, NV, NR, S, F)                                                               \
	static TGT void tile##P##_##NV##_##NR##S(long K, const float *h, const float *w, const float *b, float *out) { \
		__m512 acc[NR][NV];                                                                           \
		_Pragma("GCC unroll 16") for (int i = 0; i < NR; i++) {                                     \
			__m512 bi = _mm512_set1_ps(b[i]);                                                         \
			_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[i][v] = bi;                   \
		}                                                                                             \
		for (long k = 0; k < K; k++) {                                                                \
			XT x[NV];                                                                                 \
			_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) x[v] = ld##P(h + k * MLP_ROWS + 16 * v); \
			_Pragma("GCC unroll 16") for (int i = 0; i < NR; i++) {                                 \
				XT wi = bc##P(w + k * NR + i);                                                        \
				_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[i][v] = mac##P(acc[i][v], x[v], wi); \
			}                                                                                         \
		}                                                                                             \
		_Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)                                       \
			_Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) _mm512_store_ps(out + i * MLP_ROWS + 16 * v, F(acc[i][v])); \
	}

#define TILES(P, TGT, XT, NV)                                                                         \
	TILE(P, TGT, XT, NV, 1) TILE(P, TGT, XT, NV, 2) TILE(P, TGT, XT, NV, 3) TILE(P, TGT, XT, NV, 4)   \
	TILE(P, TGT, XT, NV, 5) TILE(P, TGT, XT, NV, 6) TILE(P, TGT, XT, NV, 7) TILE(P, TGT, XT, NV, 8)   \
	TILE(P, TGT, XT, NV, 9) TILE(P, TGT, XT, NV, 10)
TILES(32, T512, __m512, 1)
TILES(32, T512, __m512, 2)
TILES(16, T512BF, __m512bh, 1)
TILES(16, T512BF, __m512bh, 2)

#define TILE_ROW(P, NV, S)                                                                            \
	{tile##P##_##NV##_1##S, tile##P##_##NV##_2##S, tile##P##_##NV##_3##S, tile##P##_##NV##_4##S, tile##P##_##NV##_5##S, \
		tile##P##_##NV##_6##S, tile##P##_##NV##_7##S, tile##P##_##NV##_8##S, tile##P##_##NV##_9##S, tile##P##_##NV##_10##S}
static const tile_fn tiles[2][2][MLP_NR] = {{TILE_ROW(32, 1, ), TILE_ROW(32, 2, )}, {TILE_ROW(32, 1, s), TILE_ROW(32, 2, s)}};
static const tile_fn tiles16[2][2][MLP_NR] = {{TILE_ROW(16, 1, ), TILE_ROW(16, 2, )}, {TILE_ROW(16, 1, s), TILE_ROW(16, 2, s)}};

// mlp_level is the best kernel this CPU runs in fp32 (bf16 0) or bf16 (1):
// 2 this file's AVX-512 one, 1 mlp256.c's AVX2 one (fp32 only), 0 none.
int mlp_level(int bf16) {
	if (__builtin_cpu_supports("avx512f") && (!bf16 || (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16")))) return 2;
	return !bf16 && mlp256_available() ? 1 : 0;
}

// mlp_nr is the units per panel of a level's tiles.
int mlp_nr(int level) { return level == 2 ? MLP_NR : MLP_NR256; }

// mlp_pack returns the K×N row-major W as panels of NR units,
// [panel][K][units of the panel], the last panel narrower when NR does
// not divide N; in bf16, [panel][K/2][units] of pairs of inputs (the lower
// half the even input; an odd K padded with a zero); NULL when out of
// memory.
float *mlp_pack(const float *W, long K, long N, int bf16w, int NR) {
	long KP = (K + 1) / 2;
	size_t words = bf16w ? (size_t)KP * N : (size_t)K * N;
	float *p = aligned_alloc(64, (words * 4 + 63) / 64 * 64);
	if (!p) return NULL;
	float *q = p;
	uint32_t *q16 = (uint32_t *)p;
	for (long j = 0; j < N; j += NR) {
		long nr = N - j < NR ? N - j : NR;
		if (!bf16w) {
			for (long k = 0; k < K; k++)
				for (long i = 0; i < nr; i++) *q++ = W[k * N + j + i];
			continue;
		}
		for (long kp = 0; kp < KP; kp++)
			for (long i = 0; i < nr; i++) {
				uint32_t lo = mlp_bf16(W[2 * kp * N + j + i]), hi = 2 * kp + 1 < K ? mlp_bf16(W[(2 * kp + 1) * N + j + i]) : 0;
				*q16++ = lo | hi << 16;
			}
	}
	return p;
}

// pairs16 rounds the fp32 activations f ([unit][row], n units, 32 rows)
// to bf16 pairs h ([unit pair][row][2]); an odd n's last pair gets a zero.
// Both units' 16 rows round in one instruction, then a word permutation
// interleaves them (two operations a vector, where widening each half and
// merging took six).
static T512BF void pairs16(const float *f, long n, uint32_t *h) {
	// Word 2r takes the first unit's row r (word r), word 2r+1 the second's
	// (word 16 + r).
	const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
		20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
	for (long j = 0; 2 * j < n; j++)
		for (int v = 0; v < 2; v++) {
			__m512 lo = _mm512_load_ps(f + 2 * j * MLP_ROWS + 16 * v), hi = _mm512_setzero_ps();
			if (2 * j + 1 < n) hi = _mm512_load_ps(f + (2 * j + 1) * MLP_ROWS + 16 * v);
			__m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
			_mm512_store_si512(h + j * MLP_ROWS + 16 * v, _mm512_permutexvar_epi16(mix, both));
		}
}

// mlp_scratch is the floats one worker's two block buffers need for a net
// whose widest layer has maxw units.
long mlp_scratch(long maxw) { return 2 * ((maxw + MLP_NR - 1) / MLP_NR * MLP_NR) * MLP_ROWS; }

// panel512 and panel512bf compute a panel of nr units for a block's nv
// vectors of 16 rows, as mlp256_panel does with AVX2.
static void panel512(long K, const float *h, const float *w, const float *b, float *out, int nr, int nv, int sw) {
	tiles[sw][nv - 1][nr - 1](K, h, w, b, out);
}
static void panel512bf(long K, const float *h, const float *w, const float *b, float *out, int nr, int nv, int sw) {
	tiles16[sw][nv - 1][nr - 1](K, h, w, b, out);
}

// load writes the inputs of a block of m rows from x (row-major, in wide)
// into h: transposed, [input][row], in fp32; as pairs of inputs,
// [pair][row][2], in bf16. Rows past m up to nv·16 are zeros, so the lanes
// they fill stay finite; they are never written out.
static void load(const float *x, long m, long in, int nv, int bf16w, float *h) {
	if (!bf16w) {
		for (long k = 0; k < in; k++) {
			float *t = h + k * MLP_ROWS;
			for (long r = 0; r < m; r++) t[r] = x[r * in + k];
			for (long r = m; r < nv * 16; r++) t[r] = 0;
		}
		return;
	}
	for (long kp = 0; 2 * kp < in; kp++) {
		uint32_t *t = (uint32_t *)h + kp * MLP_ROWS;
		for (long r = 0; r < m; r++)
			t[r] = mlp_bf16(x[r * in + 2 * kp]) | (2 * kp + 1 < in ? (uint32_t)mlp_bf16(x[r * in + 2 * kp + 1]) << 16 : 0);
		for (long r = m; r < nv * 16; r++) t[r] = 0;
	}
}

// mlp_forward carries rows rows of x (rows × width[0]) through L layers
// (weights pw[l] packed for level in the precision bf16w says, biases
// pb[l]; act on all but the last, swish in the tiles) into dst (rows ×
// width[L]), using buf (mlp_scratch floats, 64-byte aligned): a block of
// rows at a time, each
// layer's tiles reading the input buffer and writing the output one, whose
// fp32 values become the next layer's input (in bf16, rounded into pairs).
void mlp_forward(int level, int L, const int *width, float *const *pw, const float *const *pb, int act, float slope, int bf16w,
		const float *x, long rows, float *dst, float *buf) {
	long maxw = 0;
	for (int l = 0; l <= L; l++) maxw = width[l] > maxw ? width[l] : maxw;
	void (*panel)(long, const float *, const float *, const float *, float *, int, int, int) = bf16w ? panel512bf : panel512;
	void (*actf)(int, float, float *, long) = act512;
	if (level == 1) panel = mlp256_panel, actf = mlp256_act;
	int fuse = act == 4;
	int NR = mlp_nr(level);
	float *in = buf, *out = buf + mlp_scratch(maxw) / 2;
	for (long r0 = 0; r0 < rows; r0 += MLP_ROWS) {
		long m = rows - r0 < MLP_ROWS ? rows - r0 : MLP_ROWS;
		int nv = m > 16 ? 2 : 1;
		load(x + r0 * width[0], m, width[0], nv, bf16w, in);
		for (int l = 0; l < L; l++) {
			long K = bf16w ? (width[l] + 1) / 2 : width[l], N = width[l + 1];
			const float *w = pw[l];
			for (long j = 0; j < N; j += NR) {
				int nr = N - j < NR ? N - j : NR;
				panel(K, in, w, pb[l] + j, out + j * MLP_ROWS, nr, nv, fuse && l < L - 1);
				w += K * nr;
			}
			if (l == L - 1) break;
			// The other activations in one pass over the layer's output,
			// in L1 still, so the constants stay in registers (per panel
			// it cost twice as much).
			if (act != 0 && !fuse) actf(act, slope, out, N * MLP_ROWS);
			if (bf16w) {
				pairs16(out, N, (uint32_t *)in);
			} else {
				float *t = in;
				in = out, out = t;
			}
		}
		for (long r = 0; r < m; r++)
			for (long j = 0; j < width[L]; j++) dst[(r0 + r) * width[L] + j] = out[j * MLP_ROWS + r];
	}
}

#else

int mlp_level(int bf16) { return 0; }
int mlp_nr(int level) { return 1; }
float *mlp_pack(const float *W, long K, long N, int bf16, int NR) { return NULL; }
long mlp_scratch(long maxw) { return 0; }
void mlp_forward(int level, int L, const int *width, float *const *pw, const float *const *pb, int act, float slope, int bf16w,
		const float *x, long rows, float *dst, float *buf) {}

#endif
