//go:build cgo && !purego

// The processor's arithmetic peak, measured: independent chains of fused
// multiply-adds in registers, enough to hide the latency (24 of the 32
// AVX-512 registers: Zen 5's bf16 dot products need more than 12; 12 of
// AVX2's 16), so that nothing but the arithmetic units bounds the rate.
// The speed targets of the project are ratios to these.

#include <immintrin.h>

#define CHAINS 24
#define CHAINS2 12

#if defined(__x86_64__) && defined(__GNUC__)

__attribute__((target("avx512f"))) static float peak_avx512(long iters) {
	__m512 acc[CHAINS];
	const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
	for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)(i + 1));
	for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
		for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
	}
	__m512 s = acc[0];
	for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
	return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float peak_avx2(long iters) {
	__m256 acc[CHAINS2];
	const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
	for (int i = 0; i < CHAINS2; i++) acc[i] = _mm256_set1_ps((float)(i + 1));
	for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
		for (int i = 0; i < CHAINS2; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
	}
	__m256 s = acc[0];
	for (int i = 1; i < CHAINS2; i++) s = _mm256_add_ps(s, acc[i]);
	float out[8];
	_mm256_storeu_ps(out, s);
	return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

__attribute__((target("avx512f,avx512bf16"))) static float peak_bf16(long iters) {
	__m512 acc[CHAINS];
	const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380); // 1, 2^-24
	for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)(i + 1));
	for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
		for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
	}
	__m512 s = acc[0];
	for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
	return _mm512_reduce_add_ps(s);
}

// mm_peak_kind reports the widest loop the CPU runs: 2 AVX-512, 1 AVX2 with
// FMA, 0 neither; and whether it has AVX512_BF16.
int mm_peak_kind(int *bf16) {
	__builtin_cpu_init();
	*bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
	if (__builtin_cpu_supports("avx512f")) return 2;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
	return 0;
}

// mm_peak runs iters iterations of a loop (kind 2: AVX-512 fp32, 1: AVX2
// fp32, 3: AVX512_BF16 dot products) and returns the FLOPs it did; the
// caller times it. sink keeps the result alive.
double mm_peak(int kind, long iters, float *sink) {
	switch (kind) {
	case 2:
		*sink = peak_avx512(iters);
		return (double)iters * CHAINS * 16 * 2;
	case 1:
		*sink = peak_avx2(iters);
		return (double)iters * CHAINS2 * 8 * 2;
	case 3:
		*sink = peak_bf16(iters);
		return (double)iters * CHAINS * 32 * 2;
	}
	return 0;
}

#else

int mm_peak_kind(int *bf16) { *bf16 = 0; return 0; }
double mm_peak(int kind, long iters, float *sink) { return 0; }

#endif
