/* ONNX Reduce* over any set of axes, as one strided walk.
 *
 * The input's dims are split into kept and reduced ones; size-1 dims are dropped and adjacent dims of the
 * same kind merged (wasm_runtime/ops/reduce.py does this at package time; f32_reduce_dyn does it here when
 * the axes arrive at run time). The output holds the kept dims in order, contiguous. Two walks:
 *
 *   A. the innermost input dim is kept: up to 256 neighbouring outputs (a tile of 64 vectors; then the last
 *      1-3 one at a time in lane 0) are accumulated together over every reduced position, each position
 *      streaming the tile's contiguous bytes;
 *   B. the innermost input dim is reduced: each output sums contiguous rows, 16 lanes at a time.
 *
 * Sums are blocked in three levels (64 terms, 64 blocks, the rest), so float32 rounding grows like
 * 64 + 64 + n/4096 terms instead of n. An output's arithmetic never depends on which chunk of a split
 * computes it, and the 1-lane tails run the same vector code in lane 0, so results are bit-identical
 * however the work is divided. */
#include "vmath.h"

#define RMAX 8
#define BLOCK 64
#define TILE 64 /* walk A: outputs per pass, in vectors */

enum { RED_SUM, RED_MEAN, RED_SUM_SQUARE, RED_L1, RED_L2, RED_LOG_SUM, RED_LOG_SUM_EXP, RED_PROD, RED_MAX, RED_MIN };
/* how terms combine: the element transform before accumulating, then +, *, max or min */
enum { C_ADD, C_ADD_ABS, C_ADD_SQ, C_ADD_EXP, C_MUL, C_MAX, C_MIN };

typedef struct {
    int nk, nr, cdim, count;          /* count: reduced elements per output (the mean's divisor) */
    int kd[RMAX], ks[RMAX], os[RMAX]; /* kept dims: size, input stride, output stride (elements) */
    int rd[RMAX], rs[RMAX];           /* reduced dims: size, input stride */
} rlayout;

INLINE v128_t c_identity(int c) {
    switch (c) {
    case C_MUL: return VSPLAT(1.0f);
    case C_MAX: return VSPLAT(-F32_INF);
    case C_MIN: return VSPLAT(F32_INF);
    default: return VSPLAT(0.0f);
    }
}

INLINE v128_t c_pre(int c, v128_t v, v128_t shift) {
    switch (c) {
    case C_ADD_ABS: return wasm_f32x4_abs(v);
    case C_ADD_SQ: return wasm_f32x4_mul(v, v);
    case C_ADD_EXP: return v_exp(wasm_f32x4_sub(v, shift));
    default: return v;
    }
}

INLINE v128_t c_op(int c, v128_t a, v128_t b) {
    switch (c) {
    case C_MUL: return wasm_f32x4_mul(a, b);
    case C_MAX: return wasm_f32x4_max(a, b);
    case C_MIN: return wasm_f32x4_min(a, b);
    default: return wasm_f32x4_add(a, b);
    }
}

INLINE int combiner(int mode) {
    switch (mode) {
    case RED_SUM_SQUARE: case RED_L2: return C_ADD_SQ;
    case RED_L1: return C_ADD_ABS;
    case RED_PROD: return C_MUL;
    case RED_MAX: return C_MAX;
    case RED_MIN: return C_MIN;
    default: return C_ADD;
    }
}

/* the output from the accumulated value s (and, for log-sum-exp, the max m it was shifted by) */
INLINE v128_t finish(int mode, v128_t s, v128_t m, int count) {
    switch (mode) {
    case RED_MEAN: return wasm_f32x4_div(s, VSPLAT((float)count));
    case RED_L2: return wasm_f32x4_sqrt(s);
    case RED_LOG_SUM: return v_log(s);
    case RED_LOG_SUM_EXP: return wasm_v128_bitselect(wasm_f32x4_add(v_log(s), m), m, v_isfinite(m));
    default: return s;
    }
}

INLINE void store_n(float* p, v128_t v, int one) {
    if (one) wasm_v128_store32_lane(p, v, 0);
    else VSTORE(p, v);
}

/* Walk A: V <= TILE vectors (V*4 neighbouring outputs, or one output in lane 0 when `one`) at xp, accumulated
 * over every reduced position; acc[v] receives the combined value. Each position streams V*16 contiguous
 * bytes; the innermost reduced dim is the tight loop. */
INLINE void gather_a_impl(const rlayout* L, int c, const float* xp, int V, int one, const v128_t* shift,
                          v128_t* acc) {
    v128_t blk[TILE], mid[TILE];
    for (int v = 0; v < V; v++) blk[v] = mid[v] = acc[v] = c_identity(c);
    int nb = 0, nm = 0, nr = L->nr;
    int rl = L->rd[nr - 1], rst = L->rs[nr - 1];
    int idx[RMAX] = {0};
    int off = 0;
    for (int d = 0; d < nr; d++)
        if (L->rd[d] == 0) goto done;
    for (;;) {
        const float* p = xp + off;
        for (int t = 0; t < rl;) {
            int m = imin(rl - t, BLOCK - nb);
            if (one) { /* 1 output, lane 0 */
                v128_t b = blk[0];
                for (int u = 0; u < m; u++, t++) b = c_op(c, b, c_pre(c, wasm_v128_load32_zero(p + t * rst), shift[0]));
                blk[0] = b;
            } else if (V == 1) { /* 4 outputs: the accumulator stays in a register */
                v128_t b = blk[0];
                for (int u = 0; u < m; u++, t++) b = c_op(c, b, c_pre(c, VLOAD(p + t * rst), shift[0]));
                blk[0] = b;
            } else {
                for (int u = 0; u < m; u++, t++) {
                    const float* q = p + t * rst;
                    for (int v = 0; v < V; v++) blk[v] = c_op(c, blk[v], c_pre(c, VLOAD(q + 4 * v), shift[v]));
                }
            }
            nb += m;
            if (nb == BLOCK) {
                for (int v = 0; v < V; v++) mid[v] = c_op(c, mid[v], blk[v]), blk[v] = c_identity(c);
                nb = 0;
                if (++nm == BLOCK) {
                    for (int v = 0; v < V; v++) acc[v] = c_op(c, acc[v], mid[v]), mid[v] = c_identity(c);
                    nm = 0;
                }
            }
        }
        int d = nr - 2;
        for (; d >= 0; d--) {
            off += L->rs[d];
            if (++idx[d] < L->rd[d]) break;
            off -= idx[d] * L->rs[d];
            idx[d] = 0;
        }
        if (d < 0) break;
    }
done:
    for (int v = 0; v < V; v++) acc[v] = c_op(c, c_op(c, acc[v], mid[v]), blk[v]);
}

/* one specialized copy per combiner: the switch stays out of the loops */
static void gather_a(const rlayout* L, int c, const float* xp, int V, int one, const v128_t* shift, v128_t* acc) {
    switch (c) {
    case C_ADD: gather_a_impl(L, C_ADD, xp, V, one, shift, acc); break;
    case C_ADD_ABS: gather_a_impl(L, C_ADD_ABS, xp, V, one, shift, acc); break;
    case C_ADD_SQ: gather_a_impl(L, C_ADD_SQ, xp, V, one, shift, acc); break;
    case C_ADD_EXP: gather_a_impl(L, C_ADD_EXP, xp, V, one, shift, acc); break;
    case C_MUL: gather_a_impl(L, C_MUL, xp, V, one, shift, acc); break;
    case C_MAX: gather_a_impl(L, C_MAX, xp, V, one, shift, acc); break;
    default: gather_a_impl(L, C_MIN, xp, V, one, shift, acc); break;
    }
}

static void group_a(const rlayout* L, int mode, const float* xp, float* yp, int V, int one) {
    int c = combiner(mode);
    v128_t s[TILE], m[TILE], shift[TILE];
    for (int v = 0; v < V; v++) m[v] = shift[v] = VSPLAT(0.0f);
    if (mode == RED_LOG_SUM_EXP) {
        gather_a(L, C_MAX, xp, V, one, shift, m);
        for (int v = 0; v < V; v++) shift[v] = wasm_v128_and(m[v], v_isfinite(m[v]));
        c = C_ADD_EXP;
    }
    gather_a(L, c, xp, V, one, shift, s);
    for (int v = 0; v < V; v++) store_n(yp + 4 * v, finish(mode, s[v], m[v], L->count), one);
}

/* Walk B: one output, the reduced rows contiguous (innermost reduced stride 1); returns lane 0. */
INLINE v128_t gather_b_impl(const rlayout* L, int c, const float* xp, v128_t shift) {
    v128_t blk[5], mid[5], tot[5]; /* 4 vectors for 16-wide steps (the first also 4-wide), 1 for 1-wide */
    for (int v = 0; v < 5; v++) blk[v] = mid[v] = tot[v] = c_identity(c);
    int nb = 0, nm = 0, nr = L->nr;
    int rl = L->rd[nr - 1];
    int idx[RMAX] = {0};
    int off = 0;
    for (int d = 0; d < nr; d++)
        if (L->rd[d] == 0) goto done;
#define B_STEP()                                                                                        \
    if (++nb == BLOCK) {                                                                                \
        for (int v = 0; v < 5; v++) mid[v] = c_op(c, mid[v], blk[v]), blk[v] = c_identity(c);          \
        nb = 0;                                                                                         \
        if (++nm == BLOCK) {                                                                            \
            for (int v = 0; v < 5; v++) tot[v] = c_op(c, tot[v], mid[v]), mid[v] = c_identity(c);      \
            nm = 0;                                                                                     \
        }                                                                                               \
    }
    for (;;) {
        const float* p = xp + off;
        int i = 0;
        for (; i + 16 <= rl; i += 16) {
            blk[0] = c_op(c, blk[0], c_pre(c, VLOAD(p + i), shift));
            blk[1] = c_op(c, blk[1], c_pre(c, VLOAD(p + i + 4), shift));
            blk[2] = c_op(c, blk[2], c_pre(c, VLOAD(p + i + 8), shift));
            blk[3] = c_op(c, blk[3], c_pre(c, VLOAD(p + i + 12), shift));
            B_STEP()
        }
        for (; i + 4 <= rl; i += 4) {
            blk[0] = c_op(c, blk[0], c_pre(c, VLOAD(p + i), shift));
            B_STEP()
        }
        for (; i < rl; i++) {
            blk[4] = c_op(c, blk[4], c_pre(c, wasm_v128_load32_zero(p + i), shift));
            B_STEP()
        }
        int d = nr - 2;
        for (; d >= 0; d--) {
            off += L->rs[d];
            if (++idx[d] < L->rd[d]) break;
            off -= idx[d] * L->rs[d];
            idx[d] = 0;
        }
        if (d < 0) break;
    }
#undef B_STEP
done:;
    v128_t a[5];
    for (int v = 0; v < 5; v++) a[v] = c_op(c, c_op(c, tot[v], mid[v]), blk[v]);
    v128_t r = c_op(c, c_op(c, a[0], a[1]), c_op(c, a[2], a[3]));
    /* lanes: (0 + 2) + (1 + 3), then the 1-wide accumulator */
    r = c_op(c, r, wasm_i32x4_shuffle(r, r, 2, 3, 0, 1));
    r = c_op(c, r, wasm_i32x4_shuffle(r, r, 1, 0, 3, 2));
    return c_op(c, r, a[4]);
}

static v128_t gather_b(const rlayout* L, int c, const float* xp, v128_t shift) {
    switch (c) {
    case C_ADD: return gather_b_impl(L, C_ADD, xp, shift);
    case C_ADD_ABS: return gather_b_impl(L, C_ADD_ABS, xp, shift);
    case C_ADD_SQ: return gather_b_impl(L, C_ADD_SQ, xp, shift);
    case C_ADD_EXP: return gather_b_impl(L, C_ADD_EXP, xp, shift);
    case C_MUL: return gather_b_impl(L, C_MUL, xp, shift);
    case C_MAX: return gather_b_impl(L, C_MAX, xp, shift);
    default: return gather_b_impl(L, C_MIN, xp, shift);
    }
}

static void one_b(const rlayout* L, int mode, const float* xp, float* yp) {
    int c = combiner(mode);
    v128_t m = VSPLAT(0.0f), shift = VSPLAT(0.0f);
    if (mode == RED_LOG_SUM_EXP) {
        m = wasm_i32x4_shuffle(gather_b(L, C_MAX, xp, shift), m, 0, 0, 0, 0);
        shift = wasm_v128_and(m, v_isfinite(m));
        c = C_ADD_EXP;
    }
    v128_t s = gather_b(L, c, xp, shift);
    wasm_v128_store32_lane(yp, finish(mode, s, m, L->count), 0);
}

static void walk(const rlayout* L, int mode, int count, const float* x, float* y) {
    int nk = L->nk;
    int kd[RMAX];
    for (int d = 0; d < nk; d++) kd[d] = d == L->cdim ? count : L->kd[d];
    for (int d = 0; d < nk; d++)
        if (kd[d] <= 0) return;
    int walk_b = L->rs[L->nr - 1] == 1 && L->rd[L->nr - 1] > 1;
    int nouter = walk_b ? nk : nk - 1; /* walk A runs the innermost kept dim itself */
    int idx[RMAX] = {0};
    int xo = 0, yo = 0;
    for (;;) {
        if (walk_b) {
            one_b(L, mode, x + xo, y + yo);
        } else {
            int n = kd[nk - 1], st = L->ks[nk - 1], j = 0;
            if (st == 1) {
                while (j + 4 <= n) {
                    int V = imin(TILE, (n - j) / 4);
                    group_a(L, mode, x + xo + j, y + yo + j, V, 0);
                    j += 4 * V;
                }
            }
            for (; j < n; j++) group_a(L, mode, x + xo + j * st, y + yo + j * L->os[nk - 1], 1, 1);
        }
        int d = nouter - 1;
        for (; d >= 0; d--) {
            xo += L->ks[d];
            yo += L->os[d];
            if (++idx[d] < kd[d]) break;
            xo -= idx[d] * L->ks[d];
            yo -= idx[d] * L->os[d];
            idx[d] = 0;
        }
        if (d < 0) break;
    }
}

static void read_layout(const int32_t* p, rlayout* L) {
    L->nk = p[0];
    L->nr = p[1];
    L->cdim = p[2];
    L->count = p[3];
    for (int i = 0; i < RMAX; i++) {
        L->kd[i] = p[4 + i];
        L->ks[i] = p[4 + RMAX + i];
        L->os[i] = p[4 + 2 * RMAX + i];
        L->rd[i] = p[4 + 3 * RMAX + i];
        L->rs[i] = p[4 + 4 * RMAX + i];
    }
}

/* layout: nk, nr, cdim, count, kd[8], ks[8], os[8], rd[8], rs[8] (nk, nr >= 1; see ops/reduce.py).
 * `count` replaces kept dim `cdim`'s size: the unit a split divides. */
KERNEL void f32_reduce(int mode, const int32_t* layout, int count, const float* x, float* y) {
    rlayout L;
    read_layout(layout, &L);
    walk(&L, mode, count, x, y);
}

/* Axes read at run time (int64, negative counting from the end; none: every axis, or with `noop` none).
 * out_count is the output size the model declares; axes that disagree with it trap rather than write
 * outside the output. */
KERNEL void f32_reduce_dyn(int mode, const int32_t* dims, int rank, const int64_t* axes, int naxes, int noop,
                           int out_count, const float* x, float* y) {
    if (rank > 16) __builtin_trap();
    int reduced[16];
    for (int d = 0; d < rank; d++) reduced[d] = naxes == 0 && !noop;
    for (int i = 0; i < naxes; i++) {
        int64_t a = axes[i];
        if (a < 0) a += rank;
        if (a < 0 || a >= rank) __builtin_trap();
        reduced[a] = 1;
    }
    rlayout L;
    L.nk = L.nr = L.cdim = 0;
    L.count = 1;
    int kept = 1, stride = 1, last = -1; /* last: kind of the previous dim appended (merging) */
    for (int d = rank - 1; d >= 0; d--) { /* innermost first: strides are known, lists built backwards */
        int n = dims[d], r = reduced[d];
        if (r) L.count *= n;
        else kept *= n;
        if (n != 1) {
            int* sz = r ? L.rd : L.kd;
            int* st = r ? L.rs : L.ks;
            int* cnt = r ? &L.nr : &L.nk;
            if (last == r) {
                sz[*cnt - 1] *= n;
            } else {
                if (*cnt == RMAX) __builtin_trap();
                sz[*cnt] = n;
                st[*cnt] = stride;
                (*cnt)++;
                last = r;
            }
        }
        stride *= n;
    }
    if (kept != out_count) __builtin_trap();
    if (kept == 0) return;
    if (L.nk == 0) L.kd[0] = 1, L.ks[0] = 0, L.nk = 1;
    if (L.nr == 0) L.rd[0] = 1, L.rs[0] = 0, L.nr = 1;
    /* reverse to outermost first; output strides */
    for (int i = 0, j = L.nk - 1; i < j; i++, j--) {
        int t = L.kd[i]; L.kd[i] = L.kd[j]; L.kd[j] = t;
        t = L.ks[i]; L.ks[i] = L.ks[j]; L.ks[j] = t;
    }
    for (int i = 0, j = L.nr - 1; i < j; i++, j--) {
        int t = L.rd[i]; L.rd[i] = L.rd[j]; L.rd[j] = t;
        t = L.rs[i]; L.rs[i] = L.rs[j]; L.rs[j] = t;
    }
    for (int d = L.nk - 1, s = 1; d >= 0; d--) L.os[d] = s, s *= L.kd[d];
    walk(&L, mode, L.kd[0], x, y);
}
