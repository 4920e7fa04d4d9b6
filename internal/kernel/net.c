//go:build cgo && !purego && !nodnnl

// Inference of an ensemble MLP through oneDNN: every layer a matmul
// primitive with the bias and the activation fused into its epilogue, the
// weights packed once (in fp32, or in bf16 for the AVX512_BF16 path, where
// products of bf16 numbers accumulate in fp32 and hidden activations pass
// between layers in bf16), the JIT code chosen by oneDNN for the CPU at
// hand. One call carries a block of rows through every layer. Where the
// CPU has AVX-512 (and AVX512_BF16, for bf16) or AVX2 (fp32), nets run on
// our kernels instead (mlp512.c, mlp256.c), which are faster on these
// shapes; oneDNN keeps the machines without them.

#include <dnnl.h>
#include "mlp.h"
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MM_MAXL 32
// The rows of oneDNN's primitives: see mm_net_forward.
#define MM_DNNL_ROWS 256

typedef struct {
	dnnl_stream_t stream;
	void *buf[2];   // ping-pong hidden activations
	uint16_t *in16; // the first layer's input in bf16
	float *pad;     // a short piece's inputs, padded with zero rows
	// Memory objects of the layers' inputs and outputs, their data
	// handles set at each call, and the layers' scratchpads.
	dnnl_memory_t src[MM_MAXL], dst[MM_MAXL], scratch[MM_MAXL];
	float *own; // mlp512's block buffers
} mm_worker;

typedef struct {
	int L, E, bf16, act;
	float slope;
	int width[MM_MAXL + 1];
	dnnl_engine_t eng;
	dnnl_memory_desc_t wpacked[MM_MAXL];
	dnnl_memory_t *w; // L × E packed weights
	dnnl_memory_t *b; // L × E biases
	dnnl_primitive_t prim[MM_MAXL]; // the layers' matmuls for MM_DNNL_ROWS rows
	mm_worker *workers;
	int nworkers;
	int maxw;
	int own;          // the layers run on our kernel: 2 mlp512.c's, 1 mlp256.c's
	float **pw, **pb; // its packed weights and biases, E × L
} mm_net;

static void seterr(char *err, int len, const char *what, dnnl_status_t s) {
	snprintf(err, len, "oneDNN: %s failed (status %d)", what, (int)s);
}

#define TRY(call, what)                          \
	do {                                         \
		dnnl_status_t s_ = (call);               \
		if (s_ != dnnl_success) {                \
			seterr(err, errlen, what, s_);       \
			goto fail;                           \
		}                                        \
	} while (0)

static dnnl_data_type_t in_type(mm_net *n, int l) { return n->bf16 ? dnnl_bf16 : dnnl_f32; }
static dnnl_data_type_t out_type(mm_net *n, int l) { return (n->bf16 && l < n->L - 1) ? dnnl_bf16 : dnnl_f32; }

// mm_pd makes the matmul primitive descriptor of layer l for M rows; with
// weights NULL it lets oneDNN choose the packed weights format.
static dnnl_status_t mm_pd(mm_net *n, int l, long M, const dnnl_memory_desc_t *weights, dnnl_primitive_desc_t *pd) {
	long K = n->width[l], N = n->width[l + 1];
	dnnl_dims_t sd = {M, K}, wd = {K, N}, bd = {1, N}, dd = {M, N};
	dnnl_memory_desc_t smd, wany, bmd, dmd;
	dnnl_status_t s;
	if ((s = dnnl_memory_desc_init_by_tag(&smd, 2, sd, in_type(n, l), dnnl_ab)) != dnnl_success) return s;
	if ((s = dnnl_memory_desc_init_by_tag(&wany, 2, wd, in_type(n, l), dnnl_format_tag_any)) != dnnl_success) return s;
	if ((s = dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab)) != dnnl_success) return s;
	if ((s = dnnl_memory_desc_init_by_tag(&dmd, 2, dd, out_type(n, l), dnnl_ab)) != dnnl_success) return s;
	dnnl_matmul_desc_t md;
	if ((s = dnnl_matmul_desc_init(&md, &smd, weights ? weights : &wany, &bmd, &dmd)) != dnnl_success) return s;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	// Each worker passes its own scratchpad: Debian's oneDNN is built
	// without concurrent execution, and a primitive run by two threads at
	// once would share the library's.
	if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) return s;
	if ((s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)) != dnnl_success) goto out;
	if (l < n->L - 1 && n->act != 0) {
		// The activations of kernel.Act: 1 relu, 2 leaky relu, 3 tanh, 4 swish.
		dnnl_alg_kind_t alg = dnnl_eltwise_relu;
		float alpha = 0;
		switch (n->act) {
		case 2: alpha = n->slope; break;
		case 3: alg = dnnl_eltwise_tanh; break;
		case 4: alg = dnnl_eltwise_swish; alpha = 1; break;
		}
		if ((s = dnnl_post_ops_create(&po)) != dnnl_success) return s;
		if ((s = dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, 0.0f)) != dnnl_success) goto out;
		if ((s = dnnl_primitive_attr_set_post_ops(attr, po)) != dnnl_success) goto out;
	}
	s = dnnl_primitive_desc_create(pd, &md, attr, n->eng, NULL);
out:
	if (attr) dnnl_primitive_attr_destroy(attr);
	if (po) dnnl_post_ops_destroy(po);
	return s;
}

// own_create packs n's layers for the kernel of mlp512.c (level 2) or
// mlp256.c (1).
static int own_create(mm_net *n, int level, const float **W, const float **B, char *err, int errlen) {
	int L = n->L, E = n->E;
	n->pw = calloc((size_t)L * E, sizeof(float *));
	n->pb = calloc((size_t)L * E, sizeof(float *));
	n->workers = calloc(n->nworkers, sizeof(mm_worker));
	if (!n->pw || !n->pb || !n->workers) goto oom;
	for (int e = 0; e < E; e++)
		for (int l = 0; l < L; l++) {
			long K = n->width[l], N = n->width[l + 1];
			float **w = &n->pw[e * L + l], **b = &n->pb[e * L + l];
			if (!(*w = mlp_pack(W[l] + (size_t)e * K * N, K, N, n->bf16, mlp_nr(level))) || !(*b = malloc(sizeof(float) * N))) goto oom;
			memcpy(*b, B[l] + (size_t)e * N, sizeof(float) * N);
		}
	size_t sz = ((size_t)mlp_scratch(n->maxw) * sizeof(float) + 63) / 64 * 64;
	for (int w = 0; w < n->nworkers; w++) {
		if (!(n->workers[w].own = aligned_alloc(64, sz))) goto oom;
		memset(n->workers[w].own, 0, sz); // lanes past a short block's rows stay finite
	}
	n->own = level;
	return 0;
oom:
	snprintf(err, errlen, "kernel: out of memory packing the net");
	return -1;
}

// mm_net_create packs an ensemble MLP of L layers (widths[0..L]) and E
// members: W[l] holds E row-major in×out matrices, B[l] E bias vectors.
// The net runs on our kernels where the CPU can, up to level own (2
// AVX-512, 1 AVX2, 0 none: oneDNN).
mm_net *mm_net_create(int L, const int *widths, int E, int act, float slope, int bf16, int own,
		const float **W, const float **B, int workers, char *err, int errlen) {
	if (L < 1 || L > MM_MAXL) {
		snprintf(err, errlen, "oneDNN: %d layers, at most %d", L, MM_MAXL);
		return NULL;
	}
	omp_set_num_threads(1);
	mm_net *n = calloc(1, sizeof *n);
	dnnl_primitive_desc_t pd = NULL, rpd = NULL;
	dnnl_primitive_t reorder = NULL;
	dnnl_stream_t st = NULL;
	n->L = L, n->E = E, n->bf16 = bf16, n->act = act, n->slope = slope;
	memcpy(n->width, widths, sizeof(int) * (L + 1));
	for (int l = 0; l <= L; l++) n->maxw = n->width[l] > n->maxw ? n->width[l] : n->maxw;
	n->nworkers = workers;
	int level = mlp_level(bf16) < own ? mlp_level(bf16) : own;
	if (level > 0) {
		if (own_create(n, level, W, B, err, errlen) == 0) return n;
		goto fail;
	}
	n->w = calloc((size_t)L * E, sizeof(dnnl_memory_t));
	n->b = calloc((size_t)L * E, sizeof(dnnl_memory_t));
	TRY(dnnl_engine_create(&n->eng, dnnl_cpu, 0), "engine");
	TRY(dnnl_stream_create(&st, n->eng, dnnl_stream_default_flags), "stream");
	for (int l = 0; l < L; l++) {
		long K = n->width[l], N = n->width[l + 1];
		TRY(mm_pd(n, l, 512, NULL, &pd), "matmul");
		n->wpacked[l] = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
		dnnl_primitive_desc_destroy(pd);
		pd = NULL;
		dnnl_dims_t wd = {K, N}, bd = {1, N};
		dnnl_memory_desc_t wuser, bmd;
		TRY(dnnl_memory_desc_init_by_tag(&wuser, 2, wd, dnnl_f32, dnnl_ab), "weights");
		TRY(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab), "bias");
		TRY(dnnl_reorder_primitive_desc_create(&rpd, &wuser, n->eng, &n->wpacked[l], n->eng, NULL), "reorder");
		TRY(dnnl_primitive_create(&reorder, rpd), "reorder");
		for (int e = 0; e < E; e++) {
			dnnl_memory_t from;
			TRY(dnnl_memory_create(&from, &wuser, n->eng, (void *)(W[l] + (size_t)e * K * N)), "weights");
			TRY(dnnl_memory_create(&n->w[l * E + e], &n->wpacked[l], n->eng, DNNL_MEMORY_ALLOCATE), "weights");
			dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, n->w[l * E + e]}};
			dnnl_status_t s = dnnl_primitive_execute(reorder, st, 2, args);
			dnnl_stream_wait(st);
			dnnl_memory_destroy(from);
			TRY(s, "packing weights");
			TRY(dnnl_memory_create(&n->b[l * E + e], &bmd, n->eng, DNNL_MEMORY_ALLOCATE), "bias");
			void *bp;
			dnnl_memory_get_data_handle(n->b[l * E + e], &bp);
			memcpy(bp, B[l] + (size_t)e * N, sizeof(float) * N);
		}
		dnnl_primitive_destroy(reorder);
		reorder = NULL;
		dnnl_primitive_desc_destroy(rpd);
		rpd = NULL;
	}
	dnnl_stream_destroy(st);
	st = NULL;
	// One primitive a layer, for MM_DNNL_ROWS rows whatever a call's rows
	// (see mm_net_forward), and each worker's memory for it.
	const long M = MM_DNNL_ROWS;
	dnnl_memory_desc_t scratch[MM_MAXL];
	for (int l = 0; l < L; l++) {
		TRY(mm_pd(n, l, M, &n->wpacked[l], &pd), "matmul");
		scratch[l] = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
		TRY(dnnl_primitive_create(&n->prim[l], pd), "matmul");
		dnnl_primitive_desc_destroy(pd);
		pd = NULL;
	}
	if (!(n->workers = calloc(workers, sizeof(mm_worker)))) goto oom;
	for (int w = 0; w < workers; w++) {
		mm_worker *k = &n->workers[w];
		TRY(dnnl_stream_create(&k->stream, n->eng, dnnl_stream_default_flags), "stream");
		for (int l = 0; l < L; l++) {
			dnnl_dims_t sd = {M, n->width[l]}, dd = {M, n->width[l + 1]};
			dnnl_memory_desc_t smd, dmd;
			TRY(dnnl_memory_desc_init_by_tag(&smd, 2, sd, in_type(n, l), dnnl_ab), "memory");
			TRY(dnnl_memory_desc_init_by_tag(&dmd, 2, dd, out_type(n, l), dnnl_ab), "memory");
			TRY(dnnl_memory_create(&k->src[l], &smd, n->eng, DNNL_MEMORY_NONE), "memory");
			TRY(dnnl_memory_create(&k->dst[l], &dmd, n->eng, DNNL_MEMORY_NONE), "memory");
			TRY(dnnl_memory_create(&k->scratch[l], &scratch[l], n->eng, DNNL_MEMORY_ALLOCATE), "memory");
		}
		size_t sz = (size_t)M * n->maxw * sizeof(float);
		k->buf[0] = malloc(sz);
		k->buf[1] = malloc(sz);
		k->in16 = malloc((size_t)M * n->width[0] * sizeof(uint16_t));
		k->pad = malloc((size_t)M * n->width[0] * sizeof(float));
		if (!k->buf[0] || !k->buf[1] || !k->in16 || !k->pad) goto oom;
	}
	return n;
oom:
	snprintf(err, errlen, "oneDNN: out of memory for the net's buffers");
fail:
	if (reorder) dnnl_primitive_destroy(reorder);
	if (rpd) dnnl_primitive_desc_destroy(rpd);
	if (pd) dnnl_primitive_desc_destroy(pd);
	if (st) dnnl_stream_destroy(st);
	void mm_net_free(mm_net *);
	mm_net_free(n);
	return NULL;
}

void mm_net_free(mm_net *n) {
	if (!n) return;
	for (int l = 0; l < n->L; l++)
		if (n->prim[l]) dnnl_primitive_destroy(n->prim[l]);
	for (int i = 0; n->w && i < n->L * n->E; i++) {
		if (n->w[i]) dnnl_memory_destroy(n->w[i]);
		if (n->b[i]) dnnl_memory_destroy(n->b[i]);
	}
	for (int w = 0; n->workers && w < n->nworkers; w++) {
		mm_worker *k = &n->workers[w];
		for (int l = 0; l < n->L; l++) {
			if (k->src[l]) dnnl_memory_destroy(k->src[l]);
			if (k->dst[l]) dnnl_memory_destroy(k->dst[l]);
			if (k->scratch[l]) dnnl_memory_destroy(k->scratch[l]);
		}
		if (k->stream) dnnl_stream_destroy(k->stream);
		free(k->buf[0]);
		free(k->buf[1]);
		free(k->in16);
		free(k->pad);
		free(k->own);
	}
	for (int i = 0; n->pw && i < n->L * n->E; i++) {
		free(n->pw[i]);
		free(n->pb[i]);
	}
	free(n->pw);
	free(n->pb);
	free(n->workers);
	free(n->w);
	free(n->b);
	if (n->eng) dnnl_engine_destroy(n->eng);
	free(n);
}

// mm_net_forward carries rows rows of x (rows × width[0], fp32) through
// member's layers into dst (rows × width[L], fp32), on worker's buffers.
int mm_net_forward(mm_net *n, int worker, int member, const float *x, long rows, float *dst, char *err, int errlen) {
	if (rows <= 0) return 0;
	mm_worker *k = &n->workers[worker];
	if (n->own) {
		mlp_forward(n->own, n->L, n->width, n->pw + member * n->L, (const float *const *)n->pb + member * n->L, n->act, n->slope,
			n->bf16, x, rows, dst, k->own);
		return 0;
	}
	omp_set_num_threads(1);
	// One primitive, for MM_DNNL_ROWS rows, whatever the call's rows: a
	// short last piece is padded with zero rows. So any split of rows gives
	// each row the same result, and one primitive a layer serves every call.
	const long M = MM_DNNL_ROWS;
	long win = n->width[0], wout = n->width[n->L];
	for (long r0 = 0; r0 < rows; r0 += M) {
		long c = rows - r0 < M ? rows - r0 : M;
		const float *xs = x + r0 * win;
		float *ds = dst + r0 * wout;
		if (c < M) {
			// Zero rows past c keep the padded rows' results finite.
			memcpy(k->pad, xs, (size_t)c * win * sizeof(float));
			memset(k->pad + c * win, 0, (size_t)(M - c) * win * sizeof(float));
			xs = k->pad;
		}
		const void *in = xs;
		if (n->bf16) {
			for (long i = 0; i < M * win; i++) k->in16[i] = mlp_bf16(xs[i]);
			in = k->in16;
		}
		for (int l = 0; l < n->L; l++) {
			void *out = l < n->L - 1 ? k->buf[l % 2] : c < M ? (void *)k->buf[l % 2] : (void *)ds;
			dnnl_memory_set_data_handle_v2(k->src[l], (void *)in, k->stream);
			dnnl_memory_set_data_handle_v2(k->dst[l], out, k->stream);
			dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, k->src[l]}, {DNNL_ARG_WEIGHTS, n->w[l * n->E + member]},
				{DNNL_ARG_BIAS, n->b[l * n->E + member]}, {DNNL_ARG_DST, k->dst[l]}, {DNNL_ARG_SCRATCHPAD, k->scratch[l]}};
			dnnl_status_t s = dnnl_primitive_execute(n->prim[l], k->stream, 5, args);
			if (s != dnnl_success) {
				seterr(err, errlen, "matmul", s);
				return -1;
			}
			in = out;
		}
		dnnl_stream_wait(k->stream);
		if (c < M) memcpy(ds, in, (size_t)c * wout * sizeof(float));
		// oneDNN's relu makes NaN 0, so a row that diverged would come back
		// finite; on our kernels NaN stays NaN whatever the activation, and
		// a planner must see it (x is the caller's, unpadded).
		for (long r = 0; r < c; r++) {
			const float *xr = x + (r0 + r) * win;
			int nan = 0;
			for (long j = 0; j < win; j++) nan |= xr[j] != xr[j];
			if (nan)
				for (long j = 0; j < wout; j++) ds[r * wout + j] = __builtin_nanf("");
		}
	}
	// The caller's memory is not ours to keep a pointer to.
	dnnl_memory_set_data_handle_v2(k->src[0], NULL, k->stream);
	dnnl_memory_set_data_handle_v2(k->dst[n->L - 1], NULL, k->stream);
	return 0;
}

// mm_net_forward_blocks carries k blocks of rows rows each through the
// net — block i (x + i·rows·width[0]) through member members[i] into dst's
// block i — on threads OpenMP threads, in chunks of at most chunk rows, so
// that the result does not depend on the thread count. OpenMP's threads
// run the chunks (oneDNN runs single-threaded inside them); one call from
// Go, where goroutines calling into C by turns scale worse.
int mm_net_forward_blocks(mm_net *n, int threads, const float *x, long rows, const int *members, int k, long chunk,
		float *dst, char *err, int errlen) {
	if (rows <= 0 || k <= 0) return 0;
	if (threads > n->nworkers) threads = n->nworkers;
	long chunks = (rows + chunk - 1) / chunk;
	long tasks = chunks * k;
	int failed = 0;
	long in = n->width[0], out = n->width[n->L];
#pragma omp parallel for num_threads(threads) schedule(dynamic)
	for (long t = 0; t < tasks; t++) {
		if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
		long b = t / chunks, c = t % chunks, r0 = c * chunk;
		long m = rows - r0 < chunk ? rows - r0 : chunk;
		char e[256];
		if (mm_net_forward(n, omp_get_thread_num(), members[b], x + (b * rows + r0) * in, m, dst + (b * rows + r0) * out, e, sizeof e) != 0) {
			if (!__atomic_exchange_n(&failed, 1, __ATOMIC_RELAXED)) snprintf(err, errlen, "%s", e);
		}
	}
	return failed ? -1 : 0;
}

// mm_sgemm_dnnl is oneDNN's row-major sgemm on the calling thread alone
// (an OpenMP team of one: the callers run it on several goroutines); 0 on
// success.
int mm_sgemm_dnnl(char ta, char tb, long m, long n, long k, float alpha, const float *a, long lda, const float *b, long ldb,
		float beta, float *c, long ldc) {
	omp_set_num_threads(1);
	return dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == dnnl_success ? 0 : -1;
}
