// What mlp512.c (the AVX-512 planning kernel), mlp256.c (its AVX2 version)
// and net.c (the Net that runs them or oneDNN) share.

#ifndef MISMATCH_MLP_H
#define MISMATCH_MLP_H

#include <stdint.h>
#include <string.h>

#define MLP_ROWS 32   // rows per block; activations are held [unit][row] with this stride
#define MLP_NR 10     // units per register tile, AVX-512
#define MLP_NR256 6   // units per register tile, AVX2

// A tile computes a panel of units for a block's rows: out[u][r] = b[u] +
// Σ_k w[k][u]·h[k][r].
typedef void (*tile_fn)(long K, const float *h, const float *w, const float *b, float *out);

// The activations' constants. Swish takes e^−x as 2^t, t = −x·log2 e, split
// into round(t) + f with |f| ≤ 1/2, and 2^f by its minimax polynomial of
// degree 5 for relative error (mlp_exp2, highest power first; Remez, error
// 7.5e-8, 2.1e-7 with float32 rounding — the degree-6 Taylor polynomial it
// replaced: 1.2e-7 and 2.1e-7, one FMA more a vector). tanh takes e^y − 1 with y =
// n·ln2 + r (ln2 in two parts, so r is exact) and e^r − 1 as r times the
// polynomial mlp_expm1 (degree 6, highest first: error below 1e-8).
#define MLP_LOG2E 1.44269504088896341f
#define MLP_LN2_HI 0.693145751953125f
#define MLP_LN2_LO 1.428606765330187045e-06f
#define MLP_EXP2_N 6
static const float mlp_exp2[MLP_EXP2_N] = {1.3276472167819943e-3f, 9.6755413310213911e-3f, 5.5507132728753912e-2f,
	0.24022119723969178f, 0.69314696706526493f, 1.0000000716546416f};
static const float mlp_expm1[7] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f};

// mlp_bf16 rounds to the nearest bfloat16, ties to even, as the
// AVX512_BF16 conversions and kernel.BF16 do; NaN stays NaN.
static inline uint16_t mlp_bf16(float f) {
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

int mlp_level(int bf16);
int mlp_nr(int level);
float *mlp_pack(const float *W, long K, long N, int bf16, int NR);
long mlp_scratch(long maxw);
void mlp_forward(int level, int L, const int *width, float *const *pw, const float *const *pb, int act, float slope, int bf16,
	const float *x, long rows, float *dst, float *buf);

int mlp256_available(void);
void mlp256_panel(long K, const float *h, const float *w, const float *b, float *out, int nr, int nv, int sw);
void mlp256_act(int act, float slope, float *h, long n);

#endif
