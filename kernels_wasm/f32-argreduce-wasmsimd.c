/* Reductions along one axis of an [outer, n, inner] view that keep the axis or an index into it: ArgMax/ArgMin,
 * Hardmax, LogSoftmax.
 *
 * `inner` columns are processed (a split chunk may cover fewer than the tensor has), `pitch` is the tensor's
 * inner size: element (o, r, i) is at x[(o * n + r) * pitch + i]. With pitch == 1 the axis is contiguous and
 * runs 4-wide along it; otherwise 16 (then 4) neighbouring columns run in the lanes, and the last inner % 4
 * columns run the same vector code in lane 0, so every output is computed identically whichever chunk holds it. */
#include "vmath.h"

enum { ARG_MIN = 1, ARG_LAST = 2 }; /* flags: argmin instead of argmax; ties go to the last index */

INLINE v128_t v_better(v128_t v, v128_t best, int flags) {
    switch (flags & 3) {
    case ARG_MIN: return wasm_f32x4_lt(v, best);
    case ARG_LAST: return wasm_f32x4_ge(v, best);
    case ARG_MIN | ARG_LAST: return wasm_f32x4_le(v, best);
    default: return wasm_f32x4_gt(v, best);
    }
}

INLINE int s_better(float v, float best, int flags) {
    switch (flags & 3) {
    case ARG_MIN: return v < best;
    case ARG_LAST: return v >= best;
    case ARG_MIN | ARG_LAST: return v <= best;
    default: return v > best;
    }
}

INLINE v128_t load_n(const float* p, int one) { return one ? wasm_v128_load32_zero(p) : VLOAD(p); }

INLINE void store_n(float* p, v128_t v, int one) {
    if (one) wasm_v128_store32_lane(p, v, 0);
    else VSTORE(p, v);
}

/* indices along the axis of the best of V*4 columns at p (lane 0 only when `one`), as i32 lanes in bi[] */
INLINE void arg_cols(const float* p, int n, int pitch, int flags, int V, int one, v128_t* bi) {
    v128_t best[4];
    for (int v = 0; v < V; v++) best[v] = load_n(p + 4 * v, one), bi[v] = wasm_i32x4_splat(0);
    for (int r = 1; r < n; r++) {
        v128_t rv = wasm_i32x4_splat(r);
        for (int v = 0; v < V; v++) {
            v128_t x = load_n(p + (long)r * pitch + 4 * v, one);
            v128_t m = v_better(x, best[v], flags);
            best[v] = wasm_v128_bitselect(x, best[v], m);
            bi[v] = wasm_v128_bitselect(rv, bi[v], m);
        }
    }
}

/* index of the best of n contiguous values: 4 lanes each keep their best, then the lanes and the tail */
static int arg_row(const float* p, int n, int flags) {
    int r = 0, bi = 0;
    float b = p[0];
    if (n >= 8) {
        v128_t best = VLOAD(p), idx = wasm_i32x4_make(0, 1, 2, 3), lanes = idx;
        for (r = 4; r + 4 <= n; r += 4) {
            v128_t v = VLOAD(p + r);
            v128_t m = v_better(v, best, flags);
            best = wasm_v128_bitselect(v, best, m);
            idx = wasm_v128_bitselect(wasm_i32x4_add(lanes, wasm_i32x4_splat(r)), idx, m);
        }
        float bv[4];
        int32_t iv[4];
        VSTORE(bv, best);
        VSTORE(iv, idx);
        b = bv[0];
        bi = iv[0];
        for (int l = 1; l < 4; l++) {
            int tie = bv[l] == b && ((flags & ARG_LAST) ? iv[l] > bi : iv[l] < bi);
            if ((bv[l] != b && s_better(bv[l], b, flags & ARG_MIN)) || tie) b = bv[l], bi = iv[l];
        }
    } else {
        r = 1;
    }
    for (; r < n; r++)
        if (s_better(p[r], b, flags)) b = p[r], bi = r;
    return bi;
}

/* y[o, 0, i] = index along the axis of the max (min) of x[o, :, i], as int64 */
KERNEL void f32_argminmax(int outer, int n, int inner, int pitch, int flags, const float* x, int64_t* y) {
    for (int o = 0; o < outer; o++) {
        const float* xo = x + (long)o * n * pitch;
        int64_t* yo = y + (long)o * pitch;
        if (pitch == 1) {
            if (inner) yo[0] = arg_row(xo, n, flags);
            continue;
        }
        int i = 0;
        v128_t bi[4];
        while (i + 4 <= inner) {
            int V = i + 16 <= inner ? 4 : 1;
            arg_cols(xo + i, n, pitch, flags, V, 0, bi);
            for (int v = 0; v < V; v++, i += 4) {
                VSTORE(yo + i, wasm_i64x2_extend_low_i32x4(bi[v]));
                VSTORE(yo + i + 2, wasm_i64x2_extend_high_i32x4(bi[v]));
            }
        }
        for (; i < inner; i++) {
            arg_cols(xo + i, n, pitch, flags, 1, 1, bi);
            yo[i] = wasm_i32x4_extract_lane(bi[0], 0);
        }
    }
}

/* y = one-hot of the first max of x along the axis */
KERNEL void f32_hardmax(int outer, int n, int inner, int pitch, const float* x, float* y) {
    for (int o = 0; o < outer; o++) {
        const float* xo = x + (long)o * n * pitch;
        float* yo = y + (long)o * n * pitch;
        for (int r = 0; r < n; r++)
            for (int i = 0; i < inner; i++) yo[(long)r * pitch + i] = 0.0f;
        if (pitch == 1) {
            if (inner) yo[arg_row(xo, n, 0)] = 1.0f;
            continue;
        }
        int i = 0;
        v128_t bi[4];
        while (i + 4 <= inner) {
            int V = i + 16 <= inner ? 4 : 1;
            int32_t idx[16];
            arg_cols(xo + i, n, pitch, 0, V, 0, bi);
            for (int v = 0; v < V; v++) VSTORE(idx + 4 * v, bi[v]);
            for (int l = 0; l < 4 * V; l++, i++) yo[(long)idx[l] * pitch + i] = 1.0f;
        }
        for (; i < inner; i++) {
            arg_cols(xo + i, n, pitch, 0, 1, 1, bi);
            yo[(long)wasm_i32x4_extract_lane(bi[0], 0) * pitch + i] = 1.0f;
        }
    }
}

/* V*4 columns at x (lane 0 only when `one`) */
INLINE void log_softmax_cols(const float* x, float* y, int n, int pitch, int V, int one) {
    v128_t m[4], s[4];
    for (int v = 0; v < V; v++) m[v] = load_n(x + 4 * v, one), s[v] = VSPLAT(0.0f);
    for (int r = 1; r < n; r++)
        for (int v = 0; v < V; v++) m[v] = wasm_f32x4_max(m[v], load_n(x + (long)r * pitch + 4 * v, one));
    for (int r = 0; r < n; r++)
        for (int v = 0; v < V; v++)
            s[v] = wasm_f32x4_add(s[v], v_exp(wasm_f32x4_sub(load_n(x + (long)r * pitch + 4 * v, one), m[v])));
    for (int v = 0; v < V; v++) s[v] = v_log(s[v]);
    for (int r = 0; r < n; r++)
        for (int v = 0; v < V; v++) {
            v128_t t = wasm_f32x4_sub(load_n(x + (long)r * pitch + 4 * v, one), m[v]);
            store_n(y + (long)r * pitch + 4 * v, wasm_f32x4_sub(t, s[v]), one);
        }
}

static void log_softmax_row(const float* x, float* y, int n) {
    v128_t vm = VSPLAT(x[0]);
    int i = 0;
    for (; i + 4 <= n; i += 4) vm = wasm_f32x4_max(vm, VLOAD(x + i));
    vm = wasm_f32x4_max(vm, wasm_i32x4_shuffle(vm, vm, 2, 3, 0, 1));
    vm = wasm_f32x4_max(vm, wasm_i32x4_shuffle(vm, vm, 1, 0, 3, 2));
    for (; i < n; i++) vm = wasm_f32x4_max(vm, VSPLAT(x[i]));
    v128_t a0 = VSPLAT(0.0f), a1 = a0, a2 = a0, a3 = a0, t = a0;
    for (i = 0; i + 16 <= n; i += 16) {
        a0 = wasm_f32x4_add(a0, v_exp(wasm_f32x4_sub(VLOAD(x + i), vm)));
        a1 = wasm_f32x4_add(a1, v_exp(wasm_f32x4_sub(VLOAD(x + i + 4), vm)));
        a2 = wasm_f32x4_add(a2, v_exp(wasm_f32x4_sub(VLOAD(x + i + 8), vm)));
        a3 = wasm_f32x4_add(a3, v_exp(wasm_f32x4_sub(VLOAD(x + i + 12), vm)));
    }
    for (; i + 4 <= n; i += 4) a0 = wasm_f32x4_add(a0, v_exp(wasm_f32x4_sub(VLOAD(x + i), vm)));
    for (; i < n; i++) t = wasm_f32x4_add(t, v_exp(wasm_f32x4_sub(wasm_v128_load32_zero(x + i), vm)));
    v128_t s = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
    s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
    s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
    s = wasm_f32x4_add(s, wasm_i32x4_shuffle(t, t, 0, 0, 0, 0));
    v128_t l = v_log(s);
    for (i = 0; i + 4 <= n; i += 4) VSTORE(y + i, wasm_f32x4_sub(wasm_f32x4_sub(VLOAD(x + i), vm), l));
    for (; i < n; i++) y[i] = wasm_f32x4_extract_lane(wasm_f32x4_sub(wasm_f32x4_sub(VSPLAT(x[i]), vm), l), 0);
}

/* y = x - max - log(sum(exp(x - max))) along the axis */
KERNEL void f32_log_softmax(int outer, int n, int inner, int pitch, const float* x, float* y) {
    for (int o = 0; o < outer; o++) {
        const float* xo = x + (long)o * n * pitch;
        float* yo = y + (long)o * n * pitch;
        if (pitch == 1) {
            if (inner) log_softmax_row(xo, yo, n);
            continue;
        }
        int i = 0;
        for (; i + 16 <= inner; i += 16) log_softmax_cols(xo + i, yo + i, n, pitch, 4, 0);
        for (; i + 4 <= inner; i += 4) log_softmax_cols(xo + i, yo + i, n, pitch, 1, 0);
        for (; i < inner; i++) log_softmax_cols(xo + i, yo + i, n, pitch, 1, 1);
    }
}
