/* 3x3 convolution, stride 1, dilation 1, groups 1, NCHW float32, by Winograd F(2x2, 3x3).
 *
 * f32_conv2d_winograd_f23(N, C, H, W, M, OH, OW, PT, PL, x, U, bias, y, workspace, act, p0, p1, residual, y_plane)
 *
 * The output is cut into T = TH * TW tiles of 2x2, TH = ceil(OH / 2), TW = ceil(OW / 2) (tile t = ty * TW + tx);
 * tile (ty, tx) reads the 4x4 input patch d at rows 2ty - PT .. +3, columns 2tx - PL .. +3 (zero outside), and
 *     y_tile = A^T [ sum_c U[m][c] (.) V[c] ] A,   V[c] = B^T d[c] B,   U[m][c] = G g[m][c] G^T   ((.) elementwise)
 * so each of the 16 transform positions p = 4 * row + col is one GEMM  M'[p] (M x T) = U[p] (M x C) x V[p] (C x T).
 * pad_top/pad_left (PT, PL) position the window; bottom/right padding is implied by OH/OW (any values; PT may be
 * negative). y_plane is the element stride between channel planes of y and residual (OH * OW for a whole tensor).
 * Row bands: rows [r0, r1) of the output (r0 even) are the same call with y and residual advanced r0 rows, OH = r1 - r0,
 * PT - r0 and the planes unchanged; bands give the same bits as one call (threads run them at once, each in its own
 * workspace share, see winograd.py row_workspace_bytes).
 *
 * U is transformed offline (wasm_runtime/ops/winograd.py transform_weights) and packed for the register tile:
 *     U[p][m / MR][c][m % MR] (16 * Mp * C floats), rows m >= M zero up to Mp = roundup(M, MR), MR = 4.
 *
 * Per image, the input is first copied into a zero-padded plane per channel (no bounds checks after that); then the
 * tiles go in blocks of TB through the whole pipeline
 *     input transform -> 16 GEMMs (register tile MR x NR = 4 x 8) -> output transform + epilogue,
 * so a block's operands stay in cache. TB = min(roundup(T, 8), max(8, min(256, 8192 / C) rounded down to 8)).
 * Workspace, float32 (winograd.py kernel_workspace_floats computes the same; keep them in sync):
 *     padded input   C x (2 TH + 2) x (2 TW + 2)
 *     V block        16 x (C * TB + 16)     V[p][j / 8][c][j % 8], positions 16 floats apart beyond the block
 *     M' block       Mp x 16 x TB           M'[m][p][j]
 *   = 4 * (C * (2 TH + 2) * (2 TW + 2) + 16 * (C * TB + 16) + Mp * 16 * TB) bytes.
 *
 * Epilogue as f32_conv2d: y = act(conv + bias + residual) with act/p0/p1 an activation code of common.h;
 * bias == 0: none; residual (a tensor shaped like y) == 0: none. */
#include "activation.h"

#define MR 4           /* GEMM register tile: MR output channels (one vector of packed weights)... */
#define NR 8           /* ... x NR tiles (two vectors): 8 accumulators, the most Cranelift keeps in registers */
#define TB_BUDGET 8192 /* C * TB floats, one position of the V block: ~32 KB */
#define TB_MAX 256
#define NOINLINE static __attribute__((noinline)) /* own register allocation per stage */

INLINE int tile_block(int C, int T) {
    int tb = imax(NR, imin(TB_MAX, TB_BUDGET / imax(C, 1)) / NR * NR);
    return imin(tb, (T + NR - 1) / NR * NR);
}

/* A group of 4 consecutive tiles (one GEMM half-panel of V): where their patches start in the padded input, and
 * whether they sit side by side in one tile row (then both transforms run on whole rows). */
typedef struct {
    int ty, tx;    /* first tile */
    int n;         /* tiles of the group that exist (the rest of the last block is padding) */
    int same_row;  /* all 4 exist, side by side in one tile row */
    int in_off[4]; /* per lane: offset of the 4x4 patch in a padded channel plane */
} Group;

/* --------------------------------------------------------------------------------------------------------------
 * input transform: V = B^T d B, 4 tiles in the 4 lanes */

/* memset/memcpy become memory.fill/memory.copy, which engines run as calls into the runtime: too slow per row */
INLINE void zero_floats(float* p, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) VSTORE(p + i, wasm_f32x4_splat(0.0f));
    for (; i < n; i++) p[i] = 0.0f;
}

INLINE void copy_floats(float* dst, const float* src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        v128_t a = VLOAD(src + i), b = VLOAD(src + i + 4);
        VSTORE(dst + i, a);
        VSTORE(dst + i + 4, b);
    }
    for (; i + 4 <= n; i += 4) VSTORE(dst + i, VLOAD(src + i));
    for (; i < n; i++) dst[i] = src[i];
}

/* the zero-padded image: Hp x Wp = (2 TH + 2) x (2 TW + 2) per channel, the input at (PT, PL) */
NOINLINE void pad_input(const float* x, int C, int H, int W, int PT, int PL, int Hp, int Wp, float* xp) {
    int x0 = imin(PL, Wp), x1 = imin(PL + W, Wp); /* padded columns [x0, x1) hold input columns */
    for (int c = 0; c < C; c++) {
        for (int py = 0; py < Hp; py++, xp += Wp) {
            int iy = py - PT;
            if (iy < 0 || iy >= H || x1 <= x0) {
                zero_floats(xp, Wp);
                continue;
            }
            zero_floats(xp, x0);
            copy_floats(xp + x0, x + ((long)c * H + iy) * W, x1 - x0);
            zero_floats(xp + x1, Wp - x1);
        }
    }
}

INLINE void transpose4(v128_t* a, v128_t* b, v128_t* c, v128_t* d) {
    v128_t t0 = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
    v128_t t2 = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
    *a = wasm_i64x2_shuffle(t0, t2, 0, 2);
    *b = wasm_i64x2_shuffle(t0, t2, 1, 3);
    *c = wasm_i64x2_shuffle(t1, t3, 0, 2);
    *d = wasm_i64x2_shuffle(t1, t3, 1, 3);
}

/* one group of 4 tiles of one channel plane xc (padded) -> the 16 positions at v[p * pstride] */
INLINE void input_group(const float* xc, int Wp, const Group* gr, float* v, long pstride) {
    v128_t t[4][4]; /* t[i][k] = (B^T d)[i][k], lanes = tiles */
    if (gr->same_row) {
        /* patch rows of 4 tiles 2 apart: column k of lane l is row[2l + k] */
        v128_t d[4][4];
        const float* row = xc + gr->in_off[0];
        for (int r = 0; r < 4; r++, row += Wp) {
            v128_t a0 = VLOAD(row), a1 = VLOAD(row + 4), b0 = VLOAD(row + 2), b1 = VLOAD(row + 6);
            d[r][0] = wasm_i32x4_shuffle(a0, a1, 0, 2, 4, 6);
            d[r][1] = wasm_i32x4_shuffle(a0, a1, 1, 3, 5, 7);
            d[r][2] = wasm_i32x4_shuffle(b0, b1, 0, 2, 4, 6);
            d[r][3] = wasm_i32x4_shuffle(b0, b1, 1, 3, 5, 7);
        }
        for (int k = 0; k < 4; k++) {
            t[0][k] = wasm_f32x4_sub(d[0][k], d[2][k]);
            t[1][k] = wasm_f32x4_add(d[1][k], d[2][k]);
            t[2][k] = wasm_f32x4_sub(d[2][k], d[1][k]);
            t[3][k] = wasm_f32x4_sub(d[1][k], d[3][k]);
        }
    } else {
        /* tiles anywhere: per tile, B^T d on its 4 patch rows (lanes = columns), then transpose */
        v128_t q[4][4]; /* q[i][l]: lanes = k */
        for (int l = 0; l < 4; l++) {
            const float* p = xc + gr->in_off[l];
            v128_t d0 = VLOAD(p), d1 = VLOAD(p + Wp), d2 = VLOAD(p + 2 * Wp), d3 = VLOAD(p + 3 * Wp);
            q[0][l] = wasm_f32x4_sub(d0, d2);
            q[1][l] = wasm_f32x4_add(d1, d2);
            q[2][l] = wasm_f32x4_sub(d2, d1);
            q[3][l] = wasm_f32x4_sub(d1, d3);
        }
        for (int i = 0; i < 4; i++) {
            transpose4(&q[i][0], &q[i][1], &q[i][2], &q[i][3]);
            for (int k = 0; k < 4; k++) t[i][k] = q[i][k];
        }
    }
    /* (B^T d) B along k */
    for (int i = 0; i < 4; i++) {
        VSTORE(v + (i * 4 + 0) * pstride, wasm_f32x4_sub(t[i][0], t[i][2]));
        VSTORE(v + (i * 4 + 1) * pstride, wasm_f32x4_add(t[i][1], t[i][2]));
        VSTORE(v + (i * 4 + 2) * pstride, wasm_f32x4_sub(t[i][2], t[i][1]));
        VSTORE(v + (i * 4 + 3) * pstride, wasm_f32x4_sub(t[i][1], t[i][3]));
    }
}

/* V[p][j / 8][c][j % 8] for the block's tiles j, p stride pstride */
NOINLINE void input_transform(const float* xp, int C, int Hp, int Wp, const Group* groups, int ngroups, float* V,
                              long pstride) {
    const long plane = (long)Hp * Wp;
    for (int g = 0; g < ngroups; g++) {
        const Group* gr = &groups[g];
        float* v = V + (long)(g / (NR / 4)) * C * NR + (g % (NR / 4)) * 4;
        for (int c = 0; c < C; c++) input_group(xp + c * plane, Wp, gr, v + c * NR, pstride);
    }
}

/* --------------------------------------------------------------------------------------------------------------
 * 16 GEMMs: M'[m][p][j] = sum_c U[p][m][c] V[p][c][j], register tile MR x 8, packed operands, no edge cases
 * (rows padded to Mp with zero weights, columns to a multiple of 8 with copies of tile 0 that nobody reads). */

/* MR x NR tile of M'[p]: a = U[p] panel [C][MR], b = V[p] panel [C][NR]. The MR weights of a step are one vector
 * load splat by shuffles (wasmtime turns load32_splat into a scalar load + move + broadcast). */
INLINE void micro_kernel(int C, const float* a, const float* b, float* out, long ldo) {
    v128_t acc[MR][NR / 4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NR / 4; v++) acc[r][v] = wasm_f32x4_splat(0.0f);
    for (int k = 0; k < C; k++, a += MR, b += NR) {
        v128_t bv[NR / 4];
        for (int v = 0; v < NR / 4; v++) bv[v] = VLOAD(b + 4 * v);
        v128_t a4 = VLOAD(a);
        v128_t av[MR] = {wasm_i32x4_shuffle(a4, a4, 0, 0, 0, 0), wasm_i32x4_shuffle(a4, a4, 1, 1, 1, 1),
                         wasm_i32x4_shuffle(a4, a4, 2, 2, 2, 2), wasm_i32x4_shuffle(a4, a4, 3, 3, 3, 3)};
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NR / 4; v++) acc[r][v] = VMADD(av[r], bv[v], acc[r][v]);
    }
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NR / 4; v++) VSTORE(out + r * ldo + 4 * v, acc[r][v]);
}

NOINLINE void gemms(int C, int Mp, const float* U, const float* V, long vstride, float* Mo, long mstride, int ncols) {
    const long ldo = 16 * mstride; /* M' row stride: [m][p][j] */
    for (int p = 0; p < 16; p++) {
        const float* Up = U + (long)p * Mp * C;
        const float* Vp = V + p * vstride;
        for (int mb = 0; mb < Mp; mb += MR) {
            const float* a = Up + (long)mb * C;
            float* out = Mo + mb * ldo + p * mstride;
            for (int j = 0; j < ncols; j += NR) micro_kernel(C, a, Vp + (long)j * C, out + j, ldo);
        }
    }
}

/* --------------------------------------------------------------------------------------------------------------
 * output transform Y = A^T M' A (4 tiles in the lanes) + bias, residual, activation */

NOINLINE void output_transform(const float* Mo, long mstride, int M, const Group* groups, int ngroups, int OH,
                               int OW, int TW, const float* bias, float* y, long plane, const float* residual, int act,
                               float p0, float p1) {
    for (int m = 0; m < M; m++) {
        const float* mm = Mo + m * 16 * mstride;
        float* ym = y + m * plane;
        const float* rm = residual ? residual + m * plane : 0;
        v128_t bv = VSPLAT(bias ? bias[m] : 0.0f);
        for (int g = 0; g < ngroups; g++) {
            const float* s = mm + g * 4;
            /* columns: A^T M' */
            v128_t c0[4], c1[4];
            for (int k = 0; k < 4; k++) {
                v128_t r0 = VLOAD(s + (0 + k) * mstride), r1 = VLOAD(s + (4 + k) * mstride);
                v128_t r2 = VLOAD(s + (8 + k) * mstride), r3 = VLOAD(s + (12 + k) * mstride);
                v128_t r12 = wasm_f32x4_add(r1, r2);
                c0[k] = wasm_f32x4_add(r0, r12);
                c1[k] = wasm_f32x4_sub(wasm_f32x4_sub(r1, r2), r3);
            }
            /* rows: (A^T M') A, + bias */
            v128_t yv[4] = {
                wasm_f32x4_add(wasm_f32x4_add(c0[0], wasm_f32x4_add(c0[1], c0[2])), bv),
                wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(c0[1], c0[2]), c0[3]), bv),
                wasm_f32x4_add(wasm_f32x4_add(c1[0], wasm_f32x4_add(c1[1], c1[2])), bv),
                wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(c1[1], c1[2]), c1[3]), bv),
            }; /* y[i][k] of the 2x2 tile at index 2i + k, lanes = tiles */
            const Group* gr = &groups[g];
            int oy = 2 * gr->ty, ox = 2 * gr->tx;
            int fast = gr->same_row && gr->n == 4 && ox + 8 <= OW && oy + 2 <= OH;
            long off[4][4]; /* slow path: output offset of tile value i in lane l, -1 when outside */
            v128_t out[4];
            if (fast) {
                /* 4 tiles side by side: two rows of 8 consecutive outputs, out[2 * row + half] */
                out[0] = wasm_i32x4_shuffle(yv[0], yv[1], 0, 4, 1, 5);
                out[1] = wasm_i32x4_shuffle(yv[0], yv[1], 2, 6, 3, 7);
                out[2] = wasm_i32x4_shuffle(yv[2], yv[3], 0, 4, 1, 5);
                out[3] = wasm_i32x4_shuffle(yv[2], yv[3], 2, 6, 3, 7);
                if (rm)
                    for (int i = 0; i < 4; i++)
                        out[i] = wasm_f32x4_add(out[i], VLOAD(rm + (long)(oy + (i >> 1)) * OW + ox + (i & 1) * 4));
            } else {
                /* tiles across rows or at the bottom/right edge: lanes stay tiles, stores go element by element */
                int ty = gr->ty, tx = gr->tx;
                for (int l = 0; l < 4; l++) {
                    for (int i = 0; i < 4; i++) {
                        int yy = 2 * ty + (i >> 1), xx = 2 * tx + (i & 1);
                        off[i][l] = l < gr->n && yy < OH && xx < OW ? (long)yy * OW + xx : -1;
                    }
                    if (++tx == TW) tx = 0, ty++;
                }
                for (int i = 0; i < 4; i++) {
                    out[i] = yv[i];
                    if (rm) {
                        float r[4];
                        for (int l = 0; l < 4; l++) r[l] = off[i][l] >= 0 ? rm[off[i][l]] : 0.0f;
                        out[i] = wasm_f32x4_add(out[i], VLOAD(r));
                    }
                }
            }
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) out[i] = v_activate(out[i], act, p0, p1);
            if (fast) {
                for (int i = 0; i < 4; i++) VSTORE(ym + (long)(oy + (i >> 1)) * OW + ox + (i & 1) * 4, out[i]);
            } else {
                float vals[4][4];
                for (int i = 0; i < 4; i++) VSTORE(vals[i], out[i]);
                for (int i = 0; i < 4; i++)
                    for (int l = 0; l < 4; l++)
                        if (off[i][l] >= 0) ym[off[i][l]] = vals[i][l];
            }
        }
    }
}

KERNEL void f32_conv2d_winograd_f23(int N, int C, int H, int W, int M, int OH, int OW, int PT, int PL, const float* x,
                                    const float* U, const float* bias, float* y, float* workspace, int act, float p0,
                                    float p1, const float* residual, int y_plane) {
    const int TH = (OH + 1) / 2, TW = (OW + 1) / 2, T = TH * TW;
    if (T == 0) return;
    const int Mp = (M + MR - 1) / MR * MR;
    const int TB = tile_block(C, T);
    const int Hp = 2 * TH + 2, Wp = 2 * TW + 2;
    /* the V positions 16 floats apart beyond the block, so that 16 streams C * TB apart do not share a cache set */
    const long vstride = (long)C * TB + 16, mstride = TB;
    float* xp = workspace;
    float* V = xp + (long)C * Hp * Wp;
    float* Mo = V + 16 * vstride;
    Group groups[TB_MAX / 4];
    for (int n = 0; n < N; n++) {
        const long out = (long)n * M * y_plane;
        pad_input(x + (long)n * C * H * W, C, H, W, PT, PL, Hp, Wp, xp);
        for (int t0 = 0; t0 < T; t0 += TB) {
            int count = imin(TB, T - t0);
            int ncols = (count + NR - 1) / NR * NR;
            int ngroups = ncols / 4;
            int ty = t0 / TW, tx = t0 % TW;
            for (int g = 0; g < ngroups; g++) {
                Group* gr = &groups[g];
                gr->ty = ty;
                gr->tx = tx;
                gr->n = imax(0, imin(4, count - 4 * g));
                gr->same_row = gr->n == 4 && tx + 4 <= TW;
                for (int l = 0; l < 4; l++) {
                    /* padding lanes read tile 0, into GEMM columns nobody reads */
                    gr->in_off[l] = l < gr->n ? 2 * ty * Wp + 2 * tx : 0;
                    if (l < gr->n && ++tx == TW) tx = 0, ty++;
                }
            }
            input_transform(xp, C, Hp, Wp, groups, ngroups, V, vstride);
            gemms(C, Mp, U, V, vstride, Mo, mstride, ncols);
            output_transform(Mo, mstride, M, groups, ngroups, OH, OW, TW, bias, y + out, y_plane,
                             residual ? residual + out : 0, act, p0, p1);
        }
    }
}

/* U from the OIHW weights w [M, C, 3, 3], at load time (an init step): the bundle ships the 9 floats of each
 * (m, c) pair instead of U's 16. U[p][m / MR][c][m % MR] = (G g G^T)[p / 4][p % 4] with g = w[m][c], rows m >= M
 * zero up to Mp; the same layout as transform_weights in wasm_runtime/ops/winograd.py, computed in float32. */
KERNEL void f32_winograd_f23_weights(int M, int C, const float* w, float* U) {
    /* One vector per (group of MR rows, c): lane r is row m0 + r, so each of the 16 positions is one
     * contiguous store and U is written as 16 sequential streams (a scalar loop over single rows scattered
     * single floats 16 planes apart, ~2x slower here). Same operations in the same order as the scalar
     * formula, so the same bits. */
    _Static_assert(MR == 4, "one f32x4 lane per row of the group");
    int Mp = (M + MR - 1) / MR * MR;
    long plane = (long)Mp * C; /* floats per transform position */
    const v128_t half = wasm_f32x4_splat(0.5f);
    float zero[9] = {0};
    for (int m0 = 0; m0 < Mp; m0 += MR) {
        for (int c = 0; c < C; c++) {
            const float* src[MR];
            for (int r = 0; r < MR; r++) src[r] = m0 + r < M ? w + ((long)(m0 + r) * C + c) * 9 : zero;
            v128_t g[9];
            for (int k = 0; k < 9; k++) g[k] = wasm_f32x4_make(src[0][k], src[1][k], src[2][k], src[3][k]);
            v128_t t[4][3]; /* G g: rows of the kernel combined */
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(g[j], g[3 + j]), g[6 + j]));
                t[2][j] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(g[j], g[3 + j]), g[6 + j]));
                t[3][j] = g[6 + j];
            }
            float* dst = U + ((long)(m0 / MR) * C + c) * MR;
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                v128_t a = t[i][0], b = t[i][1], d = t[i][2];
                wasm_v128_store(dst + (i * 4 + 0) * plane, a);
                wasm_v128_store(dst + (i * 4 + 1) * plane, wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(a, b), d)));
                wasm_v128_store(dst + (i * 4 + 2) * plane, wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(a, b), d)));
                wasm_v128_store(dst + (i * 4 + 3) * plane, d);
            }
        }
    }
}
