/* C[M,N] = act(alpha * A[M,K] @ B[K,N] + beta * bias(i, j) + residual[i * res_ld + j]), all row-major with
 * leading dimensions. bias(i, j) = bias[i * bias_rs + j * bias_cs]; zero strides broadcast (per-row bias for
 * convolutions, per-column for fully connected layers, a scalar, or a full matrix). bias == 0 means no bias,
 * residual == 0 no residual; act/p0/p1 is an activation code of common.h, applied last (fused epilogue).
 *
 * Register tile: 4 rows x 8 columns = 8 accumulators; each k step loads two B vectors and splats four A
 * values (a scalar load + splat, which V8 turns into one broadcast load; measured faster in V8 than
 * shuffling lanes out of 4-wide A loads, or 6x8 tiles). Columns run in blocks whose K x block panel of B
 * stays in L2 while every row panel passes over it. Rows that do not fill a tile run the same loop with
 * fewer rows; the columns past the last multiple of 8 run one more tile, 4 wide when at most 4 are left and
 * 8 wide otherwise. The epilogue works on the accumulators in registers; activations other than ReLU and Clip
 * run over each column block once its tiles are stored (activate_late). */
#include "activation.h"
#include "gemm.h"

typedef struct {
    float alpha, beta;
    const float* bias;
    int bias_rs, bias_cs;
    const float* residual;
    int res_ld, act;
    float p0, p1;
} Epilogue;

/* v (4 columns j..j+3 of row i) -> epilogue -> C, without leaving registers; an activation that activation.h's
 * act_in_registers refuses is left to activate_late */
INLINE void finish4(float* c, v128_t v, int i, int j, const Epilogue* e) {
    if (e->alpha != 1.0f) v = wasm_f32x4_mul(v, VSPLAT(e->alpha));
    if (e->bias) {
        const float* b = e->bias + i * e->bias_rs + j * e->bias_cs;
        v128_t bv = e->bias_cs == 0 ? VSPLAT(*b)
                  : e->bias_cs == 1 ? VLOAD(b)
                                    : wasm_f32x4_make(b[0], b[e->bias_cs], b[2 * e->bias_cs], b[3 * e->bias_cs]);
        v = VMADD(bv, VSPLAT(e->beta), v);
    }
    if (e->residual) v = wasm_f32x4_add(v, VLOAD(e->residual + i * e->res_ld + j));
    VSTORE(c, v_activate_in_registers(v, e->act, e->p0, e->p1));
}

/* The epilogue of a partial tile (w columns below its width, from column j; `rows` rows from row i, row r's
 * accumulators at t + 8r), element by element, with the activations act_in_registers accepts. Only the last
 * column tile is partial, so one out-of-line copy serves every tile shape; it is called once the tile's
 * accumulators are stored, so no accumulator is live across a call. */
static __attribute__((noinline)) void finish_partial(float* C, int ldc, int rows, int i, int j, int w,
                                                     const float* t, const Epilogue* e) {
    for (int r = 0; r < rows; r++) {
        float* c = C + (i + r) * ldc + j;
        for (int q = 0; q < w; q++) {
            float s = t[8 * r + q] * e->alpha;
            if (e->bias) s += e->beta * e->bias[(i + r) * e->bias_rs + (j + q) * e->bias_cs];
            if (e->residual) s += e->residual[(i + r) * e->res_ld + j + q];
            c[q] = s;
        }
        if (e->act == ACT_RELU || e->act == ACT_CLIP) activate_row_outlined(c, c, 0, w, e->act, e->p0, e->p1);
    }
}

/* The activations act_in_registers refuses, in place over M rows of n columns of C once a column block's tiles
 * are stored: a second pass over a block still in cache, next to which their exp per element dominates. */
static __attribute__((noinline)) void activate_late(float* C, int ldc, int M, int n, const Epilogue* e) {
    for (int i = 0; i < M; i++) {
        float* c = C + (long)i * ldc;
        activate_row_outlined(c, c, 0, n, e->act, e->p0, e->p1);
    }
}

/* A call in a loop keeps V8 from unrolling it: Chromium 156's V8 partially unrolls small innermost loops that
 * make no call, and unrolled, the k loop over packed panels ran 4-8% slower (kernel A/B in Chromium: M=512 N=508
 * K=1280, M=64 N=3136 K=576, M=2048 N=64 K=257), while the one over B as it is ran 6-10% slower kept rolled
 * (M=144 N=3136 K=24, M=64 N=784 K=384). The loops that pass rolled = 1 (a constant) test k against `never`,
 * -1 hidden from the compiler, so the call is never made. */
static __attribute__((noinline)) void stay_rolled(void) { __asm__ volatile(""); }

/* mr rows (a compile-time constant after inlining, at most 4) by 8 columns of B, whose rows are bstride floats
 * apart from b on (ldb for B as it is, 8 for a packed panel); the first w <= 8 columns are stored. Rows k of B
 * from kfull on are read only in their first w columns (the rest as 0): an 8-wide read there would run past the
 * end of B. Before kfull, a narrow tile's extra lanes read on into the next row and are never stored. rolled:
 * see stay_rolled. */
INLINE void tile_mx8(int mr, int K, int kfull, const float* A, int lda, const float* b, int bstride, int rolled,
                     float* C, int ldc, int i, int j, int w, const Epilogue* e) {
    v128_t lo[4], hi[4];
    for (int r = 0; r < mr; r++) lo[r] = hi[r] = wasm_f32x4_splat(0.0f);
    const float* a = A + i * lda;
    int k = 0, never = -1;
    if (rolled) __asm__("" : "+r"(never));
    for (; k < kfull; k++, b += bstride) {
        v128_t b0 = VLOAD(b), b1 = VLOAD(b + 4);
        for (int r = 0; r < mr; r++) {
            v128_t av = VSPLAT(a[r * lda + k]);
            lo[r] = VMADD(av, b0, lo[r]);
            hi[r] = VMADD(av, b1, hi[r]);
        }
        if (rolled && k == never) stay_rolled();
    }
    for (; k < K; k++, b += bstride) {
        float t[8];
        for (int q = 0; q < 8; q++) t[q] = q < w ? b[q] : 0.0f;
        v128_t b0 = VLOAD(t), b1 = VLOAD(t + 4);
        for (int r = 0; r < mr; r++) {
            v128_t av = VSPLAT(a[r * lda + k]);
            lo[r] = VMADD(av, b0, lo[r]);
            hi[r] = VMADD(av, b1, hi[r]);
        }
    }
    if (w == 8) {
        for (int r = 0; r < mr; r++) {
            float* c = C + (i + r) * ldc + j;
            finish4(c, lo[r], i + r, j, e);
            finish4(c + 4, hi[r], i + r, j + 4, e);
        }
    } else {
        float t[4 * 8];
        for (int r = 0; r < mr; r++) {
            VSTORE(t + 8 * r, lo[r]);
            VSTORE(t + 8 * r + 4, hi[r]);
        }
        finish_partial(C, ldc, mr, i, j, w, t, e);
    }
}

/* The same for a tail of w <= 4 columns: one vector per row, so half the multiply-adds of an 8-wide tile
 * (a 49-pixel layer, 6 tiles and 1 column, spent 1/7 of its time on that column). */
INLINE void tile_mx4(int mr, int K, int kfull, const float* A, int lda, const float* b, int bstride, int rolled,
                     float* C, int ldc, int i, int j, int w, const Epilogue* e) {
    v128_t acc[4];
    for (int r = 0; r < mr; r++) acc[r] = wasm_f32x4_splat(0.0f);
    const float* a = A + i * lda;
    int k = 0, never = -1;
    if (rolled) __asm__("" : "+r"(never));
    for (; k < kfull; k++, b += bstride) {
        v128_t b0 = VLOAD(b);
        for (int r = 0; r < mr; r++) acc[r] = VMADD(VSPLAT(a[r * lda + k]), b0, acc[r]);
        if (rolled && k == never) stay_rolled();
    }
    for (; k < K; k++, b += bstride) {
        float t[4];
        for (int q = 0; q < 4; q++) t[q] = q < w ? b[q] : 0.0f;
        v128_t b0 = VLOAD(t);
        for (int r = 0; r < mr; r++) acc[r] = VMADD(VSPLAT(a[r * lda + k]), b0, acc[r]);
    }
    if (w == 4) {
        for (int r = 0; r < mr; r++) finish4(C + (i + r) * ldc + j, acc[r], i + r, j, e);
    } else {
        float t[4 * 8];
        for (int r = 0; r < mr; r++) VSTORE(t + 8 * r, acc[r]);
        finish_partial(C, ldc, mr, i, j, w, t, e);
    }
}

/* The rows < 4 left over below the last full row tile, as one tile of that many rows: one pass over the
 * column block instead of one per row. w <= 4 takes the 4-wide tile. */
static __attribute__((noinline)) void leftover_rows(int rows, int i, int K, int kfull, const float* A, int lda,
                                                    const float* b, int bstride, float* C, int ldc, int j, int w,
                                                    const Epilogue* e) {
#define LEFTOVER(n)                                                                \
    if (w <= 4)                                                                    \
        tile_mx4(n, K, kfull, A, lda, b, bstride, 0, C, ldc, i, j, w, e);          \
    else                                                                           \
        tile_mx8(n, K, kfull, A, lda, b, bstride, 0, C, ldc, i, j, w, e);
    switch (rows) {
        case 1: LEFTOVER(1) break;
        case 2: LEFTOVER(2) break;
        default: LEFTOVER(3) break;
    }
#undef LEFTOVER
}

/* rows of C from 0 in tiles of 4, then the leftover rows, over the tail columns j.. (w of them, 1..7) of B */
INLINE void tail_columns(int M, int K, const float* A, int lda, const float* b, int ldb, long room, float* C, int ldc,
                         int j, int w, const Epilogue* e) {
    /* room: floats from the tail's first column in row 0 to the end of B; rows k from kfull on would be read
     * past that end by a full-width read */
    int width = w <= 4 ? 4 : 8;
    long left = room - width;
    int kfull = left < 0 ? 0 : left / ldb + 1 < K ? (int)(left / ldb + 1) : K;
    int i = 0;
    if (w <= 4) {
        for (; i + 4 <= M; i += 4) tile_mx4(4, K, kfull, A, lda, b, ldb, 0, C, ldc, i, j, w, e);
    } else {
        for (; i + 4 <= M; i += 4) tile_mx8(4, K, kfull, A, lda, b, ldb, 0, C, ldc, i, j, w, e);
    }
    if (i < M) leftover_rows(M - i, i, K, kfull, A, lda, b, ldb, C, ldc, j, w, e);
}

KERNEL void f32_gemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                     float alpha, const float* bias, int bias_rs, int bias_cs, float beta, int act, float p0, float p1,
                     const float* residual, int res_ld) {
    const Epilogue ep = {alpha, beta, bias, bias_rs, bias_cs, residual, res_ld, act, p0, p1};
    const Epilogue* e = &ep;
    int n8 = N & ~7;
    /* column blocks of ~192 KB of B, which stay in L2 while every row panel of A passes over them */
    int block = imax(8, imin(n8, ((48 * 1024) / imax(K, 1)) & ~7));
    for (int j0 = 0; j0 < n8; j0 += block) {
        int j1 = imin(n8, j0 + block);
        int i = 0;
        for (; i + 4 <= M; i += 4)
            for (int j = j0; j < j1; j += 8) tile_mx8(4, K, K, A, lda, B + j, ldb, 0, C, ldc, i, j, 8, e);
        if (i < M)
            for (int j = j0; j < j1; j += 8) leftover_rows(M - i, i, K, K, A, lda, B + j, ldb, C, ldc, j, 8, e);
        if (!act_in_registers(act)) activate_late(C + j0, ldc, M, j1 - j0, e);
    }
    if (n8 < N) {
        /* the last N - n8 columns: 4- or 8-wide tiles, full-width reads while they stay inside B (it ends at
         * row K - 1, column N - 1), narrow after. A scalar tail here was a serial chain of K dependent adds per
         * element: 49-pixel layers (7x7) lost a third of their time to their one leftover column. */
        long end = (long)(K - 1) * ldb + N;
        tail_columns(M, K, A, lda, B + n8, ldb, end - n8, C, ldc, n8, N - n8, e);
        if (!act_in_registers(act)) activate_late(C + n8, ldc, M, N - n8, e);
    }
}

/* `batch` independent products whose operands advance by fixed element strides (0 broadcasts one side),
 * as batched MatMul needs. */
KERNEL void f32_gemm_batched(int batch, int M, int N, int K, const float* A, int stride_a, const float* B,
                             int stride_b, float* C) {
    for (int b = 0; b < batch; b++)
        f32_gemm(M, N, K, A + (long)b * stride_a, K, B + (long)b * stride_b, N, C + (long)b * M * N, N, 1.0f, 0, 0, 0,
                 0.0f, ACT_NONE, 0, 0, 0, 0);
}

/* ---- B packed in 8-column panels ----------------------------------------------------------------------
 * Panel p holds columns 8p..8p+7 of B row after row: Bp[p * 8K + k * 8 + c] = B[k, 8p + c], the last panel
 * zero-padded. A tile then reads its B operand as one contiguous stream (32 bytes per k) instead of one
 * cache line per k, and the column tail runs the same loop, 4 or 8 wide (its padding multiplies into columns
 * that are not stored). Constant B (weights) is packed at package time; f32_pack_b packs at run time. */

KERNEL void f32_pack_b(int K, int N, const float* B, int ldb, float* Bp) {
    for (int j0 = 0; j0 < N; j0 += 8, Bp += 8 * K) {
        int w = imin(8, N - j0);
        for (int k = 0; k < K; k++) {
            const float* b = B + (long)k * ldb + j0;
            float* d = Bp + k * 8;
            if (w == 8) {
                VSTORE(d, VLOAD(b));
                VSTORE(d + 4, VLOAD(b + 4));
            } else {
                for (int c = 0; c < 8; c++) d[c] = c < w ? b[c] : 0.0f;
            }
        }
    }
}

/* C = epilogue(A @ B) with B packed by f32_pack_b (or at package time), in 4x8 tiles, then the leftover rows
 * as one tile. Column blocks of panels stay in L2 while every row tile passes over them.
 * mr: the tile's rows, which --tune may choose among the heights in ops/gemm.py's TILES; only 4 is built, and
 * any other value runs 4 rows (the same results). V8 ran every other height slower (3 and 2 rows 1.15-1.7x on
 * ResNet-18's im2col layers; 5 and 6 spill registers), and heights 2, 3, 5 and 6 with the leftover tiles of 4
 * and 5 rows they need took 27 of the 53 KB of GEMM code in every bundle. */
KERNEL void f32_gemm_packed(int M, int N, int K, const float* A, int lda, const float* Bp, float* C, int ldc,
                            float alpha, const float* bias, int bias_rs, int bias_cs, float beta, int act, float p0,
                            float p1, const float* residual, int res_ld, int mr) {
    (void)mr;
    const Epilogue ep = {alpha, beta, bias, bias_rs, bias_cs, residual, res_ld, act, p0, p1};
    int block = imax(8, ((48 * 1024) / imax(K, 1)) & ~7);
    for (int j0 = 0; j0 < N; j0 += block) {
        int j1 = imin(N, j0 + block);
        int i = 0;
        for (; i + 4 <= M; i += 4)
            for (int j = j0; j < j1; j += 8) {
                const float* b = Bp + (long)(j >> 3) * 8 * K;
                if (N - j <= 4)
                    tile_mx4(4, K, K, A, lda, b, 8, 1, C, ldc, i, j, N - j, &ep);
                else
                    tile_mx8(4, K, K, A, lda, b, 8, 1, C, ldc, i, j, imin(8, N - j), &ep);
            }
        if (i < M)
            for (int j = j0; j < j1; j += 8)
                leftover_rows(M - i, i, K, K, A, lda, Bp + (long)(j >> 3) * 8 * K, 8, C, ldc, j, imin(8, N - j), &ep);
        if (!act_in_registers(act)) activate_late(C + j0, ldc, M, j1 - j0, &ep);
    }
}
